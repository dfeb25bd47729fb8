from __future__ import annotations

from pathlib import Path

import click
import pytest

from borne_cli.main import cli
from borne_cli.reference import PAGES, walk
from kiosk_app.settings import KioskSection, KioskSettings

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [(context.command_path, command) for context, command in walk(cli)]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_every_command_and_option_has_help(path: str, command: click.Command) -> None:
    assert command.help and len(command.help.strip()) > 15, f"{path} has no help text"
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            assert parameter.help, f"{path} {parameter.opts[0]} has no help text"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_generated_reference_pages_are_in_step(page: str) -> None:
    generated = PAGES[page]()
    assert str(ROOT) not in generated, "a default shows this checkout's path: give show_default a relative text"
    assert (ROOT / "docs" / f"{page}.md").read_text(encoding="utf-8") == generated, (
        f"docs/{page}.md is stale: run `make docs` and commit it"
    )


def test_settings_example_in_the_docs_loads_to_the_defaults(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    example = page.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "borne.toml").write_text(example, encoding="utf-8")
    loaded = KioskSettings.load(tmp_path / "borne.toml")
    assert loaded.kiosk == KioskSection()
