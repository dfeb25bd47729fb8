"""`borne ingest health`: what the store keeps for it (both engines) and how it is summarised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from platform_ingest.ingest.consumer import MAX_STATUS_BYTES, handle
from platform_ingest.ingest.health import reason_kind, summarise
from platform_ingest.store import DeadLetter, Store
from sync_agent.contract import Status, topic
from tests.platform_ingest.factories import DEVICE, SITE

NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
BATCH, OTHER_BATCH = topic(SITE, DEVICE, "batch"), topic(SITE, "borne-02", "batch")


def status(sent_at: datetime, *, state: str = "online", backlog: int = 3, age: float | None = 60.0) -> Status:
    return Status(
        site_id=SITE, device_id=DEVICE, state=state, backlog=backlog, oldest_pending_age_s=age, sent_at=sent_at
    )  # type: ignore[arg-type]


def test_reasons_are_counted_by_kind() -> None:
    assert reason_kind("payload is not JSON (Expecting value at line 1 column 1)") == "payload is not JSON"
    assert reason_kind("payload of 2097152 bytes is over the 1048576-byte limit") == (
        "payload of N bytes is over the N-byte limit"
    )
    assert reason_kind("3 record(s) rejected: records[0]: rating: bad") == "N record(s) rejected"
    assert reason_kind("rate limited: 12 batch(es), 400 bytes, over 100/s") == "rate limited"
    assert reason_kind("internal error (OverflowError)") == "internal error"


def test_events_and_statuses_are_kept_and_summarised(store: Store) -> None:
    for received in (NOW, NOW + timedelta(minutes=5), NOW - timedelta(hours=3)):
        store.count_event(BATCH, "redelivered", received=received)
    store.count_event(OTHER_BATCH, "redelivered", received=NOW)
    for reason in ("payload is not JSON (a)", "payload is not JSON (b)", "internal error (KeyError)"):
        store.add_dead_letter(DeadLetter(BATCH, b"xyz", reason), received=NOW)
    store.add_dead_letter(DeadLetter(BATCH, b"old", "payload is not JSON (c)"), received=NOW - timedelta(hours=3))

    assert store.put_status(status(NOW - timedelta(minutes=10), backlog=5, age=3600))
    assert not store.put_status(status(NOW - timedelta(minutes=20), backlog=9))  # older: ignored
    assert store.put_status(status(NOW - timedelta(hours=1), state="offline", backlog=5, age=3600))  # last will

    since = NOW - timedelta(hours=1)
    health = summarise(store.health_rows(since), since, NOW)
    assert [(d.terminal, d.reason, d.count, d.payload_bytes) for d in health.dead_letters] == [
        (f"{SITE}/{DEVICE}", "payload is not JSON", 2, 6),
        (f"{SITE}/{DEVICE}", "internal error", 1, 3),
    ]
    assert [(r.terminal, r.count) for r in health.redeliveries] == [(f"{SITE}/{DEVICE}", 2), (f"{SITE}/borne-02", 1)]
    assert health.terminals_reporting == 1 and health.records_pending == 5
    assert health.oldest_pending is not None
    # As old as the latest online Status said, plus the time since: the last will (composed when the terminal
    # connected) only marks it offline and keeps that report's figures.
    assert health.oldest_pending.age_s == 3600 + 600


def test_a_status_is_stored_or_dead_lettered(memory_store: Store) -> None:
    status_topic = topic(SITE, DEVICE, "status")
    good = status(NOW)
    assert handle(status_topic, good.to_json().encode(), memory_store).dead_letter is None
    cases = [
        (topic(SITE, "borne-02", "status"), good.to_json().encode(), "status names another terminal than its topic"),
        (status_topic, b"{", "status is not valid: document: Invalid JSON"),
        (status_topic, b'{"state": "dancing"}', "status is not valid: site_id: Field required"),
        (status_topic, b" " * (MAX_STATUS_BYTES + 1), "over the 16384-byte limit"),
        ("borne/v1/x/y/z/status", b"{}", "topic is not borne/v1/{site}/{device}/status"),
    ]
    for message_topic, payload, reason in cases:
        outcome = handle(message_topic, payload, memory_store)
        assert outcome.dead_letter is not None and reason in outcome.dead_letter, outcome.dead_letter
        assert outcome.ack is None
    rows = memory_store.health_rows(NOW - timedelta(days=1))
    assert len(rows.statuses) == 1 and len(rows.dead_letters) == len(cases)
