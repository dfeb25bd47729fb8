"""Kivy's environment, set before Kivy is first imported: no command-line parsing, no files under ~/.kivy,
logs through Python's logging, offscreen rendering when asked (tests, the headless demo)."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile

IDLE_FPS = 10  # the attract screen: nothing moves, the loop wakes ten times a second
ACTIVE_FPS = 30  # other screens: live text, level meter


class _KivyLogFilter(logging.Filter):
    """Kivy's records below the process's level (`borne -v`) are dropped: Kivy sets its own logger to INFO
    when imported. So is the error Kivy logs when the optional mtdev library is absent: not our error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < max(logging.getLogger().getEffectiveLevel(), logging.INFO):
            return False
        return "MTDev is not supported" not in record.getMessage()


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def prepare_kivy(*, width: int | None, height: int | None, offscreen: bool) -> None:
    """Environment and `Config` for the one Kivy window of this process; call before importing kivy.app."""
    if "kivy.core.window" in sys.modules:
        raise RuntimeError("Kivy's window already exists in this process; prepare_kivy must run first")
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONFIG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    if "KIVY_HOME" not in os.environ:  # Kivy wants a home; nothing is written there, and it goes at exit
        home = tempfile.mkdtemp(prefix="borne-kivy-")
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        os.environ["KIVY_HOME"] = home
    if offscreen:
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
    logging.getLogger("kivy").addFilter(_KivyLogFilter())
    from kivy.config import Config

    Config.set("graphics", "maxfps", str(ACTIVE_FPS))
    Config.set("graphics", "multisamples", "0")
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    if width and height:
        Config.set("graphics", "fullscreen", "0")
        Config.set("graphics", "width", str(width))
        Config.set("graphics", "height", str(height))
        Config.set("graphics", "resizable", "0")
    else:
        Config.set("graphics", "fullscreen", "auto")
        Config.set("graphics", "show_cursor", "0")


def set_frame_rate(fps: int) -> None:
    """Cap the event loop's wake-ups (Kivy reads `maxfps` once; its clock keeps the value here)."""
    from kivy.clock import Clock

    if hasattr(Clock, "_max_fps"):
        Clock._max_fps = float(fps)
