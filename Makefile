# `make demo` and `make test` set everything up first (scripts/setup.sh), then run.
SHELL := /bin/bash
BIN := .venv/bin
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test lint typecheck pytest schemas docs dashboard-screenshots constraints clean

setup:
	@scripts/setup.sh

demo: setup
	@scripts/demo.sh

test: setup lint typecheck pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

pytest:
	scripts/with-postgres.sh $(BIN)/pytest

schemas: setup
	$(BIN)/borne schema export schemas

docs: setup
	$(BIN)/python -m borne_cli.reference docs

# the dashboard's pages in Debian's chromium, saved as docs/screenshots/dashboard-*.png
dashboard-screenshots: setup
	BORNE_DASHBOARD_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/platform_ingest/dashboard/test_browser.py

constraints: setup
	{ sed -n '1,2p' constraints.txt; $(BIN)/pip freeze --exclude-editable --disable-pip-version-check; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache bench/results
