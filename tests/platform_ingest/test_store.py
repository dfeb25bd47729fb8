"""The store on both engines: idempotent, one transaction per batch, indicators, sites, dead letters."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from platform_ingest.store import MAX_DEAD_LETTER_BYTES, DeadLetter, Site, Store, StoreError, open_store
from sync_agent.contract import Record
from tests.platform_ingest.factories import PARIS_WINTER, make_batch, make_record


def test_storing_twice_reports_duplicates_and_keeps_one_row(store: Store) -> None:
    batch = make_batch(count=4)
    accepted, duplicates = store.store_batch(batch)
    assert (accepted, duplicates) == ([record.record_id for record in batch.records], [])
    accepted, duplicates = store.store_batch(batch)
    assert (accepted, duplicates) == ([], [record.record_id for record in batch.records])
    assert store.record_count() == 4


def test_the_same_record_id_on_two_devices_is_two_records(store: Store) -> None:
    record = make_record()
    twin = Record.model_validate({**record.model_dump(), "device_id": "borne-02"})
    assert store.store([record]) == ([record.record_id], [])
    assert store.store([twin]) == ([twin.record_id], [])
    assert store.record_count() == 2


def test_a_batch_is_stored_all_or_nothing(store: Store) -> None:
    good = make_record()
    impossible = Record.model_construct(**{**make_record().__dict__, "rating": 9})  # bypasses validation
    with pytest.raises(StoreError):
        store.store([good, impossible], dead_letter=DeadLetter("t", b"p", "r"))
    assert store.record_count() == 0
    assert store.dead_letters() == []
    assert store.store([good]) == ([good.record_id], [])


def test_a_dead_letter_written_with_records_commits_with_them(store: Store) -> None:
    record = make_record()
    store.store([record], dead_letter=DeadLetter("borne/v1/s/d/batch", b"x" * (MAX_DEAD_LETTER_BYTES + 10), "why"))
    [letter] = store.dead_letters()
    assert (letter.topic, letter.reason) == ("borne/v1/s/d/batch", "why")
    assert letter.payload_bytes == MAX_DEAD_LETTER_BYTES + 10
    assert len(letter.payload) == MAX_DEAD_LETTER_BYTES
    assert letter.received_at.tzinfo is not None


def test_dead_letter_text_no_database_takes_is_cleaned(store: Store) -> None:
    store.add_dead_letter(DeadLetter("a\x00b\ud800", b"\x00\xff", "nul \x00 here"))
    [letter] = store.dead_letters()
    assert "\x00" not in letter.topic and "\x00" not in letter.reason
    assert letter.payload == b"\x00\xff"


def test_concurrent_consumers_store_each_record_once(db_url: str) -> None:
    """Two consumers given the same batches (a redelivery race) accept each record exactly once."""
    batches = [make_batch(count=5) for _ in range(20)]
    accepted: list[list[object]] = [[], []]
    duplicates: list[list[object]] = [[], []]
    open_store(db_url).close()  # tables exist before the race

    def consume(index: int) -> None:
        with open_store(db_url) as store:
            for batch in batches if index == 0 else reversed(batches):
                new, known = store.store_batch(batch)
                accepted[index] += new
                duplicates[index] += known

    threads = [threading.Thread(target=consume, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = {record.record_id for batch in batches for record in batch.records}
    assert sorted(map(str, accepted[0] + accepted[1])) == sorted(map(str, everything))
    assert len(duplicates[0]) + len(duplicates[1]) == len(everything)
    with open_store(db_url) as store:
        assert store.record_count() == len(everything)


def _month(month: int) -> datetime:
    return datetime(2026, month, 10, 9, tzinfo=PARIS_WINTER)


def test_indicators_per_site_department_region_and_month(store: Store) -> None:
    assert store.upsert_sites([Site("fs-75-01", "Paris 19e", "75"), Site("fs-2a-01", "Ajaccio", "2A")]) == 2
    records = [
        make_record(4, site="fs-75-01", period=_month(10), comment="très bien"),
        make_record(1, site="fs-75-01", period=_month(10), burst=True),
        make_record(3, site="fs-75-01", period=_month(11)),
        make_record(2, site="fs-2a-01", period=_month(11)),
        make_record(3, site="fs-2a-01", period=_month(11)),
        make_record(4, site="nowhere", period=_month(11)),
    ]
    for record in records:
        store.store([record])

    by_site = {(i.group, i.month): i for i in store.indicators("site")}
    paris_october = by_site[("fs-75-01", "2026-10")]
    october = paris_october
    assert (october.records, october.satisfied, october.comments, october.bursts) == (2, 1, 1, 1)
    assert paris_october.satisfaction_rate == 0.5 and paris_october.label == "Paris 19e"
    assert by_site[("nowhere", "2026-11")].label == ""

    by_department = {(i.group, i.month): i for i in store.indicators("department", "2026-11")}
    assert set(by_department) == {("2A", "2026-11"), ("75", "2026-11"), ("unknown", "2026-11")}
    assert by_department[("2A", "2026-11")].label == "Corse-du-Sud"
    assert by_department[("2A", "2026-11")].satisfied == 1 and by_department[("2A", "2026-11")].records == 2

    by_region = {(i.group, i.month): i.records for i in store.indicators("region")}
    assert by_region == {
        ("Corse", "2026-11"): 2,
        ("Île-de-France", "2026-10"): 2,
        ("Île-de-France", "2026-11"): 1,
        ("unknown", "2026-11"): 1,
    }


def test_the_month_is_the_sites_local_month(store: Store) -> None:
    """23:00 on 31 October in Paris is already November in UTC: the indicator counts it in October."""
    store.store([make_record(period=datetime(2026, 10, 31, 23, tzinfo=PARIS_WINTER))])
    assert [i.month for i in store.indicators("site")] == ["2026-10"]


def test_importing_sites_again_updates_them(store: Store) -> None:
    store.upsert_sites([Site("fs-1", "Old", "75")])
    store.upsert_sites([Site("fs-1", "New", "13")])
    store.store([make_record(site="fs-1")])
    [indicator] = store.indicators("region")
    assert indicator.group == "Provence-Alpes-Côte d'Azur"
    assert store.indicators("site")[0].label == "New"


def test_unsupported_urls_are_refused_with_the_expected_forms() -> None:
    with pytest.raises(StoreError, match="sqlite:////absolute"):
        open_store("mysql://user:secret@host/db")
    with pytest.raises(StoreError) as caught:
        open_store("mysql://user:secret@host/db")
    assert "secret" not in str(caught.value)


def test_an_unreachable_postgresql_is_unavailable_not_a_crash() -> None:
    from platform_ingest.store import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="cannot connect to PostgreSQL"):
        open_store("postgresql://nobody:pw@127.0.0.1:1/none?connect_timeout=2")


def test_a_newer_database_schema_is_refused(sqlite_url: str) -> None:
    import sqlite3

    open_store(sqlite_url).close()
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as connection:
        connection.execute("UPDATE ingest_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer than this borne"):
        open_store(sqlite_url)


def test_consumers_starting_together_on_an_empty_postgresql_create_the_tables_once(postgres_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(postgres_url).close()
        except BaseException as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with open_store(postgres_url) as store:
        assert store.record_count() == 0


def test_dead_letters_older_than_the_cut_are_purged(store: Store) -> None:
    from datetime import UTC, timedelta

    now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    for days, payload in ((40, b"old"), (31, b"just-old"), (29, b"recent"), (0, b"new")):
        store.add_dead_letter(DeadLetter("borne/v1/a/b/batch", payload, "bad"), received=now - timedelta(days=days))
    assert store.purge_dead_letters(now - timedelta(days=30)) == 2
    assert [letter.payload for letter in store.dead_letters()] == [b"new", b"recent"]
    assert store.purge_dead_letters(now - timedelta(days=30)) == 0
