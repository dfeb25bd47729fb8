"""`borne bench kiosk` in a very short run: the JSON's shape and that every figure is a real measurement.

Times are never compared with targets here (timing belongs to the benchmark itself).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.kiosk import cpu_seconds, memory_mb, percentile, summarise_taps

BORNE = str(Path(sys.executable).with_name("borne"))
ROOT = Path(__file__).resolve().parents[2]


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_percentile_interpolates_between_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert percentile(values, 50) == 30.0
    assert percentile(values, 0) == 10.0 and percentile(values, 100) == 50.0
    assert percentile(values, 95) == pytest.approx(48.0)
    assert percentile([7.0], 95) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summary_groups_taps_by_the_screen_tapped() -> None:
    samples = [
        {"screen_from": "attract", "screen_to": "rating", "latency_ms": 80.0, "dispatch_ms": 10.0},
        {"screen_from": "attract", "screen_to": "rating", "latency_ms": 40.0, "dispatch_ms": 30.0},
        {"screen_from": "rating", "screen_to": "follow_up", "latency_ms": 20.0, "dispatch_ms": 15.0},
    ]
    summary = summarise_taps(samples)
    assert summary["taps"] == 3 and summary["max_ms"] == 80.0
    assert summary["p50_ms"] == 40.0 and summary["dispatch_p50_ms"] == 15.0
    assert summary["by_screen"]["attract"] == {"taps": 2, "p50_ms": 60.0, "p95_ms": pytest.approx(78.0)}
    assert summary["by_screen"]["rating"]["taps"] == 1


def test_proc_readings_follow_this_process() -> None:
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn CPU time (not wall time) so the counter must move
        pass
    assert cpu_seconds(os.getpid()) >= before + 0.2
    rss = memory_mb(os.getpid(), "VmRSS")  # first: the high-water mark read after it cannot be below it
    assert memory_mb(os.getpid(), "VmHWM") >= rss > 10


def test_short_run_writes_every_figure(tmp_path: Path, whisper_bundle: Path) -> None:
    out = tmp_path / "kiosk.json"
    result = subprocess.run(
        [
            BORNE,
            "bench",
            "kiosk",
            "--model",
            str(whisper_bundle),
            "--starts",
            "1",
            "--idle-seconds",
            "1",
            "--cycles",
            "1",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "kiosk tap → next screen" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["benchmark"] == "kiosk"
    subjects = {subject["name"]: subject for subject in report["subjects"]}
    assert set(subjects) == {
        "borne kiosk (model loading)",
        "kiosk, no input device (10 fps polling)",
        "plain Kivy, 1 Button, maxfps 60",
        "plain Kivy, 1 Button, maxfps 10",
    }
    for subject in subjects.values():
        assert len(subject["starts_s"]) == 1 and positive(subject["start_s"])
        assert positive(subject["peak_rss_mb"]) and positive(subject["rss_mb"])
        idle = subject["idle_cpu_percent"]
        assert isinstance(idle, float) and 0 <= idle < 200  # at most two cores' worth on this machine
    for name in ("borne kiosk (model loading)", "kiosk, no input device (10 fps polling)"):
        kiosk = subjects[name]
        assert kiosk["model_state"] == "ok" and positive(kiosk["model_load_s"])
    # the loaded model makes the kiosk heavier than an empty Kivy window
    assert kiosk["peak_rss_mb"] > subjects["plain Kivy, 1 Button, maxfps 60"]["peak_rss_mb"]
    # the taps with an input device the kiosk watches (a FIFO each touch writes to), then with none
    assert "woken by input" in report["taps"]["attract"] and "polling" in report["taps_polling"]["attract"]
    for taps in (report["taps"], report["taps_polling"]):
        assert taps["taps"] == len(taps["samples"]) >= 3
        assert [s["screen_from"] for s in taps["samples"][:2]] == ["attract", "rating"]
        for sample in taps["samples"]:
            # dispatched after it arrived, so the frame is at least as close to the dispatch as to the arrival
            assert positive(sample["dispatch_ms"]) and sample["dispatch_ms"] <= sample["latency_ms"]
        assert positive(taps["p50_ms"]) and taps["p95_ms"] >= taps["p50_ms"]
        assert positive(taps["dispatch_p50_ms"]) and taps["dispatch_p95_ms"] >= taps["dispatch_p50_ms"]
        assert taps["records_stored"] == 1  # the scripted visit went through the flow into the outbox
    assert report["targets"]["tap_p95_ms"] == 100.0
    # a whole visit in each language with a long spoken comment, beside the same speech through the pipeline alone
    visits = {visit["language"]: visit for visit in report["visits"]}
    assert set(visits) == {"fr", "en", "es"}
    assert visits["fr"]["speech_s"] >= 60  # more than the session's limit: it listens a whole minute
    for visit in visits.values():
        assert visit["speech_s"] >= 35 and visit["comment_words"] >= 50  # transcribed and stored
        assert visit["kiosk_visit_peak_rss_mb"] > visit["transcribe_peak_rss_mb"] > 100  # the UI costs memory too
    assert "spoken comment" in result.stdout
