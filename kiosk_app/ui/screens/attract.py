"""Attract: the question, the faces and "touch the screen": a tap on a face is the vote itself (the
visit goes on from that rating), a tap anywhere else starts a session on the rating screen.

Five taps in the top-left corner within three seconds open the technician's PIN screen (when a PIN
is configured); those taps never start a session.
"""

from __future__ import annotations

from typing import Any

from kivy.properties import StringProperty

from kiosk_app.technician import Corner, CornerGesture
from kiosk_app.ui.i18n import pick
from kiosk_app.ui.screens.base import KioskScreen, fill_flags, load_kv


class AttractScreen(KioskScreen):
    question = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gesture = CornerGesture(corner=Corner.TOP_LEFT, clock=lambda: self.kiosk.clock.monotonic())

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
        if self.gesture.in_corner(x, y, self.width, self.height):
            if self.gesture.tap(x, y, self.width, self.height):
                self.kiosk.open_technician_gate()
            return True
        self.gesture.reset()
        self.kiosk.flow.touch()
        return True


load_kv(__file__)
