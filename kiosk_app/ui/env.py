"""Kivy's environment, set before Kivy is first imported: no command-line parsing, no files under ~/.kivy,
logs through Python's logging, offscreen rendering when asked (tests, the headless demo)."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile

IDLE_FPS = 10  # the attract screen with no input device to watch: the loop polls input ten times a second
ATTRACT_FPS_WOKEN = 1.0  # the attract screen while `InputWake` watches input devices: a touch wakes the loop
ACTIVE_FPS = 30  # other screens: live text, level meter
CLOCK = "interrupt"  # Kivy's clock whose idle sleep ends when an event is scheduled for now (from any thread)


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
    if os.environ.get("KIVY_CLOCK", CLOCK) != CLOCK:
        raise RuntimeError(
            f"KIVY_CLOCK={os.environ['KIVY_CLOCK']} in the environment replaces the {CLOCK!r} clock the kiosk needs "
            "(a touch on the attract screen must end the loop's sleep): unset KIVY_CLOCK"
        )
    logging.getLogger("kivy").addFilter(_KivyLogFilter())
    from kivy.config import Config

    Config.set("kivy", "kivy_clock", CLOCK)
    Config.set("graphics", "maxfps", str(ACTIVE_FPS))
    Config.set("graphics", "multisamples", "0")
    Config.set("kivy", "exit_on_escape", "0")
    for name, _value in Config.items("input"):  # Kivy's default adds `probesysfs`: a touchscreen read twice
        Config.remove_option("input", name)
    Config.set("input", "mouse", "mouse,disable_multitouch")  # SDL's pointer, synthesised from the touchscreen
    if width and height:
        Config.set("graphics", "fullscreen", "0")
        Config.set("graphics", "width", str(width))
        Config.set("graphics", "height", str(height))
        Config.set("graphics", "resizable", "0")
    else:
        Config.set("graphics", "fullscreen", "auto")
        Config.set("graphics", "show_cursor", "0")
    check_clock()


def check_clock() -> None:
    """Raise unless Kivy's clock is interruptible: a wake from another thread must end its idle sleep.

    Only events scheduled for now (`Clock.schedule_once(cb, 0)`, from any thread) end the sleep
    (`interupt_next_only`); timed events run at the next frame, as with Kivy's default clock. Kivy 2.3.1's
    interrupt clock otherwise ends the sleep for the next timed event too, and spins while that event is
    nearly due: measured with a plain window at maxfps 10, 585 loop turns a second with only Kivy's own
    1 s cache purge scheduled, 54,000 (a whole core) with a 50 ms interval added; with this flag, 13.5."""
    from kivy.clock import Clock, ClockBaseInterruptBehavior

    if not isinstance(Clock, ClockBaseInterruptBehavior):
        raise RuntimeError(
            f"Kivy's clock is {Clock.__class__.__name__}, not an interruptible one: set the kivy_clock option to "
            f"{CLOCK!r} (kiosk_app.ui.env.prepare_kivy) before kivy.clock is first imported, and unset KIVY_CLOCK"
        )
    Clock.interupt_next_only = True  # (sic: Kivy's spelling)


def set_frame_rate(fps: float) -> None:
    """Cap the event loop's turns (Kivy reads `maxfps` once; its clock keeps the value here). The loop also
    turns at once when an event is scheduled for now, from any thread (`InputWake`, see `check_clock`)."""
    from kivy.clock import Clock

    if hasattr(Clock, "_max_fps"):
        Clock._max_fps = float(fps)
