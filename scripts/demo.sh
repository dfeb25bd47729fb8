#!/usr/bin/env bash
# The demo, end to end on this machine (see scripts/demo.py for the steps).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
exec .venv/bin/python scripts/demo.py
