"""Review: the moderated text exactly as it will be sent; send, add to it, redo or delete. When nothing
was heard, it says so, and "redo" tries again. Before it times out (the rating is then sent alone), a
countdown asks whether the citizen is still there; any touch starts the time again."""

from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from kiosk_app.ui.screens.base import KioskScreen, load_kv

BUTTONS = ("review.delete", "review.redo", "review.add", "review.send")  # review.kv's order, from the left


class ReviewScreen(KioskScreen):
    comment_text = StringProperty("")
    nothing_heard = BooleanProperty(False)
    seconds_left = NumericProperty(0)  # 0: no countdown before the review times out

    def refresh(self) -> None:
        comment = self.kiosk.flow.session.comment
        self.comment_text = comment.text if comment is not None else ""
        self.nothing_heard = self.kiosk.flow.session.nothing_heard
        self.seconds_left = 0
        self.ids.comment.page = 0

    def turn_page(self) -> None:
        """The next page of a long comment; from the last, the first again."""
        comment = self.ids.comment
        comment.page = (int(comment.page) + 1) % max(1, int(comment.page_count))

    def on_touch_down(self, touch: Any) -> bool:
        """Any touch says the citizen is still there: the review's timeout starts again."""
        if self.kiosk.flow.still_here():
            self.seconds_left = 0
        return bool(super().on_touch_down(touch))

    def spoken_text(self) -> str:
        tr = self.kiosk.tr
        # the buttons in the order they are on screen, from the left ("add" is hidden when nothing was heard)
        shown = [key for key in BUTTONS if not (self.nothing_heard and key == "review.add")]
        choices = f"{tr('common.left_to_right')} " + ", ".join(tr(key) for key in shown)
        said = tr("review.nothing_heard") if self.nothing_heard else self.comment_text
        return f"{tr('review.title')} {said} {choices}."


load_kv(__file__)
