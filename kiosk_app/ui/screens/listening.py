"""Listening: the live (moderated) text, the microphone level, and "done"."""

from __future__ import annotations

from kivy.properties import NumericProperty, StringProperty

from kiosk_app.ui.screens.base import KioskScreen, load_kv


class ListeningScreen(KioskScreen):
    live_text = StringProperty("")
    level = NumericProperty(0.0)

    def refresh(self) -> None:
        self.live_text = self.kiosk.flow.session.partial_text
        self.level = 0.0

    def spoken_text(self) -> str:
        tr = self.kiosk.tr
        return f"{tr('listening.title')} {tr('listening.hint')}"


load_kv(__file__)
