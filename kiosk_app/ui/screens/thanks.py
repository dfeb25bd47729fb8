"""Thanks: the session is saved; back to attract after a few seconds, or a tap starts a new session."""

from __future__ import annotations

from typing import Any

from kiosk_app.ui.screens.base import KioskScreen, load_kv


class ThanksScreen(KioskScreen):
    def on_touch_down(self, touch: Any) -> bool:
        if not self.collide_point(*touch.pos):
            return False
        self.kiosk.flow.touch()
        return True


load_kv(__file__)
