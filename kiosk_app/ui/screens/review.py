"""Review: the moderated text exactly as it will be sent; send, redo or delete. When nothing was heard,
it says so, and "redo" tries again."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty

from kiosk_app.ui.screens.base import KioskScreen, load_kv


class ReviewScreen(KioskScreen):
    comment_text = StringProperty("")
    nothing_heard = BooleanProperty(False)

    def refresh(self) -> None:
        comment = self.kiosk.flow.session.comment
        self.comment_text = comment.text if comment is not None else ""
        self.nothing_heard = self.kiosk.flow.session.nothing_heard

    def spoken_text(self) -> str:
        tr = self.kiosk.tr
        said = tr("review.nothing_heard") if self.nothing_heard else self.comment_text
        return f"{tr('review.title')} {said} {tr('review.send')}, {tr('review.redo')}, {tr('review.delete')}."


load_kv(__file__)
