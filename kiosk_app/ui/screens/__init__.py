"""One screen per flow state (plus the technician's two), each with its own `.kv` file beside it."""

from __future__ import annotations

from kiosk_app.ui.screens.attract import AttractScreen
from kiosk_app.ui.screens.base import KioskScreen
from kiosk_app.ui.screens.closed import ClosedScreen
from kiosk_app.ui.screens.follow_up import FollowUpScreen
from kiosk_app.ui.screens.listening import ListeningScreen
from kiosk_app.ui.screens.rating import RatingScreen
from kiosk_app.ui.screens.review import ReviewScreen
from kiosk_app.ui.screens.technician import TechnicianGateScreen, TechnicianScreen
from kiosk_app.ui.screens.thanks import ThanksScreen
from kiosk_app.ui.screens.voice_offer import VoiceOfferScreen

__all__ = [
    "AttractScreen",
    "ClosedScreen",
    "FollowUpScreen",
    "KioskScreen",
    "ListeningScreen",
    "RatingScreen",
    "ReviewScreen",
    "TechnicianGateScreen",
    "TechnicianScreen",
    "ThanksScreen",
    "VoiceOfferScreen",
]
