"""Sizes on screen from the window size, the screen's density and the font scale (no Kivy here).

Touch targets are at least `MIN_TARGET_MM` at the configured density. Spacing is designed for the
800 x 480 Pi touchscreen and grows with larger windows. Text follows one type scale (`TYPE_SCALE`):
every size is a step above the smallest, which is the larger of a 4 mm capital height at the
configured density and the design's smallest text grown with the window; `font_scale` multiplies
every step. No text is ever drawn below `min_font` (a fitting label shrinks no further), so nothing
on screen has a capital height under `MIN_CAP_MM`, whatever the font scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

MIN_TARGET_MM = 15.0
DESIGN_LONG, DESIGN_SHORT = 800, 480
MIN_CAP_MM = 4.0  # legible from about a metre (issue 19)
TECHNICIAN_MIN_CAP_MM = 2.8  # the technician's screens, read at arm's length, may shrink text to this
CAP_HEIGHT_EM = 0.711  # Roboto, Kivy's default font: capital height / font size (the UI tests measure it)
DESIGN_SMALL_PX = 22  # the smallest text of the 800 x 480 design, grown with larger windows

Step = Literal["small", "body", "title", "display", "huge"]
TYPE_SCALE: dict[str, float] = {"small": 1.0, "body": 1.15, "title": 1.3, "display": 1.55, "huge": 1.9}


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

    @property
    def min_font(self) -> float:
        """The smallest font size drawn: a capital height of MIN_CAP_MM at the configured density."""
        return float(math.ceil(self.mm(MIN_CAP_MM) / CAP_HEIGHT_EM))

    @property
    def technician_min_font(self) -> float:
        """The technician screens' floor: a capital height of TECHNICIAN_MIN_CAP_MM."""
        return float(math.ceil(self.mm(TECHNICIAN_MIN_CAP_MM) / CAP_HEIGHT_EM))

    def text(self, step: Step) -> float:
        """The font size of a step of the type scale, times `font_scale`, never under `min_font`."""
        smallest = max(self.min_font, DESIGN_SMALL_PX * self.scale)
        return float(max(self.min_font, round(smallest * TYPE_SCALE[step] * self.font_scale)))

    def cap_mm(self, font_size: float) -> float:
        """The capital height of text at `font_size`, in millimetres on this screen."""
        return font_size * CAP_HEIGHT_EM * 25.4 / self.dpi

    @property
    def padding(self) -> float:
        return self.px(14)

    @property
    def spacing(self) -> float:
        return self.px(12)
