"""Review: the moderated text exactly as it will be sent; send, add to it, redo or delete. When nothing
was heard, it says so, and "redo" tries again. Before it times out (the rating is then sent alone), a
countdown asks whether the citizen is still there; any touch starts the time again."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from kiosk_app.ui.screens.base import KioskScreen, load_kv


class ReviewScreen(KioskScreen):
    comment_text = StringProperty("")
    nothing_heard = BooleanProperty(False)
    seconds_left = NumericProperty(0)  # 0: no countdown before the review times out

    def refresh(self) -> None:
        comment = self.kiosk.flow.session.comment
        self.comment_text = comment.text if comment is not None else ""
        self.nothing_heard = self.kiosk.flow.session.nothing_heard
        self.seconds_left = 0

    def on_touch_down(self, touch: Any) -> bool:
        """Any touch says the citizen is still there: the review's timeout starts again."""
        if self.kiosk.flow.still_here():
            self.seconds_left = 0
        return bool(super().on_touch_down(touch))

    def spoken_text(self) -> str:
        tr = self.kiosk.tr
        if self.nothing_heard:
            choices = ", ".join(tr(key) for key in ("review.send", "review.redo", "review.delete"))
            return f"{tr('review.title')} {tr('review.nothing_heard')} {choices}."
        choices = ", ".join(tr(key) for key in ("review.send", "review.add", "review.redo", "review.delete"))
        return f"{tr('review.title')} {self.comment_text} {choices}."


load_kv(__file__)
