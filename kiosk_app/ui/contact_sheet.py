"""Contact sheets: every screen of the tour at every documented size, one PNG per language.

`borne kiosk --demo --contact-sheets DIR` runs the tour (`kiosk_app.ui.tour`) once per size and language,
each in its own process (one window per process), each screen saved as a reduced tile; then tiles them,
a row per size and a column per screen, into `DIR/contact-sheet-<language>.png`. No image library: the
frame is read back from OpenGL, reduced with numpy, and written as a plain PNG with zlib.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from kiosk_app.flow import ManualClock
    from kiosk_app.ui.app import KioskApp
    from kiosk_app.ui.script import Script

LANDSCAPE_SIZES = ((800, 480), (1024, 600), (1280, 800), (1920, 1080))
DOCUMENTED_SIZES = LANDSCAPE_SIZES + tuple((height, width) for width, height in LANDSCAPE_SIZES)
TILE_PX = 200  # a tile's longer side at most
GAP_PX = 8
BACKGROUND = (200, 200, 200)


def grab_window() -> np.ndarray:
    """The window's current frame as rows of RGB pixels, top row first (read back from OpenGL)."""
    from kivy.core.window import Window
    from kivy.graphics.opengl import GL_RGB, GL_UNSIGNED_BYTE, glReadPixels

    width, height = Window.size
    data = glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE)
    rows = np.frombuffer(bytes(data), dtype=np.uint8)[: width * height * 3].reshape(height, width, 3)
    return rows[::-1]


def reduce(frame: np.ndarray, tile_px: int = TILE_PX) -> np.ndarray:
    """The frame shrunk by a whole factor (each pixel the mean of a square) so its longer side fits tile_px."""
    height, width, _ = frame.shape
    factor = max(1, -(-max(height, width) // tile_px))
    cropped = frame[: height - height % factor, : width - width % factor].astype(np.float32)
    h, w = cropped.shape[0] // factor, cropped.shape[1] // factor
    reduced: np.ndarray = cropped.reshape(h, factor, w, factor, 3).mean(axis=(1, 3)).round().astype(np.uint8)
    return reduced


def save_tile(frame: np.ndarray, directory: Path, size: tuple[int, int], screen: str) -> Path:
    path = directory / f"{size[0]}x{size[1]}-{screen}.npy"
    directory.mkdir(parents=True, exist_ok=True)
    np.save(path, reduce(frame))
    return path


def assemble(directory: Path, screens: list[str]) -> np.ndarray:
    """The tiles saved in `directory` as one image: a row per documented size, a column per screen."""
    cell = TILE_PX + GAP_PX
    sheet = np.empty((GAP_PX + cell * len(DOCUMENTED_SIZES), GAP_PX + cell * len(screens), 3), dtype=np.uint8)
    sheet[:] = BACKGROUND
    for row, (width, height) in enumerate(DOCUMENTED_SIZES):
        for column, screen in enumerate(screens):
            path = directory / f"{width}x{height}-{screen}.npy"
            if not path.exists():
                continue
            tile = np.load(path)
            top, left = GAP_PX + row * cell, GAP_PX + column * cell
            sheet[top : top + tile.shape[0], left : left + tile.shape[1]] = tile
    return sheet


def write_png(image: np.ndarray, path: Path) -> Path:
    """`image` (rows of RGB pixels, top first) as an 8-bit RGB PNG."""
    height, width, _ = image.shape
    raw = b"".join(b"\x00" + image[row].tobytes() for row in range(height))  # no filter (filter 2 made it larger)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    )
    return path


def photograph_tour(app: KioskApp, clock: ManualClock, tiles: Path) -> Script:
    """The tour, each screen saved as a tile in `tiles`, and the screens' order beside them."""
    from kivy.core.window import Window

    from kiosk_app.ui.script import pause, until
    from kiosk_app.ui.tour import tour

    size = (int(Window.width), int(Window.height))
    names: list[str] = []

    def capture(name: str) -> Script:
        yield until(lambda: app.screen_ready(app.manager.current), "the screen")
        yield pause(0.3)
        save_tile(grab_window(), tiles, size, name)
        names.append(name)

    yield from tour(app, clock, capture)
    (tiles / f"{size[0]}x{size[1]}-screens.txt").write_text("\n".join(names) + "\n", encoding="utf-8")


def screens_in(tiles: Path) -> list[str]:
    """The screens' order, as the 800 x 480 tour saved it."""
    width, height = DOCUMENTED_SIZES[0]
    return (tiles / f"{width}x{height}-screens.txt").read_text(encoding="utf-8").split()
