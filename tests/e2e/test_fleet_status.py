"""The fleet's status end to end: the kiosk's state file -> borne sync's retained Status -> mosquitto (TLS,
per-device rights) -> borne ingest -> `borne fleet status`, each a real process; then the terminal dies and
the broker's last will marks it offline."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.chain import BORNE, DEVICE, SITE, Chain

pytestmark = pytest.mark.slow


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    running = Chain(tmp_path, sync_options={"status_interval_s": 1})
    yield running
    running.stop()


def fleet(chain: Chain) -> list[dict[str, Any]]:
    result = subprocess.run(
        [BORNE, "fleet", "status", "--json", "--config", str(chain.ingest_config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_terminal_reports_itself_to_the_fleet_table_and_its_death_is_seen(chain: Chain) -> None:
    state = {"microphone": "missing", "model": "ok", "technician_pin_failures": 0, "config_version": 3}
    (chain.root / "kiosk-state.json").write_text(json.dumps(state))
    chain.write_records(5)
    chain.start_ingest()
    chain.start_sync()

    def reported() -> bool:
        rows = fleet(chain)
        return bool(rows) and rows[0]["state"] == "online" and rows[0]["microphone"] == "missing"

    chain.wait_until(reported, 60, "the terminal's Status in the fleet table", every=0.5)
    (row,) = fleet(chain)
    assert (row["site_id"], row["device_id"], row["config_version"], row["model"]) == (SITE, DEVICE, 3, "ok")
    assert row["app_version"] and row["last_seen"] and row["offline_since"] is None
    assert [alert["kind"] for alert in row["alerts"]] == ["microphone"]

    # The kiosk finds its microphone again: the next Status clears the alert.
    (chain.root / "kiosk-state.json").write_text(json.dumps({**state, "microphone": "ok"}))
    chain.wait_until(lambda: fleet(chain)[0]["alerts"] == [], 30, "the alert to clear", every=0.5)

    # The terminal dies without a word: the broker publishes its last will after the keep-alive runs out.
    chain.kill(chain.sync_process)
    chain.wait_until(lambda: fleet(chain)[0]["state"] == "offline", 60, "the last will", every=0.5)
    (row,) = fleet(chain)
    assert row["offline_since"] is not None and row["microphone"] == "ok" and row["config_version"] == 3
