"""`borne kiosk --demo --contact-sheets`: every screen at every documented size, a PNG per language."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np

from kiosk_app.ui.contact_sheet import BACKGROUND, DOCUMENTED_SIZES, GAP_PX, TILE_PX, reduce, write_png
from tests.kiosk_app.ui.test_kiosk_command import BORNE
from tests.kiosk_app.ui.test_screens import ROOT, SCREENS, _env

TOUR = SCREENS  # the screens in the order of kiosk_app.ui.tour, with the default two follow-ups


def read_png(path: Path) -> np.ndarray:
    """A PNG as write_png writes it (8-bit RGB, one IDAT, filter 0 on every row)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (depth, colour) == (8, 2)
    position, idat = 8, b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        assert struct.unpack(">I", data[position + 8 + length : position + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IDAT":
            idat += body
        position += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * 3)
    assert not rows[:, 0].any()  # filter 0
    return rows[:, 1:].reshape(height, width, 3)


def test_a_png_written_reads_back_the_same_pixels(tmp_path: Path) -> None:
    image = np.random.default_rng(7).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    assert np.array_equal(read_png(write_png(image, tmp_path / "image.png")), image)


def test_a_frame_is_reduced_by_a_whole_factor_to_the_mean_of_each_square() -> None:
    frame = np.zeros((480, 800, 3), dtype=np.uint8)
    frame[:4, :4] = 200  # one 4 x 4 square
    frame[:4, 4:8] = (10, 20, 30)
    tile = reduce(frame)
    assert tile.shape == (120, 200, 3)  # 800 / 4 = TILE_PX
    assert tile[0, 0].tolist() == [200, 200, 200] and tile[0, 1].tolist() == [10, 20, 30] and not tile[1:].any()
    assert reduce(np.zeros((1920, 1080, 3), dtype=np.uint8)).shape == (192, 108, 3)  # 1920 / 10


def test_the_contact_sheet_tiles_every_screen_at_every_documented_size(tmp_path: Path) -> None:
    config = tmp_path / "borne.toml"
    config.write_text('[kiosk]\nlanguages = ["es", "fr"]\n', encoding="utf-8")
    sheets = tmp_path / "sheets"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    done = subprocess.run(  # our own command: one tour per size, in processes of their own
        [BORNE, "kiosk", "--demo", "--config", str(config), "--contact-sheets", str(sheets)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=_env() | {"KIVY_HOME": str(tmp_path), "TMPDIR": str(temporary)},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert not list(temporary.iterdir())  # the tiles and each tour's outbox are gone
    assert sorted(path.name for path in sheets.iterdir()) == ["contact-sheet-es.png", "contact-sheet-fr.png"]
    sheet = read_png(sheets / "contact-sheet-es.png")
    cell = TILE_PX + GAP_PX
    assert sheet.shape == (GAP_PX + cell * len(DOCUMENTED_SIZES), GAP_PX + cell * len(TOUR), 3)
    background = np.all(sheet == BACKGROUND, axis=2)
    for row, (width, height) in enumerate(DOCUMENTED_SIZES):
        factor = -(-max(width, height) // TILE_PX)
        for column, screen in enumerate(TOUR):
            top, left = GAP_PX + row * cell, GAP_PX + column * cell
            tile = background[top : top + height // factor, left : left + width // factor]
            assert tile.mean() < 0.05, f"{width}x{height} {screen}: no frame in its tile"
            assert background[top : top + cell - GAP_PX, left + width // factor : left + cell - GAP_PX].all()
    # the screens are in the tour's language: the Spanish and French attract screens differ
    french = read_png(sheets / "contact-sheet-fr.png")
    assert not np.array_equal(
        sheet[GAP_PX : GAP_PX + 120, GAP_PX : GAP_PX + 200], french[GAP_PX : GAP_PX + 120, GAP_PX : GAP_PX + 200]
    )
