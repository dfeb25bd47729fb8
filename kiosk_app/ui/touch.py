"""Synthesised touches: a finger down and up at a point, dispatched through Kivy's input path
(`EventLoop.post_dispatch_input`), exactly as a touchscreen's events would be; or queued from another
thread and dispatched at the event loop's next turn (`QueuedTouches`: the tests, the benchmark)."""

from __future__ import annotations

import itertools
import time
from collections import deque
from typing import Any

from kivy.base import EventLoop
from kivy.core.window import Window
from kivy.input.motionevent import MotionEvent
from kivy.input.provider import MotionEventProvider
from kivy.uix.widget import Widget

_ids = itertools.count(1)


class SyntheticTouch(MotionEvent):  # type: ignore[misc]
    def __init__(self, x: float, y: float) -> None:
        super().__init__("synthetic", next(_ids), (x / Window.width, y / Window.height), is_touch=True)

    def depack(self, args: Any) -> None:
        self.sx, self.sy = args
        super().depack(args)


def tap_at(x: float, y: float) -> None:
    """Press and release at window coordinates (origin bottom left)."""
    touch = SyntheticTouch(x, y)
    EventLoop.post_dispatch_input("begin", touch)
    touch.move((x / Window.width, y / Window.height))
    EventLoop.post_dispatch_input("end", touch)


def tap(widget: Widget) -> None:
    """Tap the centre of a widget."""
    x, y = widget.to_window(*widget.center)
    tap_at(x, y)


class QueuedTouches:
    """A Kivy input provider fed from another thread, as a touchscreen's: a touch (x, y in window
    coordinates) appended to `queue` waits for the event loop's next turn; `dispatched_at` is the
    `time.perf_counter()` of the last dispatch. `install()` adds it to the event loop."""

    def __init__(self) -> None:
        self.queue: deque[tuple[float, float]] = deque()
        self.dispatched_at = 0.0
        owner = self

        class Provider(MotionEventProvider):  # type: ignore[misc]
            def update(self, dispatch_fn: Any) -> None:
                while owner.queue:
                    x, y = owner.queue.popleft()
                    owner.dispatched_at = time.perf_counter()
                    touch = SyntheticTouch(x, y)
                    dispatch_fn("begin", touch)
                    dispatch_fn("end", touch)

        self.provider = Provider("queued-touch", None)

    def install(self) -> None:
        EventLoop.add_input_provider(self.provider)
        self.provider.start()
