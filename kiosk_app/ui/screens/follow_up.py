"""Follow-up: the current question from the settings, its choices, and a button to skip it."""

from __future__ import annotations

import math
from typing import Any

from kivy.properties import NumericProperty, StringProperty

from kiosk_app.ui.i18n import pick
from kiosk_app.ui.screens.base import KioskScreen, load_kv
from kiosk_app.ui.widgets import KioskButton


def choice_columns(count: int, portrait: bool) -> int:
    if portrait:
        return 1 if count <= 4 else 2
    return count if count <= 3 else math.ceil(count / 2)


class FollowUpScreen(KioskScreen):
    question = StringProperty("")
    progress = StringProperty("")
    columns = NumericProperty(3)

    def refresh(self) -> None:
        app = self.kiosk
        session = app.flow.session
        follow_up = session.current_follow_up
        self.ids.choices.clear_widgets()
        if follow_up is None:
            return
        self.question = pick(follow_up.text, app.language)
        self.progress = app.tr("follow_up.progress").format(
            index=session.follow_up_index + 1, total=len(session.follow_ups)
        )
        self.columns = choice_columns(len(follow_up.choices), app.m.portrait)
        for choice in follow_up.choices:
            button = KioskButton(text=pick(choice.text, app.language))
            button.bind(on_release=self._answer(choice.id))
            self.ids.choices.add_widget(button)

    def _answer(self, choice_id: str) -> Any:
        return lambda _button: self.kiosk.flow.answer(choice_id)

    def on_size(self, *_args: Any) -> None:
        follow_up = self.kiosk.flow.session.current_follow_up if self.kiosk else None
        if follow_up is not None:
            self.columns = choice_columns(len(follow_up.choices), self.kiosk.m.portrait)

    def spoken_text(self) -> str:
        follow_up = self.kiosk.flow.session.current_follow_up
        if follow_up is None:
            return ""
        choices = ", ".join(pick(choice.text, self.kiosk.language) for choice in follow_up.choices)
        return f"{self.question} {choices}. {self.kiosk.tr('common.skip')}."


load_kv(__file__)
