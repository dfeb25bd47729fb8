"""`handle`: one message in, an Ack and/or a dead letter out, never an exception on a payload."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from platform_ingest.ingest.consumer import handle
from platform_ingest.store import Store, StoreUnavailable
from sync_agent.contract import MAX_BATCH_RECORDS, Ack, topic
from tests.platform_ingest.factories import DEVICE, SITE, batch_dict, batch_topic, make_batch, make_record, payload_of

ACK_SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "ack.schema.json").read_text())


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


def test_a_good_batch_is_stored_and_acknowledged(store: Store) -> None:
    batch = make_batch(count=3)
    outcome = handle(batch_topic(), payload_of(batch), store)
    assert outcome.ack is not None
    assert outcome.ack_topic == topic(SITE, DEVICE, "ack")
    assert outcome.ack.batch_id == batch.batch_id
    assert outcome.ack.accepted == [record.record_id for record in batch.records]
    assert outcome.ack.duplicates == [] and outcome.ack.rejected == []
    assert outcome.dead_letter is None
    assert store.record_count() == 3
    assert store.dead_letters() == []
    jsonschema.validate(json.loads(outcome.ack.to_json()), ACK_SCHEMA)


def test_the_same_batch_again_is_acknowledged_as_duplicates(store: Store) -> None:
    batch = make_batch(count=2)
    handle(batch_topic(), payload_of(batch), store)
    again = handle(batch_topic(), payload_of(batch), store)
    assert again.ack is not None
    assert again.ack.accepted == []
    assert again.ack.duplicates == [record.record_id for record in batch.records]
    assert store.record_count() == 2


def test_a_record_already_stored_from_another_batch_is_a_duplicate(memory_store: Store) -> None:
    first, second = make_record(), make_record()
    handle(batch_topic(), payload_of(make_batch([first])), memory_store)
    outcome = handle(batch_topic(), payload_of(make_batch([first, second])), memory_store)
    assert outcome.ack is not None
    assert (outcome.ack.accepted, outcome.ack.duplicates) == ([second.record_id], [first.record_id])


def test_bad_records_are_rejected_and_good_ones_in_the_same_batch_stored(store: Store) -> None:
    good, bad_rating, future = make_record(), make_record(), make_record()
    document = batch_dict(make_batch([good, bad_rating, future]))
    document["records"][1]["rating"] = 9
    document["records"][2]["schema"] = 2
    outcome = handle(batch_topic(), encode(document), store)
    assert outcome.ack is not None
    assert outcome.ack.accepted == [good.record_id]
    reasons = {rejection.record_id: rejection.reason for rejection in outcome.ack.rejected}
    assert set(reasons) == {bad_rating.record_id, future.record_id}
    assert "rating" in reasons[bad_rating.record_id]
    assert "unknown schema version 2" in reasons[future.record_id]
    assert store.record_count() == 1
    [letter] = store.dead_letters()
    assert "2 record(s) rejected" in letter.reason and str(future.record_id) in letter.reason
    assert outcome.dead_letter == letter.reason


@pytest.mark.parametrize(("site", "device"), [(SITE, "borne-02"), ("fs-13-01", DEVICE)])
def test_payload_disagreeing_with_its_topic_rejects_the_whole_batch(store: Store, site: str, device: str) -> None:
    batch = make_batch(site=site, device=device, count=2)
    outcome = handle(batch_topic(SITE, DEVICE), payload_of(batch), store)
    assert outcome.ack is not None
    assert outcome.ack_topic == topic(SITE, DEVICE, "ack")  # answered to the identity the broker vouched for
    assert outcome.ack.accepted == [] and outcome.ack.duplicates == []
    assert [rejection.record_id for rejection in outcome.ack.rejected] == [None] + [r.record_id for r in batch.records]
    assert "differ from the topic" in outcome.ack.rejected[0].reason
    assert store.record_count() == 0
    [letter] = store.dead_letters()
    assert letter.topic == batch_topic(SITE, DEVICE) and letter.payload == payload_of(batch)


def test_a_record_of_another_device_inside_a_good_envelope_is_rejected(memory_store: Store) -> None:
    mine, foreign = make_record(), make_record(device="borne-99")
    document = batch_dict(make_batch([mine]))
    document["records"].append(json.loads(foreign.to_json()))
    outcome = handle(batch_topic(), encode(document), memory_store)
    assert outcome.ack is not None
    assert outcome.ack.accepted == [mine.record_id]
    assert [rejection.record_id for rejection in outcome.ack.rejected] == [foreign.record_id]
    assert "borne-99" in outcome.ack.rejected[0].reason


def test_an_oversized_payload_is_dead_lettered_unread(memory_store: Store) -> None:
    payload = b"{" + b" " * 5000 + b"}"
    outcome = handle(batch_topic(), payload, memory_store, max_payload_bytes=4096)
    assert outcome.ack is None
    assert outcome.dead_letter is not None and "over the 4096-byte limit" in outcome.dead_letter
    [letter] = memory_store.dead_letters()
    assert letter.payload_bytes == len(payload)


def test_a_huge_payload_is_kept_truncated(memory_store: Store) -> None:
    payload = b"x" * (2 * 1024 * 1024)
    outcome = handle(batch_topic(), payload, memory_store)
    assert outcome.ack is None
    [letter] = memory_store.dead_letters()
    assert letter.payload_bytes == len(payload) and len(letter.payload) == 64 * 1024


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json at all", "not JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"[1, 2, 3]", "JSON list"),
        (b'"a string"', "JSON str"),
        (b"{}", "no batch_id"),
        (b'{"batch_id": 12}', "no batch_id"),
        (b'{"batch_id": "not-a-uuid"}', "not a UUID"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"batch_id": "' + str(uuid.uuid4()).encode() + b'", "site_id": 1e999999}', "differ from the topic"),
    ],
)
def test_unusable_payloads_are_dead_lettered(store: Store, payload: bytes, reason: str) -> None:
    outcome = handle(batch_topic(), payload, store)
    assert outcome.dead_letter is not None and reason in outcome.dead_letter
    assert store.record_count() == 0
    [letter] = store.dead_letters()
    assert letter.payload == payload[: 64 * 1024]


def test_a_message_outside_the_batch_topics_is_dead_lettered(memory_store: Store) -> None:
    outcome = handle("borne/v1/a/b/config", payload_of(make_batch()), memory_store)
    assert outcome.ack is None and outcome.dead_letter is not None and "topic" in outcome.dead_letter


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(extra="field"), "unknown batch field"),
        (lambda d: d.update(records=[]), "1 to 200 records"),
        (lambda d: d.update(records={"a": 1}), "must be a list"),
        (lambda d: d.update(sent_at="yesterday"), "sent_at"),
    ],
)
def test_a_broken_envelope_rejects_the_batch(memory_store: Store, change: Any, reason: str) -> None:
    batch = make_batch(count=2)
    document = batch_dict(batch)
    change(document)
    outcome = handle(batch_topic(), encode(document), memory_store)
    assert outcome.ack is not None and outcome.ack.accepted == []
    assert outcome.ack.rejected[0].record_id is None and reason in outcome.ack.rejected[0].reason
    assert memory_store.record_count() == 0 and len(memory_store.dead_letters()) == 1


def test_too_many_records_gives_an_ack_within_the_contract(memory_store: Store) -> None:
    record = json.loads(make_record().to_json())
    document = batch_dict(make_batch())
    document["records"] = [{**record, "record_id": str(make_record().record_id)} for _ in range(MAX_BATCH_RECORDS + 50)]
    outcome = handle(batch_topic(), encode(document), memory_store)
    assert outcome.ack is not None
    assert len(outcome.ack.rejected) == MAX_BATCH_RECORDS + 1
    Ack.model_validate_json(outcome.ack.to_json())


@pytest.mark.parametrize("text", ["nul \x00 inside", "lone \ud800 surrogate"])
def test_text_no_database_takes_is_rejected_not_crashing(store: Store, text: str) -> None:
    good, hostile = make_record(comment="bien"), make_record(comment="placeholder")
    document = batch_dict(make_batch([good, hostile]))
    document["records"][1]["comment"]["text"] = text
    outcome = handle(batch_topic(), encode(document), store)  # json.dumps escapes both as \u sequences
    assert outcome.ack is not None
    assert outcome.ack.accepted == [good.record_id]
    assert [rejection.record_id for rejection in outcome.ack.rejected] == [hostile.record_id]
    assert store.record_count() == 1


def test_a_record_without_a_readable_id_is_dead_lettered_but_not_answered(memory_store: Store) -> None:
    good = make_record()
    document = batch_dict(make_batch([good]))
    document["records"].append({"record_id": "nope"})
    outcome = handle(batch_topic(), encode(document), memory_store)
    assert outcome.ack is not None
    assert outcome.ack.accepted == [good.record_id] and outcome.ack.rejected == []
    assert outcome.dead_letter is not None and "records[1] has no valid record_id" in outcome.dead_letter


def test_the_same_record_twice_in_a_batch_is_stored_and_listed_once(memory_store: Store) -> None:
    record = make_record()
    document = batch_dict(make_batch([record]))
    document["records"].append(document["records"][0])
    outcome = handle(batch_topic(), encode(document), memory_store)
    assert outcome.ack is not None
    assert outcome.ack.accepted == [record.record_id] and outcome.ack.rejected == []
    assert memory_store.record_count() == 1


class UnavailableStore(Store):
    """A database that is down: every call fails as unavailable."""

    def store(self, records: Any, *, dead_letter: Any = None, received: Any = None) -> Any:
        raise StoreUnavailable("down")

    def add_dead_letter(self, letter: Any, *, received: Any = None) -> None:
        raise StoreUnavailable("down")

    def dead_letters(self, limit: int = 100) -> Any:
        raise StoreUnavailable("down")

    def purge_dead_letters(self, before: Any) -> int:
        raise StoreUnavailable("down")

    def upsert_sites(self, sites: Any) -> int:
        raise StoreUnavailable("down")

    def count_event(self, topic: str, event: str, *, received: Any = None) -> None:
        raise StoreUnavailable("down")

    def put_status(self, status: Any, *, received: Any = None) -> bool:
        raise StoreUnavailable("down")

    def health_rows(self, since: Any) -> Any:
        raise StoreUnavailable("down")

    def terminals(self) -> Any:
        raise StoreUnavailable("down")

    def put_device_config(self, site_id: str, device_id: str, config: Any, published_at: Any) -> None:
        raise StoreUnavailable("down")

    def last_config_version(self) -> int:
        raise StoreUnavailable("down")

    def indicators(self, by: Any = "site", month: Any = None) -> Any:
        raise StoreUnavailable("down")

    def record_count(self) -> int:
        raise StoreUnavailable("down")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("payload", [payload_of(make_batch()), b"not json"])
def test_a_database_outage_propagates_so_the_message_stays_unacknowledged(payload: bytes) -> None:
    with pytest.raises(StoreUnavailable):
        handle(batch_topic(), payload, UnavailableStore())
