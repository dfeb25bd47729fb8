"""Voice fixtures live in tests/conftest.py (the kiosk tests use the real model too)."""

from tests.conftest import SPEECH_DIR, speech_clips

__all__ = ["SPEECH_DIR", "speech_clips"]
