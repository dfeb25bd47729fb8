"""Listening: the live (moderated) text, the microphone level, "done", and before the listening ends
by itself for silence, a countdown that says so (speaking again or "done" decides); before its time
limit, a countdown too."""

from __future__ import annotations

from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from kiosk_app.ui.screens.base import KioskScreen, load_kv


class ListeningScreen(KioskScreen):
    live_text = StringProperty("")
    level = NumericProperty(0.0)
    seconds_left = NumericProperty(0)  # 0: no countdown
    time_limit = BooleanProperty(False)  # the countdown is to the session's time limit, not to an end for silence

    def refresh(self) -> None:
        self.live_text = self.kiosk.flow.session.partial_text
        self.level = 0.0
        self.seconds_left = 0
        self.time_limit = False

    def spoken_text(self) -> str:
        tr = self.kiosk.tr
        return f"{tr('listening.title')} {tr('listening.hint')} {self.kiosk.speech_note(self.kiosk.language)}"


load_kv(__file__)
