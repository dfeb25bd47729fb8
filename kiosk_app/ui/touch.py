"""Synthesised touches: a finger down and up at a point, dispatched through Kivy's input path
(`EventLoop.post_dispatch_input`), exactly as a touchscreen's events would be."""

from __future__ import annotations

import itertools
from typing import Any

from kivy.base import EventLoop
from kivy.core.window import Window
from kivy.input.motionevent import MotionEvent
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
