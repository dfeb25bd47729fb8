"""Attract: the question, the faces and "touch the screen": a tap on a face is the vote itself (the
visit goes on from that rating), a tap anywhere else starts a session on the rating screen.

Five taps in the top-left corner within three seconds open the technician's PIN screen (when a PIN
is configured). A tap there that no other follows within `CORNER_GRACE_S` was a citizen's: it starts a
session as anywhere else (without a PIN, at once).
"""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.properties import StringProperty

from kiosk_app.technician import Corner, CornerGesture
from kiosk_app.ui.i18n import pick
from kiosk_app.ui.screens.base import KioskScreen, fill_flags, load_kv

CORNER_GRACE_S = 0.8  # the technician's taps come faster (five within three seconds)


class AttractScreen(KioskScreen):
    question = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gesture = CornerGesture(corner=Corner.TOP_LEFT, clock=lambda: self.kiosk.clock.monotonic())
        self._corner_tap = Clock.create_trigger(self._corner_tap_alone, CORNER_GRACE_S)

    def refresh(self) -> None:
        self.question = pick(self.kiosk.settings.kiosk.question, self.kiosk.language)
        fill_flags(self.ids.flags, self)

    def on_touch_down(self, touch: Any) -> bool:
        if super().on_touch_down(touch):  # a flag
            return True
        if not self.collide_point(*touch.pos):
            return False
        x, y = touch.pos
        self.gesture.size_px = self.kiosk.m.target
        if self.kiosk.pin_gate.enabled and self.gesture.in_corner(x, y, self.width, self.height):
            self._corner_tap.cancel()
            if self.gesture.tap(x, y, self.width, self.height):
                self.kiosk.open_technician_gate()
            else:
                self._corner_tap()  # a citizen's tap, unless the next one follows quickly
            return True
        self._corner_tap.cancel()
        self.gesture.reset()
        self.kiosk.flow.touch()
        return True

    def _corner_tap_alone(self, _dt: float) -> None:
        self.gesture.reset()
        if self.kiosk.manager.current == self.name:
            self.kiosk.flow.touch()


load_kv(__file__)
