"""What ingest does with one MQTT message: `handle(topic, payload, store) -> Outcome`, never raising on a payload.

- Too big, not UTF-8, not JSON, not an object, no usable `batch_id`, or a topic that is not a device's
  batch topic: dead-lettered, no Ack (there is nobody or nothing to answer).
- Payload site or device different from the topic's (which the broker's ACL ties to the client's
  certificate): the whole batch is rejected (an Ack with a rejection whose `record_id` is null, plus
  every record id it could read) and dead-lettered.
- A batch envelope that breaks the contract (unknown field, too many records...): rejected and
  dead-lettered the same way.
- Otherwise records are validated one by one: good ones are stored (accepted, or duplicates when they
  were stored before), bad ones are rejected with their reason and the payload is dead-lettered with
  the list; all of it in one transaction.

A terminal's Status (on its status topic) is kept as its latest for `borne ingest health`; one that is
too big, invalid, or names another terminal is dead-lettered.

Only the store may raise (`StoreUnavailable`, `StoreError` when it fails while storing good records):
the caller then leaves the message unacknowledged at the broker, which delivers it again.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from borne_common.ids import IDENTIFIER_PATTERN
from platform_ingest.store import DeadLetter, Store, StoreUnavailable
from sync_agent.contract import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    SCHEMA_VERSION,
    Ack,
    Batch,
    Record,
    Rejection,
    Status,
    topic,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD_BYTES = 4 * MAX_BATCH_BYTES
MAX_REASON_CHARS = 500  # Rejection.reason's bound
_IDENTIFIER = IDENTIFIER_PATTERN.strip("^$")
_BATCH_TOPIC = re.compile(rf"^borne/v1/({_IDENTIFIER})/({_IDENTIFIER})/batch$")
_STATUS_TOPIC = re.compile(rf"^borne/v1/({_IDENTIFIER})/({_IDENTIFIER})/status$")
MAX_STATUS_BYTES = 16 * 1024
_ENVELOPE_FIELDS = {"batch_id", "site_id", "device_id", "records", "sent_at"}
_MAYBE_BAD_TEXT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
"""The only ways valid UTF-8 JSON can hold a NUL or a surrogate in a string: a \u0000 or \ud800-\udfff escape
(a raw NUL is not JSON and valid UTF-8 has no surrogates). Payloads without one skip the per-string check."""


@dataclass(frozen=True)
class Outcome:
    """What to do after `handle`: publish `ack` on `ack_topic` (if any); `dead_letter` is the reason kept."""

    ack: Ack | None = None
    ack_topic: str | None = None
    dead_letter: str | None = None
    accepted: list[uuid.UUID] = field(default_factory=list)
    duplicates: list[uuid.UUID] = field(default_factory=list)


class _DeadLetterOnly(Exception):
    """The payload cannot be answered: keep it with this reason."""


def handle(
    message_topic: str, payload: bytes, store: Store, *, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
) -> Outcome:
    """Validate, store and answer one message received on `message_topic`; see the module docstring."""
    if message_topic.endswith("/status"):
        return _handle_status(message_topic, payload, store)
    try:
        site_id, device_id = _parse_topic(message_topic)
        document = _parse_payload(payload, max_payload_bytes)
        batch_id = _batch_id(document)
    except _DeadLetterOnly as error:
        return _dead_letter_only(store, message_topic, payload, str(error))
    ack_topic = topic(site_id, device_id, "ack")
    try:
        return _handle_batch(store, message_topic, payload, ack_topic, site_id, device_id, batch_id, document)
    except StoreUnavailable:
        raise
    except Exception as error:  # a payload we did not foresee must not stop ingest
        logger.exception("unexpected error handling batch %s from %s/%s", batch_id, site_id, device_id)
        return _dead_letter_only(store, message_topic, payload, f"internal error ({type(error).__name__})")


def _handle_status(message_topic: str, payload: bytes, store: Store) -> Outcome:
    """A terminal's Status, kept as its latest for `borne ingest health`; never answered."""
    match = _STATUS_TOPIC.match(message_topic)
    if match is None:
        return _dead_letter_only(store, message_topic, payload, "topic is not borne/v1/{site}/{device}/status")
    if len(payload) > MAX_STATUS_BYTES:
        return _dead_letter_only(
            store, message_topic, payload, f"status of {len(payload)} bytes is over the {MAX_STATUS_BYTES}-byte limit"
        )
    try:
        status = Status.model_validate_json(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        reason = _bounded(f"status is not valid: {where}: {first['msg']}")
        return _dead_letter_only(store, message_topic, payload, reason)
    except (ValueError, RecursionError) as error:
        return _dead_letter_only(store, message_topic, payload, f"status is not usable JSON ({type(error).__name__})")
    if (status.site_id, status.device_id) != match.groups():
        return _dead_letter_only(store, message_topic, payload, "status names another terminal than its topic")
    store.put_status(status)
    return Outcome()


def _dead_letter_only(store: Store, message_topic: str, payload: bytes, reason: str) -> Outcome:
    logger.warning("dead-lettered %d byte(s) from %r: %s", len(payload), message_topic[:200], reason)
    store.add_dead_letter(DeadLetter(message_topic, payload, reason))
    return Outcome(dead_letter=reason)


def _parse_topic(message_topic: str) -> tuple[str, str]:
    match = _BATCH_TOPIC.match(message_topic)
    if match is None:
        raise _DeadLetterOnly("topic is not borne/v1/{site}/{device}/batch")
    return match.group(1), match.group(2)


def _parse_payload(payload: bytes, max_payload_bytes: int) -> dict[str, Any]:
    if len(payload) > max_payload_bytes:
        raise _DeadLetterOnly(f"payload of {len(payload)} bytes is over the {max_payload_bytes}-byte limit")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _DeadLetterOnly(f"payload is not UTF-8 (byte {error.start})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise _DeadLetterOnly(f"payload is not JSON ({error.msg} at {where})") from None
    except RecursionError:
        raise _DeadLetterOnly("payload is not usable JSON (nested too deeply)") from None
    except ValueError as error:  # what json itself refuses to build, e.g. an integer of over 4300 digits
        raise _DeadLetterOnly(f"payload is not usable JSON ({str(error)[:200]})") from None
    if not isinstance(document, dict):
        raise _DeadLetterOnly(f"payload is a JSON {type(document).__name__}, not a Batch object")
    return document


def _batch_id(document: dict[str, Any]) -> uuid.UUID:
    value = document.get("batch_id")
    if not isinstance(value, str):
        raise _DeadLetterOnly("payload has no batch_id string, so it cannot be acknowledged")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _DeadLetterOnly("batch_id is not a UUID, so the batch cannot be acknowledged") from None


def _handle_batch(
    store: Store,
    message_topic: str,
    payload: bytes,
    ack_topic: str,
    site_id: str,
    device_id: str,
    batch_id: uuid.UUID,
    document: dict[str, Any],
) -> Outcome:
    raw_records = document.get("records")
    readable_ids = _readable_record_ids(raw_records)

    def reject_all(reason: str) -> Outcome:
        reason = _bounded(reason)
        rejected = [Rejection(record_id=None, reason=reason)]
        rejected += [Rejection(record_id=record_id, reason=reason) for record_id in readable_ids]
        ack = Ack(batch_id=batch_id, rejected=rejected)
        logger.warning("rejected batch %s from %s/%s: %s", batch_id, site_id, device_id, reason)
        store.add_dead_letter(DeadLetter(message_topic, payload, reason))
        return Outcome(ack=ack, ack_topic=ack_topic, dead_letter=reason)

    if (document.get("site_id"), document.get("device_id")) != (site_id, device_id):
        return reject_all(
            f"payload site_id/device_id {_short(document.get('site_id'))}/{_short(document.get('device_id'))} "
            f"differ from the topic's {site_id}/{device_id}"
        )
    envelope_problem = _envelope_problem(document)
    if envelope_problem:
        return reject_all(envelope_problem)
    assert isinstance(raw_records, list)  # noqa: S101 — checked by _envelope_problem

    good: list[Record] = []
    rejected: list[Rejection] = []
    unanswerable: list[str] = []  # records without a readable id: nothing the device could match
    seen: set[uuid.UUID] = set()
    check_text = _MAYBE_BAD_TEXT.search(payload) is not None
    for index, raw in enumerate(raw_records):
        record, reason = _validate_record(raw, site_id, device_id, check_text=check_text)
        record_id = record.record_id if record is not None else _readable_id(raw)
        if record_id is None:
            unanswerable.append(_bounded(f"records[{index}] has no valid record_id: {reason}"))
            continue
        if record_id in seen:
            continue  # the same id twice in one batch: the first one decides
        seen.add(record_id)
        if record is not None:
            good.append(record)
        else:
            rejected.append(Rejection(record_id=record_id, reason=_bounded(f"records[{index}]: {reason}")))

    dead_letter = None
    if rejected or unanswerable:
        problems = [f"{rejection.record_id}: {rejection.reason}" for rejection in rejected] + unanswerable
        dead_letter = DeadLetter(message_topic, payload, f"{len(problems)} record(s) rejected: {'; '.join(problems)}")
    accepted, duplicates = store.store(good, dead_letter=dead_letter) if good or dead_letter else ([], [])
    ack = Ack(batch_id=batch_id, accepted=accepted, duplicates=duplicates, rejected=rejected)
    logger.info(
        "batch %s from %s/%s: %d accepted, %d duplicate(s), %d rejected",
        batch_id,
        site_id,
        device_id,
        len(accepted),
        len(duplicates),
        len(rejected),
    )
    return Outcome(
        ack=ack,
        ack_topic=ack_topic,
        dead_letter=dead_letter.reason if dead_letter else None,
        accepted=accepted,
        duplicates=duplicates,
    )


def _envelope_problem(document: dict[str, Any]) -> str | None:
    """Why the batch around the records breaks the contract, or None."""
    unknown = sorted(str(key) for key in set(document) - _ENVELOPE_FIELDS)
    if unknown:
        return f"unknown batch field(s): {', '.join(_short(key) for key in unknown)}"
    records = document.get("records")
    if not isinstance(records, list):
        return "records must be a list of records"
    if not 1 <= len(records) <= MAX_BATCH_RECORDS:
        return f"a batch holds 1 to {MAX_BATCH_RECORDS} records, not {len(records)}"
    try:
        Batch.model_validate({**document, "records": [None]})
    except ValidationError as error:
        problems = [problem for problem in error.errors(include_url=False) if problem["loc"][:1] != ("records",)]
        if problems:
            return _describe(problems)
    return None


def _validate_record(raw: Any, site_id: str, device_id: str, *, check_text: bool = True) -> tuple[Record | None, str]:
    if not isinstance(raw, dict):
        return None, f"a record must be a JSON object, not {type(raw).__name__}"
    version = raw.get("schema", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        return None, f"unknown schema version {_short(version)}; this platform reads version {SCHEMA_VERSION}"
    text_problem = _text_problem(raw) if check_text else None
    if text_problem:
        return None, text_problem
    try:
        record = Record.model_validate(raw)
    except ValidationError as error:
        return None, _describe(error.errors(include_url=False))
    if (record.site_id, record.device_id) != (site_id, device_id):
        return None, f"record belongs to {record.site_id}/{record.device_id}, not to this batch's {site_id}/{device_id}"
    return record, ""


def _text_problem(value: Any, depth: int = 0) -> str | None:
    """Strings no database text column takes (NUL, lone surrogates), anywhere in `value`."""
    if depth > 20:
        return "nested too deeply"
    if isinstance(value, str):
        if "\x00" in value:
            return "text contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "text contains an unpaired surrogate escape"
        return None
    items: list[Any] = []
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list):
        items = value
    for item in items:
        problem = _text_problem(item, depth + 1)
        if problem:
            return problem
    return None


def _readable_id(raw: Any) -> uuid.UUID | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("record_id"), str):
        return None
    try:
        return uuid.UUID(raw["record_id"])
    except ValueError:
        return None


def _readable_record_ids(raw_records: Any) -> list[uuid.UUID]:
    """The distinct record ids that can be read from `raw_records`, at most MAX_BATCH_RECORDS."""
    if not isinstance(raw_records, list):
        return []
    ids: dict[uuid.UUID, None] = {}
    for raw in raw_records:
        record_id = _readable_id(raw)
        if record_id is not None:
            ids[record_id] = None
            if len(ids) == MAX_BATCH_RECORDS:
                break
    return list(ids)


def _describe(problems: list[Any]) -> str:
    """Pydantic errors as 'field.path: message', without the offending values (they may be long or hostile)."""
    parts = []
    for problem in problems[:5]:
        location = ".".join(_short(part, 40) for part in problem["loc"]) or "(value)"
        parts.append(f"{location}: {problem['msg']}")
    if len(problems) > 5:
        parts.append(f"and {len(problems) - 5} more problem(s)")
    return "; ".join(parts)


def _short(value: Any, limit: int = 70) -> str:
    text = repr(value) if not isinstance(value, str | int) else str(value)
    text = "".join(char if char.isprintable() else "?" for char in text)
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bounded(reason: str) -> str:
    reason = _short(reason, MAX_REASON_CHARS)
    return reason or "invalid"
