"""A real French speech clip shipped with the package, for the kiosk demo and the terminal self-test."""

from __future__ import annotations

from pathlib import Path

FRENCH_SAMPLE = Path(__file__).with_name("fr_sample.wav")
FRENCH_SAMPLE_TEXT = "Le temps d'attente est évalué à"

__all__ = ["FRENCH_SAMPLE", "FRENCH_SAMPLE_TEXT"]
