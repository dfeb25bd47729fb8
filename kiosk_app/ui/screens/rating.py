"""Rating: the question and one large card per smiley (pictogram and word); flags to change language."""

from __future__ import annotations

from kivy.properties import StringProperty

from kiosk_app.ui.i18n import pick
from kiosk_app.ui.screens.base import KioskScreen, fill_flags, load_kv
from sync_agent.contract import Rating


class RatingScreen(KioskScreen):
    question = StringProperty("")

    def refresh(self) -> None:
        self.question = pick(self.kiosk.settings.kiosk.question, self.kiosk.language)
        fill_flags(self.ids.flags, self)

    def spoken_text(self) -> str:
        words = [self.kiosk.tr(f"rating.{int(rating)}") for rating in Rating]  # as on screen, from the left
        return f"{self.question} {self.kiosk.tr('common.left_to_right')} " + ", ".join(words) + "."


load_kv(__file__)
