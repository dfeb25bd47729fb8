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


CONFIG = """\
languages = ["fr", "en"]

[question]
fr = "Êtes-vous satisfait de l'accueil de France services ?"
en = "Are you satisfied with the welcome at France services?"

[opening_hours]
mon = ["09:00-12:00", "14:00-17:00"]
sat = ["09:00-12:00"]
"""


def borne(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BORNE, *args], capture_output=True, text=True, timeout=60)


def test_a_configuration_published_from_the_platform_reaches_the_terminal(chain: Chain) -> None:
    chain.start_ingest()
    chain.start_sync()
    chain.wait_until(lambda: bool(fleet(chain)), 60, "the terminal in the fleet table", every=0.5)
    config_file = chain.root / "welcome.toml"
    settings = ["--config", str(chain.ingest_config)]

    # A file that breaks the contract is refused, named, and nothing is published.
    config_file.write_text(CONFIG.replace('"09:00-12:00", "14:00-17:00"', '"9h-12h"'))
    refused = borne("fleet", "config", "publish", str(config_file), "--all", *settings)
    assert refused.returncode != 0
    assert "opening_hours.mon.0" in refused.stderr and "not a valid terminal configuration" in refused.stderr
    config_file.write_text(CONFIG)
    nowhere = borne("fleet", "config", "publish", str(config_file), "--site", "fs-99-99", *settings)
    assert nowhere.returncode != 0 and "no terminal matches" in nowhere.stderr
    assert fleet(chain)[0]["config_sent"] is None

    dry = borne("fleet", "config", "publish", str(config_file), "--site", SITE, "--dry-run", *settings)
    assert dry.returncode == 0 and f"would publish version 1 to 1 terminal(s):\n  {SITE}/{DEVICE}" in dry.stdout
    published = borne("fleet", "config", "publish", str(config_file), "--device", DEVICE, *settings)
    assert published.returncode == 0, published.stderr
    assert published.stdout.strip() == "published version 1 to 1 terminal(s)"

    # The terminal's sync agent keeps it for the kiosk, whole and valid.
    stored = chain.root / "device-config.json"
    chain.wait_until(stored.exists, 30, "the configuration on the terminal")
    document = json.loads(stored.read_text())
    assert document["config_version"] == 1 and document["languages"] == ["fr", "en"]
    assert document["question"]["en"] == "Are you satisfied with the welcome at France services?"
    assert document["opening_hours"] == {"mon": ["09:00-12:00", "14:00-17:00"], "sat": ["09:00-12:00"]}
    (row,) = fleet(chain)
    assert (row["config_sent"], row["config_version"]) == (1, None) and row["config_sent_at"]

    # The next publication gets the next version; the terminal keeps the newer one.
    again = borne("fleet", "config", "publish", str(config_file), "--all", *settings)
    assert again.stdout.strip() == "published version 2 to 1 terminal(s)", again.stderr
    chain.wait_until(lambda: json.loads(stored.read_text())["config_version"] == 2, 30, "version 2")


def test_an_identity_without_the_platforms_rights_cannot_publish(chain: Chain) -> None:
    chain.start_ingest()
    chain.start_sync()
    chain.wait_until(lambda: bool(fleet(chain)), 60, "the terminal in the fleet table", every=0.5)
    cert, key = chain.pki.client("platform-rogue")  # signed by the platform CA, absent from the broker's rights
    rogue = chain.root / "rogue.toml"
    rogue.write_text(
        chain.ingest_config.read_text().split("[fleet]")[0]
        + f'[fleet]\nclient_id = "platform-rogue"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
    )
    config_file = chain.root / "welcome.toml"
    config_file.write_text(CONFIG)
    result = borne("fleet", "config", "publish", str(config_file), "--all", "--config", str(rogue))
    assert result.returncode != 0
    assert "platform-rogue" in result.stderr and "borne provision fleet" in result.stderr, result.stderr
    assert not (chain.root / "device-config.json").exists()
    assert fleet(chain)[0]["config_sent"] is None
