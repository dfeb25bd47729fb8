"""Voice fixtures: the default model bundle built once per session, the real model loaded once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SPEECH_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "fr_speech"


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

    return VoiceOptions(models_dir=models_dir, threads=2)


@pytest.fixture(scope="session")
def transcriber(whisper_bundle: Path, voice_options: Any) -> Any:
    from edge_models.asr import WhisperTranscriber

    return WhisperTranscriber(whisper_bundle, voice_options)


@pytest.fixture(scope="session")
def vad() -> Any:
    from edge_models.vad import SileroVad

    return SileroVad()
