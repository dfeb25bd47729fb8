"""Sizes on screen from the window size, the screen's density and the font scale (no Kivy here).

Touch targets are at least `MIN_TARGET_MM` at the configured density. Text and spacing are designed
for the 800 x 480 Pi touchscreen and grow with larger windows, so a 1920 x 1080 screen is not a small
island of text; `font_scale` multiplies every text size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_TARGET_MM = 15.0
DESIGN_LONG, DESIGN_SHORT = 800, 480


@dataclass(frozen=True)
class Metrics:
    width: int
    height: int
    dpi: float
    font_scale: float

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    @property
    def scale(self) -> float:
        """How much larger than the 800 x 480 design this window is (never below 1)."""
        long_side, short_side = max(self.width, self.height), min(self.width, self.height)
        return max(1.0, min(long_side / DESIGN_LONG, short_side / DESIGN_SHORT))

    def mm(self, millimetres: float) -> float:
        return millimetres * self.dpi / 25.4

    @property
    def target(self) -> float:
        """Smallest side of any button, in pixels: 15 mm at the configured density, or more on large screens."""
        return float(max(math.ceil(self.mm(MIN_TARGET_MM)), round(84 * self.scale)))

    def px(self, design_px: float) -> float:
        """A length of the 800 x 480 design, scaled to this window."""
        return round(design_px * self.scale)

    def font(self, design_px: float) -> float:
        """A text size of the 800 x 480 design, scaled to this window and by `font_scale`."""
        return round(design_px * self.scale * self.font_scale)

    @property
    def padding(self) -> float:
        return self.px(14)

    @property
    def spacing(self) -> float:
        return self.px(12)
