"""Scripted sessions inside the running app: a generator yields waits, the runner polls them on Kivy's clock.

Used by the offscreen demo (`borne kiosk --demo --offscreen`) and the UI tests' driver. Waits use real
time (`time.monotonic`), independent of the flow's clock.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.core.window import Window

logger = logging.getLogger(__name__)


class ScriptFailed(RuntimeError):
    """A scripted step did not happen in time."""


@dataclass(frozen=True)
class Wait:
    condition: Callable[[], bool]
    timeout_s: float
    what: str


def until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> Wait:
    return Wait(condition, timeout_s, what)


def pause(seconds: float) -> Wait:
    deadline = time.monotonic() + seconds
    return Wait(lambda: time.monotonic() >= deadline, seconds + 5, f"pause {seconds} s")


Script = Iterator[Wait]


class ScriptRunner:
    """Runs `script` step by step on the UI thread; `done(error)` is called once at the end."""

    def __init__(self, script: Script, done: Callable[[BaseException | None], object]) -> None:
        self._script = script
        self._done = done
        self._wait: Wait | None = None
        self._deadline = 0.0
        self._event: Any = None

    def start(self) -> None:
        self._event = Clock.schedule_interval(self._poll, 0.05)

    def _poll(self, _dt: float) -> None:
        try:
            if self._wait is not None and not self._wait.condition():
                if time.monotonic() > self._deadline:
                    raise ScriptFailed(f"timed out waiting for {self._wait.what} ({self._wait.timeout_s:.0f} s)")
                return
            self._wait = next(self._script)
            self._deadline = time.monotonic() + self._wait.timeout_s
        except StopIteration:
            self._finish(None)
        except Exception as error:
            self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        self._event.cancel()
        self._done(error)


def screenshot(path: Path) -> Path:
    """Save the window's current frame as `path` (PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = Window.screenshot(name=str(path.with_name(f".{path.stem}.png")))
    os.replace(saved, path)
    return path
