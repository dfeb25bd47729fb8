"""Review: the moderated text exactly as it will be sent; send, redo or delete."""

from __future__ import annotations

from kivy.properties import StringProperty

from kiosk_app.ui.screens.base import KioskScreen, load_kv


class ReviewScreen(KioskScreen):
    comment_text = StringProperty("")

    def refresh(self) -> None:
        comment = self.kiosk.flow.session.comment
        self.comment_text = comment.text if comment is not None else ""

    def spoken_text(self) -> str:
        tr = self.kiosk.tr
        return (
            f"{tr('review.title')} {self.comment_text} {tr('review.send')}, {tr('review.redo')}, {tr('review.delete')}."
        )


load_kv(__file__)
