"""`borne bench model-load` in one short run: both bundles measured, and what re-storing as int8 is for."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BORNE = str(Path(sys.executable).with_name("borne"))


def test_model_load_bench_measures_both_bundles(tmp_path: Path) -> None:
    out = tmp_path / "model_load.json"
    result = subprocess.run(
        [BORNE, "bench", "model-load", "--runs", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "as-shipped" in result.stdout and "load peak MB" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    shipped, int8 = report["bundles"]["as-shipped"], report["bundles"]["int8"]
    assert (shipped["stored_weights"], int8["stored_weights"]) == ("float16", "int8")
    assert int8["file_mb"] < 0.6 * shipped["file_mb"]
    for figures in (shipped, int8):
        run = figures["runs"][0]
        assert run["peak_mb"] >= run["rss_mb"] > run["baseline_mb"] > 10
        assert "temps" in run["text"].lower()
    # Stored as int8, the weights are never held twice: loading needs much less memory than the float16 file.
    assert int8["load_peak_above_baseline_mb"] < shipped["load_peak_above_baseline_mb"] - 0.5 * int8["file_mb"]
    assert report["same_words"] is True
