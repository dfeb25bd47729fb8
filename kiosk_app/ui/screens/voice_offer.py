"""Voice offer: leave a spoken comment? With the plain privacy line; yes or no thanks."""

from __future__ import annotations

from kiosk_app.ui.screens.base import KioskScreen, load_kv


class VoiceOfferScreen(KioskScreen):
    def spoken_text(self) -> str:
        tr = self.kiosk.tr
        keys = (
            "voice_offer.title",
            "voice_offer.privacy",
            "voice_offer.detail",
            "voice_offer.accept",
            "voice_offer.decline",
        )
        return " ".join(tr(key) for key in keys)


load_kv(__file__)
