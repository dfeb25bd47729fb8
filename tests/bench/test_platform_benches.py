"""`borne bench ingest` and `borne bench dashboard` in their --quick runs, against the real PostgreSQL and a
Mosquitto of their own: the JSON has every run, and every record was stored, acknowledged and counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.platform_ingest.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]


def bench(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "borne_cli", "bench", *arguments, "--postgres-url", POSTGRES_URL],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_bench_ingest_quick_stores_and_counts_every_record(tmp_path: Path) -> None:
    out = tmp_path / "ingest.json"
    result = bench("ingest", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    records = report["records"]
    assert (report["terminals"], records) == (20, 4000)
    runs = [(run["store"], run["consumers"]) for run in report["runs"]]
    assert runs == [
        ("site_month (shipped)", 1),
        ("records only (no aggregate)", 1),
        ("site_month (shipped)", 2),
        ("records only (no aggregate)", 2),
    ]
    for run in report["runs"]:
        assert run["stored"] == run["acked"] == records, run
        assert run["counted"] == (records if run["store"] == "site_month (shipped)" else 0), run
        assert run["records_per_s"] > 0 and run["records_per_s_per_consumer"] * run["consumers"] == pytest.approx(
            run["records_per_s"]
        )
    assert "rec/s/cons" in result.stdout


@pytest.mark.slow
def test_bench_dashboard_quick_times_both_pages_both_ways(tmp_path: Path) -> None:
    out = tmp_path / "dashboard.json"
    result = bench("dashboard", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["fill"]["records"] == report["fill"]["counted"] == 20_000
    assert report["sites"] == 2750
    rows = [(timing["mode"], timing["page"], timing["requests"]) for timing in report["timings"]]
    assert rows == [
        ("site_month (shipped)", "national", 5),
        ("site_month (shipped)", "département", 5),
        ("scan of records", "national", 3),
        ("scan of records", "département", 3),
    ]
    for timing in report["timings"]:
        assert 0 < timing["p50_ms"] <= timing["p95_ms"] <= timing["max_ms"], timing
    # Both ways draw the same page: the same figures, whatever computes them.
    shipped = {timing["page"]: timing["digest"] for timing in report["timings"] if timing["mode"].startswith("site")}
    scanned = {timing["page"]: timing["digest"] for timing in report["timings"] if timing["mode"].startswith("scan")}
    assert shipped == scanned
