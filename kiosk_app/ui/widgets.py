"""The kiosk's widgets: labels that fit their box, large buttons, smileys, flags, speaker icon, level meter.

Pictograms are drawn with Kivy canvas instructions (no image files, no emoji fonts).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.core.text import Label as CoreLabel
from kivy.graphics import Color, Ellipse, Line, Mesh, Rectangle, RoundedRectangle
from kivy.graphics.scissor_instructions import ScissorPop, ScissorPush
from kivy.lang import Builder
from kivy.properties import BooleanProperty, ColorProperty, NumericProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from kiosk_app.ui import palette

MIN_FONT_PX = 10.0
LINE_HEIGHT_EM = 1.2  # a line of Roboto is about 1.2 times its font size high


def _centre(widget: Widget) -> tuple[float, float]:
    """From pos and size: `widget.center` may still hold its old value while a size change is dispatched."""
    return widget.x + widget.width / 2, widget.y + widget.height / 2


class FitLabel(Label):  # type: ignore[misc]
    """A label that wraps to its width and shrinks its font (down from `base_font_size`) until it fits, never
    below `min_font_size` (the type scale's floor: a 4 mm capital height). `natural_height` is the height
    the text needs at `base_font_size` for the current width, for layouts that give a label what it needs."""

    base_font_size = NumericProperty(20)
    min_font_size = NumericProperty(MIN_FONT_PX)
    inset = NumericProperty(4)
    natural_height = NumericProperty(0)
    widest_word = NumericProperty(0)  # the widest word's width at base_font_size: a button's least width
    floor_height = NumericProperty(0)  # the height the text needs at min_font_size: a row's least share

    def __init__(self, **kwargs: Any) -> None:
        self._fit_trigger = Clock.create_trigger(self.fit, -1)
        super().__init__(**kwargs)
        self.bind(size=self._fit_trigger, text=self._fit_trigger, base_font_size=self._fit_trigger)
        self.bind(inset=self._fit_trigger, min_font_size=self._fit_trigger)

    def fit(self, *_args: Any) -> None:
        width = max(1.0, self.width - 2 * self.inset)
        height = max(1.0, self.height - 2 * self.inset)
        self.text_size = (width, None)
        floor = min(float(self.min_font_size), float(self.base_font_size))
        size = float(self.base_font_size)
        self.font_size = size
        self.texture_update()
        self.natural_height = self.texture_size[1] + 2 * self.inset if self.text else 0
        self.widest_word = max((self._label.get_extents(word)[0] for word in self.text.split()), default=0)
        self.floor_height = self.natural_height
        if floor < size and self.text:
            self.font_size = floor
            self.texture_update()
            self.floor_height = self.texture_size[1] + 2 * self.inset
            self.font_size = size
            self.texture_update()
        while size > floor and not self._fits(width, height):
            size = max(floor, size * 0.94)
            self.font_size = size
            self.texture_update()

    def _fits(self, width: float, height: float) -> bool:
        """The text fits the box, and no word is broken across lines."""
        if self.texture_size[1] > height or self.texture_size[0] > width:
            return False
        return all(self._label.get_extents(word)[0] <= width for word in self.text.split())


class PagedLabel(FitLabel):
    """A long text shown one page at a time at `base_font_size`, never shrunk: `full_text` is cut between
    words into pages that each fit the box (the first opening with `opening`, the last closing with
    `closing`); `page` is the one shown, `page_count` how many there are. Only the shown page's texture
    exists, whatever the text's length (a scrolling view of the whole text cost far more memory)."""

    full_text = StringProperty("")
    opening = StringProperty("")
    closing = StringProperty("")
    page = NumericProperty(0)
    page_count = NumericProperty(1)
    follow_end = BooleanProperty(False)  # show the last page (live text: the latest words)
    min_lines = NumericProperty(3)  # a box too low for this many lines at base_font_size gets a smaller font

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(full_text=self._fit_trigger, page=self._fit_trigger, opening=self._fit_trigger)
        self.bind(follow_end=self._fit_trigger)
        self.bind(closing=self._fit_trigger)

    def fit(self, *_args: Any) -> None:
        width = max(1.0, self.width - 2 * self.inset)
        height = max(1.0, self.height - 2 * self.inset)
        self.text_size = (width, None)
        line = float(self.base_font_size) * LINE_HEIGHT_EM
        fitting = float(self.base_font_size) * height / (line * self.min_lines)
        self.font_size = max(
            min(float(self.base_font_size), fitting), min(float(self.min_font_size), self.base_font_size)
        )
        pages = self.paginate(width, height)
        self.page_count = len(pages)
        self.page = len(pages) - 1 if self.follow_end else min(int(self.page), len(pages) - 1)
        self.text = pages[int(self.page)]
        self.texture_update()
        self.natural_height = self.texture_size[1] + 2 * self.inset if self.text else 0

    def paginate(self, width: float, height: float) -> list[str]:
        """The pages, each as many whole words as fit `height` at the label's font (at least one word)."""
        words = self.full_text.split()
        if not words:
            return [f"{self.opening}{self.closing}"]
        words[0] = self.opening + words[0]
        words[-1] += self.closing
        core = CoreLabel(
            font_size=self.font_size,
            font_name=self.font_name,
            bold=self.bold,
            italic=self.italic,
            halign=self.halign,
            text_size=(width, None),
        )
        core.resolve_font_name()

        def fits(piece: list[str]) -> bool:
            core.text = " ".join(piece)
            return bool(core.render()[1] <= height)

        pages: list[str] = []
        start = 0
        while start < len(words):
            low, high = start + 1, len(words)  # the page ends before index `end`; low always fits (one word)
            while low < high:
                middle = (low + high + 1) // 2
                if fits(words[start:middle]):
                    low = middle
                else:
                    high = middle - 1
            pages.append(" ".join(words[start:low]))
            start = low
        return pages


class KioskButton(ButtonBehavior, FitLabel):  # type: ignore[misc]
    """A large flat button with a border; colours from the palette."""

    background = ColorProperty(palette.rgba(palette.WHITE))
    border_colour = ColorProperty(palette.rgba(palette.BLUE_FRANCE))


class CardButton(ButtonBehavior, BoxLayout):  # type: ignore[misc]
    """A white card holding a pictogram and a word; the whole card is the touch target."""

    background = ColorProperty(palette.rgba(palette.WHITE))
    border_colour = ColorProperty(palette.rgba(palette.BLUE_FRANCE))
    selected = BooleanProperty(False)


class _Drawn(Widget):  # type: ignore[misc]
    """A widget drawn on its canvas by `_draw`, again whenever its place, its size or one of the properties
    named in `redraw_on` changes."""

    redraw_on: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(pos=self._draw, size=self._draw, **dict.fromkeys(self.redraw_on, self._draw))
        self._draw()

    def _draw(self, *_args: Any) -> None:
        raise NotImplementedError


class Smiley(_Drawn):
    """A face for a rating (1 very dissatisfied .. 4 very satisfied): coloured disc, white features."""

    rating = NumericProperty(3)
    redraw_on = ("rating",)

    def _draw(self, *_args: Any) -> None:
        rating = int(self.rating)
        r = min(self.width, self.height) / 2
        cx, cy = _centre(self)
        stroke = max(1.5, r * 0.09)
        self.canvas.clear()
        with self.canvas:
            Color(*palette.rgba(palette.FACES.get(rating, palette.BLUE_FRANCE)))
            Ellipse(pos=(cx - r, cy - r), size=(2 * r, 2 * r))
            Color(*palette.rgba(palette.WHITE))
            eye = r * 0.13
            for side in (-1, 1):
                Ellipse(pos=(cx + side * r * 0.35 - eye, cy + r * 0.22 - eye), size=(2 * eye, 2 * eye))
            if rating == 1:  # frowning brows
                for side in (-1, 1):
                    Line(
                        points=[cx + side * r * 0.55, cy + r * 0.52, cx + side * r * 0.18, cy + r * 0.40],
                        width=stroke * 0.7,
                        cap="round",
                    )
            # mouth: an arc, curvature from -1 (frown) to 1 (smile)
            curve = {1: -0.9, 2: -0.4, 3: 0.45, 4: 1.0}.get(rating, 0.0)
            half = r * (0.42 if abs(curve) > 0.5 else 0.34)
            base_y = cy - r * 0.38 + (r * 0.22 if curve < 0 else 0)
            points: list[float] = []
            for step in range(17):
                t = -1 + step / 8
                points += [cx + t * half, base_y - curve * r * 0.22 * (1 - t * t)]
            Line(points=points, width=stroke, cap="round", joint="round")


class FaceButton(ButtonBehavior, Smiley):  # type: ignore[misc]
    """A face that is a rating button (the attract screen's: one tap votes)."""


# Flags as drawing lists in unit coordinates (0..1 on each axis).
FLAG_STRIPES: dict[str, tuple[str, tuple[tuple[str, float], ...]]] = {
    "fr": ("vertical", (("#002395", 1), ("#FFFFFF", 1), ("#ED2939", 1))),
    "es": ("horizontal", (("#AA151B", 1), ("#F1BF00", 2), ("#AA151B", 1))),
    "it": ("vertical", (("#009246", 1), ("#FFFFFF", 1), ("#CE2B37", 1))),
    "de": ("horizontal", (("#000000", 1), ("#DD0000", 1), ("#FFCE00", 1))),
    "pt": ("vertical", (("#006600", 2), ("#FF0000", 3))),
}


class Flag(_Drawn):
    """A language's flag at 3:2 inside the widget, with a thin grey outline."""

    language = StringProperty("fr")
    redraw_on = ("language",)

    def _draw(self, *_args: Any) -> None:
        w = min(self.width, self.height * 1.5)
        h = w / 1.5
        cx, cy = _centre(self)
        x0, y0 = cx - w / 2, cy - h / 2
        self.canvas.clear()
        with self.canvas:
            if self.language == "en":
                wx, wy = self.to_window(x0, y0)  # the scissor works in window coordinates
                ScissorPush(x=int(wx), y=int(wy), width=int(w), height=int(h))
                _union_flag(x0, y0, w, h)
                ScissorPop()
            elif self.language in FLAG_STRIPES:
                direction, stripes = FLAG_STRIPES[self.language]
                total = sum(weight for _, weight in stripes)
                offset = 0.0
                for colour, weight in stripes:
                    Color(*palette.rgba(colour))
                    if direction == "vertical":
                        Rectangle(pos=(x0 + offset * w / total, y0), size=(w * weight / total, h))
                    else:
                        top = y0 + h - (offset + weight) * h / total
                        Rectangle(pos=(x0, top), size=(w, h * weight / total))
                    offset += weight
            else:
                Color(*palette.rgba(palette.BLUE_LIGHT))
                Rectangle(pos=(x0, y0), size=(w, h))
            Color(*palette.rgba(palette.LINE))
            Line(rectangle=(x0, y0, w, h), width=1)


def _union_flag(x0: float, y0: float, w: float, h: float) -> None:
    """The Union Flag, simplified (diagonals not counterchanged)."""
    Color(*palette.rgba("#012169"))
    Rectangle(pos=(x0, y0), size=(w, h))
    unit = h / 30
    for colour, width in (("#FFFFFF", 3 * unit), ("#C8102E", 1 * unit)):
        Color(*palette.rgba(colour))
        Line(points=[x0, y0, x0 + w, y0 + h], width=width)
        Line(points=[x0, y0 + h, x0 + w, y0], width=width)
    Color(*palette.rgba("#FFFFFF"))
    Rectangle(pos=(x0 + w / 2 - 5 * unit, y0), size=(10 * unit, h))
    Rectangle(pos=(x0, y0 + h / 2 - 5 * unit), size=(w, 10 * unit))
    Color(*palette.rgba("#C8102E"))
    Rectangle(pos=(x0 + w / 2 - 3 * unit, y0), size=(6 * unit, h))
    Rectangle(pos=(x0, y0 + h / 2 - 3 * unit), size=(w, 6 * unit))


class _Icon(_Drawn):
    """A pictogram in one colour, drawn again whenever its place, size or colour changes."""

    colour = ColorProperty(palette.rgba(palette.BLUE_FRANCE))
    redraw_on = ("colour",)


class SpeakerIcon(_Icon):
    """A loudspeaker with sound waves, for the read-aloud button."""

    def _draw(self, *_args: Any) -> None:
        s = min(self.width, self.height)
        cx, cy = _centre(self)
        x0, y0 = cx - s / 2, cy - s / 2
        self.canvas.clear()
        with self.canvas:
            Color(*self.colour)
            Rectangle(pos=(x0 + s * 0.08, y0 + s * 0.36), size=(s * 0.16, s * 0.28))
            Mesh(
                vertices=[
                    x0 + s * 0.24, y0 + s * 0.36, 0, 0,
                    x0 + s * 0.46, y0 + s * 0.16, 0, 0,
                    x0 + s * 0.46, y0 + s * 0.84, 0, 0,
                    x0 + s * 0.24, y0 + s * 0.64, 0, 0,
                ],
                indices=[0, 1, 2, 0, 2, 3],
                mode="triangles",
            )  # fmt: skip
            for radius in (0.18, 0.32):
                Line(
                    circle=(x0 + s * 0.46, y0 + s * 0.5, s * radius, 50, 130),
                    width=max(1.2, s * 0.045),
                    cap="round",
                )


class MicIcon(_Icon):
    """A microphone."""

    def _draw(self, *_args: Any) -> None:
        s = min(self.width, self.height)
        cx, cy = _centre(self)
        y0 = cy - s / 2
        width = max(1.5, s * 0.06)
        self.canvas.clear()
        with self.canvas:
            Color(*self.colour)
            RoundedRectangle(pos=(cx - s * 0.15, y0 + s * 0.38), size=(s * 0.3, s * 0.55), radius=[s * 0.15])
            Line(circle=(cx, y0 + s * 0.58, s * 0.26, 90, 270), width=width, cap="round")
            Line(points=[cx, y0 + s * 0.32, cx, y0 + s * 0.12], width=width)
            Line(points=[cx - s * 0.16, y0 + s * 0.1, cx + s * 0.16, y0 + s * 0.1], width=width, cap="round")


class CheckMark(_Drawn):
    """Received: a blue disc with a white tick. Neutral, whatever the rating (a grin after "very
    dissatisfied" would mock the person)."""

    def _draw(self, *_args: Any) -> None:
        r = min(self.width, self.height) / 2
        cx, cy = _centre(self)
        self.canvas.clear()
        with self.canvas:
            Color(*palette.rgba(palette.BLUE_FRANCE))
            Ellipse(pos=(cx - r, cy - r), size=(2 * r, 2 * r))
            Color(*palette.rgba(palette.WHITE))
            points = [cx - r * 0.42, cy + r * 0.02, cx - r * 0.12, cy - r * 0.3, cx + r * 0.45, cy + r * 0.32]
            Line(points=points, width=max(1.5, r * 0.12), cap="round", joint="round")


class LevelMeter(_Drawn):
    """A horizontal bar showing the microphone level (0..1); redrawn only when the level changes."""

    level = NumericProperty(0.0)
    redraw_on = ("level",)

    def _draw(self, *_args: Any) -> None:
        level = min(1.0, max(0.0, float(self.level)))
        radius = self.height / 2
        self.canvas.clear()
        with self.canvas:
            Color(*palette.rgba(palette.BLUE_LIGHT))
            RoundedRectangle(pos=self.pos, size=self.size, radius=[radius])
            if level > 0:
                Color(*palette.rgba(palette.BLUE_FRANCE))
                RoundedRectangle(pos=self.pos, size=(max(2 * radius, self.width * level), self.height), radius=[radius])
            Color(*palette.rgba(palette.LINE))
            Line(rounded_rectangle=(self.x, self.y, self.width, self.height, radius), width=1)


def pulse(value: float) -> float:
    """Ease a 0..1 level so quiet speech still moves the bar."""
    return math.sqrt(max(0.0, value))


Builder.load_file(str(Path(__file__).with_name("widgets.kv")))
