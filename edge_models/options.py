"""Tunables of the voice pipeline, as frozen pydantic models.

The kiosk embeds `VoiceOptions` as the `[voice]` section of its TOML settings; nothing here loads
settings by itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_MODELS_DIR = Path("/var/lib/borne/models")
DEFAULT_MODEL_NAME = "whisper-base"
SAMPLE_RATE = 16000  # what Whisper and Silero VAD expect
FRAME_SAMPLES = 512  # one Silero VAD v6 frame: 32 ms at 16 kHz
SPOKEN_LANGUAGES = ("fr", "en", "es")  # what a visit may speak: the moderation has word lists for these

# Phrases Whisper is known to invent on silence or noise (subtitle credits learned from its
# training data). Compared after normalisation (lower case, no punctuation, no accents).
DEFAULT_PHANTOM_PHRASES: tuple[str, ...] = (
    "Sous-titres réalisés par la communauté d'Amara.org",
    "Sous-titrage Société Radio-Canada",
    "Sous-titrage ST' 501",
    "Sous-titrage FR",
    "Sous-titres par Jérémy Diaz",
    "Sous-titres fait par la communauté d'Amara.org",
    "Merci d'avoir regardé",
    "Merci d'avoir regardé cette vidéo",
    "Merci de votre attention",
    "Merci à tous",
    "Abonnez-vous",
    "N'oubliez pas de vous abonner",
    "Sous-titres",
    "Amara.org",
    "...",
    "Musique",
    "Applaudissements",
)


class VadOptions(BaseModel):
    """Silero VAD thresholds (probabilities per 32 ms frame)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="A frame with speech probability at or above this is speech."
    )
    neg_threshold: float = Field(
        0.35,
        ge=0.0,
        le=1.0,
        description="Once in speech, a frame stays speech until its probability drops below this.",
    )

    @model_validator(mode="after")
    def _neg_below_threshold(self) -> VadOptions:
        if self.neg_threshold > self.threshold:
            raise ValueError(f"neg_threshold ({self.neg_threshold}) must not exceed threshold ({self.threshold})")
        return self


class SegmenterOptions(BaseModel):
    """How speech frames are grouped into phrases and when a session ends."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pause_s: float = Field(
        0.5, gt=0.0, le=5.0, description="Silence that ends a phrase (seconds); the phrase is transcribed."
    )
    long_phrase_s: float = Field(
        8.0,
        gt=0.0,
        le=30.0,
        description=(
            "Once a phrase is this long, a shorter pause (short_pause_s) ends it. Whisper is more accurate on "
            "long phrases (whole sentences, with their context); the last phrase's decoding is what the citizen "
            "waits for."
        ),
    )
    short_pause_s: float = Field(
        0.2, gt=0.0, le=5.0, description="Pause that ends a phrase already longer than long_phrase_s (seconds)."
    )
    speculate_after_s: float = Field(
        0.15,
        ge=0.0,
        le=5.0,
        description=(
            "In a phrase shorter than long_phrase_s, transcribe it already after this much silence (0: never); "
            "the result stands if the pause reaches pause_s and is discarded if speech resumes."
        ),
    )
    min_speech_s: float = Field(
        0.25, ge=0.0, le=5.0, description="Phrases with less speech than this are dropped as clicks/noise."
    )
    max_phrase_s: float = Field(
        15.0, gt=1.0, le=30.0, description="A phrase longer than this is cut (Whisper's window is 30 s)."
    )
    pad_s: float = Field(
        0.5, ge=0.0, le=1.0, description="Audio kept before the first and after the last speech frame."
    )
    session_silence_s: float = Field(
        6.0,
        gt=0.0,
        le=30.0,
        description="Silence after the last phrase that ends the session (the citizen has finished); long "
        "enough that a pause to think of the next sentence does not cut the comment.",
    )
    countdown_s: float = Field(
        3.0,
        ge=0.0,
        le=30.0,
        description="The last seconds before the session ends, for that silence or at max_session_s, are counted "
        "down to the citizen (Quiet events), so the end never comes unannounced; 0: no countdown.",
    )
    initial_silence_s: float = Field(
        8.0, gt=0.0, le=60.0, description="Silence before any speech that ends the session with no text."
    )
    max_session_s: float = Field(
        60.0, gt=1.0, le=600.0, description="Longest a session may listen, speech or not (seconds)."
    )

    @model_validator(mode="after")
    def _speculation_before_pause(self) -> SegmenterOptions:
        if self.speculate_after_s >= self.pause_s:
            raise ValueError(
                f"speculate_after_s ({self.speculate_after_s}) must be shorter than pause_s ({self.pause_s}); "
                "set it to 0 to turn speculation off"
            )
        return self


class GuardOptions(BaseModel):
    """Hallucination guard thresholds applied to each transcribed phrase."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    no_speech_prob: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Drop a phrase whose no-speech probability is above this and whose log-prob is low.",
    )
    low_logprob: float = Field(
        -0.7,
        le=0.0,
        description="Average log-probability below which a high no-speech probability drops the phrase.",
    )
    min_avg_logprob: float = Field(
        -0.8, le=0.0, description="Drop a phrase whose average token log-probability is below this."
    )
    max_compression_ratio: float = Field(
        2.4, gt=0.0, description="Drop a phrase whose gzip compression ratio is above this (repetitive text)."
    )
    max_repeats: int = Field(
        4, ge=2, description="Drop a phrase where one n-gram (1 to 4 words) repeats this many times in a row."
    )
    max_sentence_repeats: int = Field(
        3, ge=2, description="Drop a phrase where a run of 3 words or more repeats this many times in a row."
    )
    phantom_phrases: tuple[str, ...] = Field(
        DEFAULT_PHANTOM_PHRASES, description="Whisper phantom texts; a phrase equal to one is dropped."
    )


class VoiceOptions(BaseModel):
    """Everything the voice pipeline reads: model, decoding, VAD, segmenter, guard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str = Field(DEFAULT_MODEL_NAME, min_length=1, description="Bundle name under models_dir (a directory).")
    models_dir: Path = Field(DEFAULT_MODELS_DIR, description="Directory holding the installed model bundles.")
    language: str = Field(
        "fr",
        min_length=2,
        description="Language Whisper transcribes in (no detection), and a visit's in a language not in `languages`.",
    )
    languages: tuple[str, ...] = Field(
        SPOKEN_LANGUAGES,
        min_length=1,
        description="Languages a visit may speak in: a visit in one of them is transcribed and moderated in it "
        f"(each needs the model's language token and moderation word lists: {', '.join(SPOKEN_LANGUAGES)}).",
    )
    # One thread: Whisper's decoder runs many small steps, and a second thread cost more in
    # synchronisation than it gave (decoding 2-3x slower on the 2-core host, docs/voice.md).
    threads: int = Field(
        1,
        ge=1,
        le=64,
        description="CPU threads for Whisper (CTranslate2 intra-op); raise it only where it measures faster.",
    )
    compute_type: str = Field(
        "auto", description="CTranslate2 compute type; 'auto' picks int8 on CPUs (see choose_compute_type)."
    )
    beam_size: int = Field(5, ge=1, le=10, description="Beam search width for Whisper decoding.")
    window_margin_s: float = Field(
        1.0,
        ge=0.0,
        le=30.0,
        description="The encoder sees the phrase plus this margin instead of a fixed 30 s window.",
    )
    min_window_s: float = Field(
        10.0,
        ge=1.0,
        le=30.0,
        description="Shortest encoder window (seconds); shorter windows make Whisper repeat itself.",
    )
    fallback_window_s: float = Field(
        20.0,
        ge=1.0,
        le=30.0,
        description="Encoder window of the last retry of a phrase whose decoding stays degenerate (seconds; 30 is "
        "Whisper's full window). Its memory grows with the square of the window: 20 s needs about 75 MB less at "
        "its peak than 30 s.",
    )
    max_tokens_per_s: float = Field(
        8.0, gt=0.0, description="Decoding stops after this many tokens per second of audio (loop guard)."
    )
    retry_repetition_penalty: float = Field(
        1.2,
        ge=1.0,
        le=3.0,
        description="Repetition penalty of the second decoding of a phrase whose first decoding looped.",
    )
    min_words_per_s: float = Field(
        2.2,
        ge=0.0,
        le=10.0,
        description="A phrase of 4 s or more decoded to fewer words a second may have lost its end (Whisper "
        "stopped at a pause): it is decoded again with timestamps, kept if that gives 20 % more words. 0: never.",
    )
    vad: VadOptions = Field(default_factory=VadOptions, description="Voice activity detection.")
    segmenter: SegmenterOptions = Field(default_factory=SegmenterOptions, description="Phrases and sessions.")
    guard: GuardOptions = Field(default_factory=GuardOptions, description="Hallucination guard.")

    @model_validator(mode="after")
    def _languages_known(self) -> VoiceOptions:
        unknown = [code for code in (self.language, *self.languages) if code not in SPOKEN_LANGUAGES]
        if unknown:
            raise ValueError(
                f"no speech support for {', '.join(unknown)}: languages are among {', '.join(SPOKEN_LANGUAGES)}"
            )
        return self

    @property
    def model_dir(self) -> Path:
        """Directory of the bundle this configuration uses."""
        return self.models_dir / self.model_name


__all__ = [
    "DEFAULT_MODELS_DIR",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_PHANTOM_PHRASES",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "SPOKEN_LANGUAGES",
    "GuardOptions",
    "SegmenterOptions",
    "VadOptions",
    "VoiceOptions",
]
