"""The wire contract between terminals and the central platform (MQTT v5, JSON, UTF-8).

These pydantic models are the single source of the JSON Schemas committed under `schemas/`
(`borne schema export schemas`). Every model refuses unknown fields and is immutable.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from borne_common.ids import IDENTIFIER_PATTERN

SCHEMA_VERSION: Literal[1] = 1

LANGUAGE_PATTERN = r"^[a-z]{2}$"
KEY_PATTERN = r"^[a-z0-9][a-z0-9_]{0,31}$"

MAX_COMMENT_CHARS = 2000
MAX_ANSWERS = 8
MAX_BATCH_RECORDS = 200
MAX_BATCH_BYTES = 256 * 1024

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
LanguageCode = Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN)]
Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class Rating(IntEnum):
    """The smiley the citizen tapped."""

    VERY_DISSATISFIED = 1
    DISSATISFIED = 2
    SATISFIED = 3
    VERY_SATISFIED = 4

    @property
    def satisfied(self) -> bool:
        return self >= Rating.SATISFIED


class Flag(StrEnum):
    """Facts about a session worth knowing at the platform; a flagged record is kept, not deleted."""

    BURST_SUSPECTED = "burst_suspected"  # many ratings in a short time at this terminal
    ABANDONED = "abandoned"  # the citizen walked away after rating; what was given is kept


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    def to_json(self) -> str:
        return self.model_dump_json()


def truncate_to_hour(moment: datetime) -> datetime:
    """The hour `moment` falls in: the only time a record carries."""
    return moment.replace(minute=0, second=0, microsecond=0)


def new_record_id(period: datetime) -> uuid.UUID:
    """A UUIDv7 whose timestamp is the start of the record's hour, not the exact moment.

    RFC 9562 (section 6.1) lets an implementation reduce the timestamp's precision; we do, so that
    the id carries no more time than `period` does. The 74 other bits are random.
    """
    milliseconds = int(truncate_to_hour(period).timestamp()) * 1000
    value = (milliseconds & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    random_bits = int.from_bytes(os.urandom(10), "big")
    value |= (random_bits >> 68) << 64  # 12 bits of rand_a
    value |= 0b10 << 62  # RFC 4122 variant
    value |= random_bits & ((1 << 62) - 1)  # 62 bits of rand_b
    return uuid.UUID(int=value)


class Comment(Contract):
    """What the citizen said, after moderation: never the audio, never the raw transcript."""

    text: str = Field(min_length=1, max_length=MAX_COMMENT_CHARS, description="Redacted text.")
    language: LanguageCode = Field(description="Language the speech was transcribed in.")
    source: Literal["voice"] = Field(default="voice", description="How the comment was given.")
    asr_model: str = Field(min_length=1, max_length=64, description="Speech model bundle name.")
    redactions: dict[Key, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="Number of redactions per kind (insult, telephone, name...)."
    )
    confidence: float = Field(ge=0.0, le=1.0, description="Speech recognition confidence, 0 to 1.")


class RecordDraft(Contract):
    """A record before the outbox gives it an id and stores it."""

    site_id: Identifier
    device_id: Identifier
    period: datetime = Field(description="Local time of the session truncated to the hour, with offset.")
    rating: Rating
    answers: dict[Key, Key] = Field(
        default_factory=dict, max_length=MAX_ANSWERS, description="Follow-up question id -> choice id."
    )
    comment: Comment | None = None
    flags: list[Flag] = Field(default_factory=list, max_length=len(Flag))
    ui_language: LanguageCode = "fr"
    app_version: str = Field(min_length=1, max_length=32)

    @field_validator("period")
    @classmethod
    def _hour_with_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("period needs a UTC offset, e.g. 2026-11-22T14:00:00+01:00")
        if value != truncate_to_hour(value):
            raise ValueError("period must be truncated to the hour (no exact time leaves the terminal)")
        return value

    @field_validator("flags")
    @classmethod
    def _unique_flags(cls, value: list[Flag]) -> list[Flag]:
        if len(set(value)) != len(value):
            raise ValueError("each flag may appear once")
        return value


class Record(RecordDraft):
    """One citizen session, anonymous, as stored in the outbox and sent to the platform."""

    record_id: uuid.UUID = Field(description="UUIDv7 (timestamp at hour precision), made when stored.")
    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, alias="schema")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @field_validator("record_id")
    @classmethod
    def _uuid7(cls, value: uuid.UUID) -> uuid.UUID:
        if value.version != 7:
            raise ValueError("record_id must be a UUID version 7")
        return value

    @classmethod
    def from_draft(cls, draft: RecordDraft, record_id: uuid.UUID) -> Record:
        return cls.model_validate({**draft.model_dump(), "record_id": record_id})


class Batch(Contract):
    """Records sent together on `borne/v1/{site}/{device}/batch`."""

    batch_id: uuid.UUID
    site_id: Identifier
    device_id: Identifier
    records: list[Record] = Field(min_length=1, max_length=MAX_BATCH_RECORDS)
    sent_at: datetime

    @model_validator(mode="after")
    def _records_belong_to_batch(self) -> Batch:
        for record in self.records:
            if (record.site_id, record.device_id) != (self.site_id, self.device_id):
                raise ValueError(
                    f"record {record.record_id} belongs to {record.site_id}/{record.device_id}, "
                    f"not to this batch's {self.site_id}/{self.device_id}"
                )
        if len({record.record_id for record in self.records}) != len(self.records):
            raise ValueError("a record id appears twice in the batch")
        return self


class Rejection(Contract):
    record_id: uuid.UUID | None = Field(description="The rejected record, or null for the whole batch.")
    reason: str = Field(min_length=1, max_length=500)


class Ack(Contract):
    """The platform's answer to a batch on `borne/v1/{site}/{device}/ack`: the only proof of delivery."""

    batch_id: uuid.UUID
    accepted: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_BATCH_RECORDS)
    duplicates: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_BATCH_RECORDS)
    rejected: list[Rejection] = Field(default_factory=list, max_length=MAX_BATCH_RECORDS + 1)

    @property
    def settled(self) -> set[uuid.UUID]:
        """Ids the device may stop sending: stored now or before."""
        return {*self.accepted, *self.duplicates}


MAX_CONFIG_VERSION = 1_000_000


class ComponentState(StrEnum):
    OK = "ok"
    MISSING = "missing"
    FAILED = "failed"
    LOADING = "loading"
    UNKNOWN = "unknown"


class Status(Contract):
    """Retained health report on `borne/v1/{site}/{device}/status` (last will: state offline)."""

    site_id: Identifier
    device_id: Identifier
    state: Literal["online", "offline"]
    backlog: int = Field(default=0, ge=0, description="Records not yet acknowledged.")
    oldest_pending_age_s: float | None = Field(default=None, ge=0)
    last_ack_at: datetime | None = None
    disk_free_bytes: int | None = Field(default=None, ge=0)
    versions: dict[Key, Annotated[str, StringConstraints(max_length=64)]] = Field(default_factory=dict)
    microphone: ComponentState = ComponentState.UNKNOWN
    model: ComponentState = ComponentState.UNKNOWN
    technician_pin_failures: int | None = Field(
        default=None, ge=0, description="Wrong technician PINs in a row on the kiosk since the last right one."
    )
    config_version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_CONFIG_VERSION,
        description="The DeviceConfig version the kiosk runs; absent while it runs its local settings only.",
    )
    sent_at: datetime


Texts = Annotated[
    dict[LanguageCode, ShortText],
    Field(min_length=1, description="Text per language code; 'fr' is required."),
]


def _require_french(texts: dict[str, str]) -> dict[str, str]:
    if "fr" not in texts:
        raise ValueError("a French text ('fr') is required")
    return texts


class Choice(Contract):
    id: Key
    text: Texts

    _fr = field_validator("text")(_require_french)


class FollowUp(Contract):
    """A follow-up question with its choices; the citizen may skip it."""

    id: Key
    text: Texts
    choices: list[Choice] = Field(min_length=2, max_length=6)
    ask_when: list[Rating] = Field(
        default_factory=lambda: list(Rating), min_length=1, description="Ratings after which it is asked."
    )

    _fr = field_validator("text")(_require_french)

    @field_validator("choices")
    @classmethod
    def _unique_choices(cls, value: list[Choice]) -> list[Choice]:
        if len({choice.id for choice in value}) != len(value):
            raise ValueError("choice ids must be unique within a question")
        return value


OpeningRange = Annotated[
    str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$")
]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class DeviceConfig(Contract):
    """Retained configuration on `borne/v1/{site}/{device}/config`, applied only if valid."""

    # Bounded: a terminal keeps only a higher version than the one it holds, so a version near the
    # largest integer, published once, would refuse every later configuration.
    config_version: int = Field(ge=1, le=MAX_CONFIG_VERSION)
    question: Texts
    follow_ups: list[FollowUp] = Field(default_factory=list, max_length=MAX_ANSWERS)
    languages: list[LanguageCode] = Field(default_factory=lambda: ["fr", "en"], min_length=1)
    opening_hours: dict[Weekday, list[OpeningRange]] = Field(default_factory=dict)

    _fr = field_validator("question")(_require_french)

    @field_validator("follow_ups")
    @classmethod
    def _unique_follow_ups(cls, value: list[FollowUp]) -> list[FollowUp]:
        if len({follow_up.id for follow_up in value}) != len(value):
            raise ValueError("follow-up ids must be unique")
        return value


def topic(site_id: str, device_id: str, kind: Literal["batch", "ack", "status", "config"]) -> str:
    return f"borne/v1/{site_id}/{device_id}/{kind}"


WIRE_MODELS: dict[str, type[Contract]] = {
    "record": Record,
    "batch": Batch,
    "ack": Ack,
    "status": Status,
    "device_config": DeviceConfig,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every wire model, by file stem."""
    schemas = {}
    for name, model in WIRE_MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://borne.example/schemas/v{SCHEMA_VERSION}/{name}.schema.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schemas[name] = schema
    return schemas


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


HOUR = timedelta(hours=1)
