"""Voice offer: leave a spoken comment? With the plain privacy line, the language to speak in; yes or no thanks."""

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
        spoken = [tr(key) for key in keys]
        spoken.insert(3, self.kiosk.speech_note(self.kiosk.language))
        return " ".join(spoken)


load_kv(__file__)
