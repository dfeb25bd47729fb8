"""The kiosk's colours in one place, and the WCAG contrast of every text/background pair used.

Colours follow the French State's design system (blue France #000091, white, red Marianne).
Tests compute each pair's contrast ratio (WCAG 2.x) and require at least 4.5:1 (AA for text).
"""

from __future__ import annotations

BLUE_FRANCE = "#000091"
BLUE_LIGHT = "#E3E3FD"
RED_MARIANNE = "#C9191E"
WHITE = "#FFFFFF"
INK = "#161616"
GREY_TEXT = "#3A3A3A"
BACKGROUND = "#F6F6F6"
LINE = "#929292"

# Face colours of the four smileys (white features drawn on them).
FACES = {1: "#C9191E", 2: "#B34000", 3: "#447049", 4: "#18753C"}

# (text colour, background colour, where) for every text drawn by the UI.
TEXT_PAIRS: tuple[tuple[str, str, str], ...] = (
    (INK, BACKGROUND, "body text on the page"),
    (BLUE_FRANCE, BACKGROUND, "titles on the page"),
    (GREY_TEXT, BACKGROUND, "secondary text on the page"),
    (INK, WHITE, "text on white buttons and cards"),
    (BLUE_FRANCE, WHITE, "blue text on white buttons"),
    (WHITE, BLUE_FRANCE, "text on primary buttons and the header"),
    (WHITE, RED_MARIANNE, "text on the delete button"),
    (INK, BLUE_LIGHT, "text on the privacy note"),
    (BLUE_FRANCE, BLUE_LIGHT, "blue text on the privacy note"),
)
# Graphics that carry meaning (face features on the face colour) need 3:1 (WCAG 1.4.11).
GRAPHIC_PAIRS: tuple[tuple[str, str, str], ...] = (
    *((WHITE, colour, f"smiley {rating} features") for rating, colour in FACES.items()),
    (BLUE_FRANCE, WHITE, "button borders"),
    (BLUE_FRANCE, BLUE_LIGHT, "level meter bar on its track"),
)


def rgba(colour: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    """'#RRGGBB' -> (r, g, b, a) in 0..1, as Kivy wants."""
    value = colour.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"colour {colour!r} must be #RRGGBB")
    r, g, b = (int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return (r, g, b, alpha)


def relative_luminance(colour: str) -> float:
    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    r, g, b, _ = rgba(colour)
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG 2.x contrast ratio, from 1 (none) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(foreground), relative_luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
