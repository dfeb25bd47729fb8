"""Settings of the kiosk process: the questions, the timeouts, the screen, the outbox it writes to."""

from __future__ import annotations

from pydantic import Field, field_validator

from borne_common.settings import BorneSettings, Section
from edge_models.options import VoiceOptions
from kiosk_app.technician import PIN_HASH_PATTERN
from sync_agent.contract import Choice, FollowUp, LanguageCode, OpeningRange, Rating, Texts, Weekday
from sync_agent.settings import OutboxSection

QUESTION = {
    "fr": "Satisfait de votre démarche dans votre France services aujourd'hui ?",
    "en": "Satisfied with what you came to do at France services today?",
    "es": "¿Qué tal su trámite de hoy en France services?",
}
SCREEN_LANGUAGES = ("fr", "en", "es")
"""The languages the screens are written in (kiosk_app/ui/locale/)."""
PI_TOUCHSCREEN_DPI = 133.0  # the official Raspberry Pi 7" touchscreen: 800 x 480 on 154 x 86 mm


def _texts(fr: str, en: str, es: str) -> dict[str, str]:
    return {"fr": fr, "en": en, "es": es}


DEFAULT_FOLLOW_UPS = [
    FollowUp(
        id="resolved",
        text=_texts(
            "Votre démarche a-t-elle abouti ?", "Did you get done what you came for?", "¿Pudo completar su trámite?"
        ),
        choices=[
            Choice(id="yes", text=_texts("Oui", "Yes", "Sí")),
            Choice(id="partly", text=_texts("En partie", "Partly", "En parte")),
            Choice(id="no", text=_texts("Non", "No", "No")),
        ],
    ),
    FollowUp(
        id="waiting",
        text=_texts("Combien de temps avez-vous attendu ?", "How long did you wait?", "¿Cuánto tiempo esperó?"),
        choices=[
            Choice(id="under_15", text=_texts("Moins de 15 min", "Under 15 min", "Menos de 15 min")),
            Choice(id="15_to_30", text=_texts("15 à 30 min", "15 to 30 min", "De 15 a 30 min")),
            Choice(id="over_30", text=_texts("Plus de 30 min", "Over 30 min", "Más de 30 min")),
        ],
        ask_when=[Rating.VERY_DISSATISFIED, Rating.DISSATISFIED],
    ),
]


class KioskSection(Section):
    """What the citizen is asked and how long each screen waits."""

    question: Texts = Field(default_factory=lambda: dict(QUESTION), description="The main question per language.")
    follow_ups: list[FollowUp] = Field(
        default_factory=lambda: list(DEFAULT_FOLLOW_UPS),
        max_length=8,
        description="Follow-up questions asked after the rating, in order (each may be skipped).",
    )
    languages: list[LanguageCode] = Field(
        default_factory=lambda: ["fr", "en", "es"],
        min_length=1,
        description="Languages offered; the first is the default.",
    )
    opening_hours: dict[Weekday, list[OpeningRange]] = Field(
        default_factory=dict,
        description="When the site is open, in local time ('HH:MM-HH:MM' per day, e.g. mon = [\"09:00-12:00\"]); "
        "outside them the screen sleeps and takes no rating. Empty: always open.",
    )
    voice_enabled: bool = Field(default=True, description="Offer to leave a spoken comment when a model is present.")
    rating_timeout_s: float = Field(default=30, gt=0, le=3600, description="Rating screen back to attract.")
    follow_up_timeout_s: float = Field(default=30, gt=0, le=3600, description="A follow-up left unanswered.")
    voice_offer_timeout_s: float = Field(default=20, gt=0, le=3600, description="The voice offer left unanswered.")
    listening_timeout_s: float = Field(default=90, gt=0, le=3600, description="Listening with no final text.")
    review_timeout_s: float = Field(default=60, gt=0, le=3600, description="Review left without send or delete.")
    review_warning_s: float = Field(
        default=15,
        ge=0,
        le=3600,
        description="The last seconds of the review are counted down: without a touch the rating is sent alone, "
        "the comment dropped (0: no warning).",
    )
    thanks_timeout_s: float = Field(default=5, gt=0, le=600, description="Thanks screen back to attract.")
    debounce_s: float = Field(default=0.6, ge=0, le=10, description="Taps closer than this to the last are ignored.")
    burst_window_s: float = Field(default=60, gt=0, le=3600, description="Window in which ratings are counted.")
    burst_count: int = Field(
        default=5, ge=2, le=1000, description="This many ratings within the window flags the record as a burst."
    )
    screen_dpi: float = Field(
        default=PI_TOUCHSCREEN_DPI,
        ge=50,
        le=600,
        description="Pixels per inch of the touchscreen; touch targets (15 mm at least) are sized from it.",
    )
    font_scale: float = Field(default=1.0, ge=0.75, le=2.0, description="Multiplies every text size on screen.")
    technician_pin_hash: str = Field(
        default="",
        pattern=rf"({PIN_HASH_PATTERN})|^$",
        description="scrypt hash of the technician screen's PIN, as `borne provision pin` writes it (empty, "
        "and no technician_pin: the screen is disabled).",
    )
    technician_pin: str = Field(
        default="",
        pattern=r"^([0-9]{4,12})?$",
        description="Older settings: the PIN in plain text (4 to 12 digits); `borne provision pin` replaces it "
        "with technician_pin_hash. Ignored when technician_pin_hash is set.",
    )
    microphone_device: str = Field(
        default="", description="Input device (PortAudio name or index); empty: the system's default input."
    )
    input_devices: list[str] = Field(
        default_factory=lambda: ["/dev/input/event*"],
        max_length=32,
        description="Glob patterns of the input device nodes (evdev) whose activity wakes the attract screen at "
        "once; none readable: the attract screen polls input ten times a second instead.",
    )

    @field_validator("question")
    @classmethod
    def _french_question(cls, value: dict[str, str]) -> dict[str, str]:
        if "fr" not in value:
            raise ValueError("a French text ('fr') is required")
        return value

    @field_validator("languages")
    @classmethod
    def _unique_languages(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each language may appear once")
        unknown = [language for language in value if language not in SCREEN_LANGUAGES]
        if unknown:
            raise ValueError(f"the screens are not written in {', '.join(unknown)}; choose among {SCREEN_LANGUAGES}")
        return value


class KioskSettings(BorneSettings):
    """Settings read by `borne kiosk` and `borne simulate`."""

    outbox: OutboxSection = Field(default_factory=OutboxSection, description="Where records are stored.")
    kiosk: KioskSection = Field(default_factory=KioskSection, description="Questions and timeouts.")
    voice: VoiceOptions = Field(default_factory=VoiceOptions, description="Speech model and pipeline.")
