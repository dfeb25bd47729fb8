"""Closed: outside the opening hours (`[kiosk] opening_hours`) the screen goes dark and takes no rating; one
short line says when it is closed. The technician's corner still opens the PIN screen."""

from __future__ import annotations

from typing import Any

from kiosk_app.technician import Corner, CornerGesture
from kiosk_app.ui.screens.base import KioskScreen, load_kv


class ClosedScreen(KioskScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gesture = CornerGesture(corner=Corner.TOP_LEFT, clock=lambda: self.kiosk.clock.monotonic())

    def on_touch_down(self, touch: Any) -> bool:
        if not self.collide_point(*touch.pos):
            return False
        x, y = touch.pos
        self.gesture.size_px = self.kiosk.m.target
        if (
            self.kiosk.pin_gate.enabled
            and self.gesture.in_corner(x, y, self.width, self.height)
            and self.gesture.tap(x, y, self.width, self.height)
        ):
            self.kiosk.open_technician_gate()
        return True  # every other touch is swallowed: a cleaner wiping the screen leaves no rating


load_kv(__file__)
