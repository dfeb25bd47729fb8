from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from borne_cli.main import cli
from kiosk_app.flow import Identity
from kiosk_app.settings import KioskSection
from kiosk_app.simulate import simulate
from sync_agent.outbox import Outbox
from tests.conftest import PARIS_WINTER


def test_simulation_stores_exactly_the_requested_records(tmp_path: Path) -> None:
    end = datetime(2026, 11, 23, 18, tzinfo=PARIS_WINTER)
    with Outbox.open(tmp_path / "o.db") as box:
        summary = simulate(KioskSection(), Identity("fs-1", "b-1", "0.1.0"), box, records=400, seed=7, end=end, days=3)
        records = box.records()
    assert summary.records == len(records) == 400
    assert {record.rating for record in records} == {1, 2, 3, 4}
    assert sum(record.comment is not None for record in records) == summary.with_comment > 0
    assert any(record.answers for record in records)
    assert any("abandoned" in record.flags for record in records)
    assert any("burst_suspected" in record.flags for record in records)
    assert all(record.period <= end for record in records)
    assert min(record.period for record in records) >= end - timedelta(days=3, hours=1)


def test_same_seed_same_sessions(tmp_path: Path) -> None:
    end = datetime(2026, 11, 23, 18, tzinfo=PARIS_WINTER)
    runs = []
    for name in ("a", "b"):
        with Outbox.open(tmp_path / f"{name}.db") as box:
            simulate(KioskSection(), Identity("fs-1", "b-1", "0.1.0"), box, records=50, seed=3, end=end)
            runs.append([(r.rating, r.answers, r.flags, r.period) for r in box.records()])
    assert runs[0] == runs[1]


def test_simulate_command_then_stats(tmp_path: Path, write_config) -> None:  # type: ignore[no-untyped-def]
    config = write_config(f'[device]\nsite_id = "fs-9"\n[outbox]\npath = "{tmp_path}/o.db"\n')
    runner = CliRunner()
    result = runner.invoke(cli, ["simulate", "--config", str(config), "--records", "25", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "stored 25 record(s)" in result.output
    with Outbox.open(tmp_path / "o.db") as box:
        assert {record.site_id for record in box.records()} == {"fs-9"}
    stats = runner.invoke(cli, ["outbox", "stats", "--config", str(config), "--json"])
    assert '"pending": 25' in stats.output


def test_borne_console_script_runs(tmp_path: Path, write_config) -> None:  # type: ignore[no-untyped-def]
    config = write_config(f'[outbox]\npath = "{tmp_path}/o.db"\n')
    borne = Path(sys.executable).with_name("borne")
    done = subprocess.run(
        [str(borne), "simulate", "--config", str(config), "-n", "5"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "stored 5 record(s)" in done.stdout
    bad = subprocess.run(
        [str(borne), "simulate", "--config", str(tmp_path / "missing.toml"), "-n", "5"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "settings file not found" in bad.stderr
