"""Hypothesis feeds `handle` arbitrary payloads: it never raises, and every payload that is not a valid
batch for its topic is answered with rejections or dead-lettered."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from platform_ingest.ingest.consumer import handle
from platform_ingest.store import SqliteStore
from sync_agent.contract import Ack, Batch
from tests.platform_ingest.factories import SITE, batch_dict, batch_topic, make_batch, make_record

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
TEMPLATE = batch_dict(make_batch([make_record(), make_record(rating=1, comment="trop d'attente")]))
FIELDS = sorted(TEMPLATE)
RECORD_FIELDS = sorted(TEMPLATE["records"][0])


@st.composite
def mutated_batches(draw: st.DrawFn) -> bytes:
    """A valid batch with a few fields (of the batch or of a record) replaced, removed or added."""
    document: dict[str, Any] = json.loads(json.dumps(TEMPLATE))
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            target = document
            key = draw(st.sampled_from(FIELDS) | st.text(max_size=8))
        else:
            records = document.get("records")
            candidates = [record for record in records if isinstance(record, dict)] if isinstance(records, list) else []
            target = draw(st.sampled_from(candidates)) if candidates else {}
            key = draw(st.sampled_from(RECORD_FIELDS) | st.text(max_size=8))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return json.dumps(document).encode()


payloads = (
    st.binary(max_size=300)
    | json_values.map(lambda value: json.dumps(value).encode())
    | mutated_batches()
    | st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass"))
)
GOOD_TOPIC = st.just(batch_topic())
topics = st.one_of(  # mostly the payload's own topic, so validation goes past the envelope
    GOOD_TOPIC, GOOD_TOPIC, GOOD_TOPIC, st.sampled_from([batch_topic(SITE, "other"), "borne/v1/x/y/ack"]), st.text()
)


def is_valid_batch_for(topic: str, payload: bytes) -> bool:
    try:
        batch = Batch.model_validate_json(payload)
    except (ValidationError, ValueError):
        return False
    return topic == batch_topic(batch.site_id, batch.device_id)


@FUZZ
@given(topic=topics, payload=payloads)
def test_arbitrary_payloads_never_crash_and_are_answered_or_dead_lettered(topic: str, payload: bytes) -> None:
    with SqliteStore(":memory:") as store:
        outcome = handle(topic, payload, store)
        letters = store.dead_letters()
        assert (outcome.dead_letter is not None) == bool(letters)
        if outcome.ack is not None:
            Ack.model_validate_json(outcome.ack.to_json())  # what we publish is itself valid
            assert len(outcome.ack.to_json()) < 256 * 1024
            assert store.record_count() == len(outcome.ack.accepted)
        if outcome.ack is None or outcome.ack.rejected or outcome.dead_letter:
            assert outcome.dead_letter is not None, "a rejection always leaves a dead letter"
        else:
            assert is_valid_batch_for(topic, payload), "only a valid batch is accepted without a word"


BATCH_ID = '"batch_id":"6a2cf324-b993-4c16-a7b0-6bc54d23d53e"'


@st.composite
def parser_limits(draw: st.DrawFn) -> bytes:
    """Batch-shaped payloads that trip a limit of the JSON parser or of what Python builds from it."""
    kind = draw(st.sampled_from(["big_integer", "deep", "long_string", "huge_float", "bad_utf8", "surrogate"]))
    if kind == "big_integer":
        value = draw(st.sampled_from(["", "-"])) + "7" * draw(st.integers(4301, 60_000))
    elif kind == "deep":
        depth = draw(st.integers(1_000, 200_000))
        value = "[" * depth + "]" * draw(st.sampled_from([depth, 0]))
    elif kind == "long_string":
        value = '"' + "é" * draw(st.integers(100_000, 600_000)) + '"'
    elif kind == "huge_float":
        value = draw(st.sampled_from(["1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity", "1" * 400 + ".5"]))
    elif kind == "surrogate":
        value = '"\\ud800\\udc00\\ud800"'
    else:
        value = '"' + draw(st.binary(min_size=1, max_size=20)).hex() + '"'
    where = draw(st.sampled_from(["n", "records", "sent_at", "site_id"]))
    payload = ("{" + BATCH_ID + f',"{where}":' + value + "}").encode()
    if kind == "bad_utf8":
        payload = payload[:-2] + b"\xff\xfe" + payload[-2:]
    return payload


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(payload=parser_limits(), kind=st.sampled_from(["batch", "status"]))
def test_payloads_past_the_parsers_limits_are_dead_lettered_without_raising(payload: bytes, kind: str) -> None:
    message_topic = batch_topic().removesuffix("batch") + kind
    with SqliteStore(":memory:") as store:
        outcome = handle(message_topic, payload, store, max_payload_bytes=len(payload))
        assert outcome.dead_letter is not None
        assert store.record_count() == 0 and len(store.dead_letters()) == 1


def test_the_integer_that_stopped_ingest_is_dead_lettered() -> None:
    payload = ("{" + BATCH_ID + ',"n":' + "7" * 5000 + "}").encode()
    with SqliteStore(":memory:") as store:
        outcome = handle("borne/v1/s/d/batch", payload, store)
    assert outcome.ack is None and outcome.dead_letter is not None
    assert "Exceeds the limit" in outcome.dead_letter
