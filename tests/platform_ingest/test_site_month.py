"""site_month, the counts `indicators()` reads: always what a scan of the records gives, on both engines, after
duplicates, after a failed batch, after the migration from a version-2 store, and with consumers writing
together on PostgreSQL."""

from __future__ import annotations

import random
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import pytest

from platform_ingest.departments import DEPARTMENTS, UNKNOWN
from platform_ingest.store import (
    GROUPS,
    SCHEMA_VERSION,
    SITE_MONTH_FROM_RECORDS,
    DeadLetter,
    Indicator,
    Site,
    Store,
    StoreError,
    open_store,
)
from sync_agent.contract import Batch, Record
from tests.platform_ingest.factories import PARIS_WINTER, make_batch, make_record

SITES = [Site("fs-75-01", "Paris 19e", "75"), Site("fs-2a-01", "Ajaccio", "2A"), Site("fs-35-01", "Rennes", "35")]
MONTHS = ("2026-09", "2026-10", "2026-11")


def scanned(store: Store, by: str, month: str | None = None) -> list[Indicator]:
    """The indicators as the store computed them before site_month: one GROUP BY over every record."""
    key = {"site": "r.site_id", "department": f"COALESCE(s.department, '{UNKNOWN}')"}.get(
        by, f"COALESCE(s.region, '{UNKNOWN}')"
    )
    where = "WHERE r.month = ?" if month is not None else ""
    query = store._sql(  # type: ignore[attr-defined]
        f"SELECT {key} AS grp, r.month, COUNT(*), SUM(CASE WHEN r.rating >= 3 THEN 1 ELSE 0 END), "  # noqa: S608
        "SUM(CASE WHEN r.comment_text IS NOT NULL THEN 1 ELSE 0 END), SUM(CASE WHEN r.burst THEN 1 ELSE 0 END) "
        f"FROM records r LEFT JOIN sites s ON s.site_id = r.site_id {where} GROUP BY grp, r.month ORDER BY grp, r.month"
    )
    names = {site.site_id: site.name for site in store.sites()}
    with store._transaction() as cursor:  # type: ignore[attr-defined]
        cursor.execute(query, (month,) if month is not None else ())
        rows = cursor.fetchall()
    result = []
    for group, row_month, records, satisfied, comments, bursts in rows:
        label = {"site": names.get(group, ""), "department": DEPARTMENTS[group].name if group in DEPARTMENTS else ""}
        result.append(
            Indicator(
                group, label.get(by, group), str(row_month), int(records), int(satisfied), int(comments), int(bursts)
            )
        )
    return result


def assert_matches_a_scan(store: Store) -> None:
    for by in GROUPS:
        for month in (None, *MONTHS, "2025-01"):
            assert store.indicators(by, month) == scanned(store, by, month), (by, month)
    for chosen in ([], ["fs-75-01"], ["fs-nowhere", "fs-2a-01", "fs-none"]):
        for month in (None, "2026-10"):
            expected = [row for row in scanned(store, "site", month) if row.group in chosen]
            assert store.site_indicators(chosen, month) == expected, (chosen, month)
    with store._transaction() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SELECT site_id, month, records, satisfied, comments, bursts FROM site_month")
        kept = sorted(tuple(map(str, row)) for row in cursor.fetchall())
        cursor.execute(SITE_MONTH_FROM_RECORDS)
        counted = sorted(tuple(map(str, row)) for row in cursor.fetchall())
    assert kept == counted


def random_batches(rng: random.Random, count: int, device: str = "borne-01") -> list[Batch]:
    """Batches of 1 to 30 records of one terminal of one of SITES or of a site no directory lists, over MONTHS."""
    batches = []
    for _ in range(count):
        site = rng.choice([*(site.site_id for site in SITES), "fs-nowhere"])
        records = [
            make_record(
                rng.randint(1, 4),
                site=site,
                device=device,
                period=datetime(
                    2026, int(rng.choice(MONTHS)[5:]), rng.randint(1, 28), rng.randint(8, 17), tzinfo=PARIS_WINTER
                ),
                comment="merci" if rng.random() < 0.3 else None,
                burst=rng.random() < 0.1,
            )
            for _ in range(rng.randint(1, 30))
        ]
        batches.append(make_batch(records, site=site, device=device))
    return batches


def test_indicators_read_from_site_month_equal_a_scan_of_the_records_after_duplicates(store: Store) -> None:
    store.upsert_sites(SITES)
    rng = random.Random(14)
    batches = random_batches(rng, 40)
    for batch in batches:
        store.store_batch(batch)
    for batch in rng.sample(batches, 15):  # redelivered whole: all duplicates, nothing counted twice
        assert store.store_batch(batch)[0] == []
    mixed = [*batches[0].records[:2], make_record(4, site="fs-35-01", comment="bien"), batches[1].records[0]]
    accepted, duplicates = store.store(mixed)
    assert (len(accepted), len(duplicates)) == (1, 3)
    twice = make_record(2, site="fs-35-01", burst=True)  # the same id twice in one call: the first is added
    assert store.store([twice, twice]) == ([twice.record_id], [twice.record_id])
    assert store.record_count() == sum(len(batch.records) for batch in batches) + 2
    assert_matches_a_scan(store)


def test_a_batch_that_fails_counts_nothing(store: Store) -> None:
    store.store([make_record(4)])
    impossible = Record.model_construct(**{**make_record().__dict__, "rating": 9})  # bypasses validation
    with pytest.raises(StoreError):
        store.store([make_record(3), impossible], dead_letter=DeadLetter("t", b"p", "r"))
    [indicator] = store.indicators()
    assert (indicator.records, indicator.satisfied) == (1, 1)
    assert_matches_a_scan(store)


def test_more_records_than_one_insert_statement_takes(store: Store) -> None:
    records = [make_record(1 + index % 4, comment="oui" if index % 7 == 0 else None) for index in range(1234)]
    accepted, duplicates = store.store(records)
    assert (accepted, duplicates) == ([record.record_id for record in records], [])
    accepted, duplicates = store.store(records[::-1])
    assert (accepted, duplicates) == ([], [record.record_id for record in records[::-1]])
    [indicator] = store.indicators()
    assert (indicator.records, indicator.comments) == (1234, sum(1 for index in range(1234) if index % 7 == 0))
    assert_matches_a_scan(store)


def _as_version_2(store: Store) -> None:
    """What a version-2 store is: the same tables without site_month."""
    with store._transaction() as cursor:  # type: ignore[attr-defined]
        cursor.execute("DROP TABLE site_month")
        cursor.execute("UPDATE ingest_meta SET value = '2' WHERE key = 'schema_version'")


def test_the_migration_from_version_2_counts_the_records_already_stored(db_url: str) -> None:
    with open_store(db_url) as store:
        store.upsert_sites(SITES)
        for batch in random_batches(random.Random(3), 25):
            store.store_batch(batch)
        before = {by: store.indicators(by) for by in GROUPS}
        _as_version_2(store)
    with open_store(db_url) as store:
        assert {by: store.indicators(by) for by in GROUPS} == before
        assert_matches_a_scan(store)
        with store._transaction() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SELECT value FROM ingest_meta WHERE key = 'schema_version'")
            assert cursor.fetchall() == [(str(SCHEMA_VERSION),)]
        for batch in random_batches(random.Random(4), 5):  # and it keeps counting afterwards
            store.store_batch(batch)
        assert_matches_a_scan(store)


def test_a_sqlite_file_left_by_version_2_is_migrated(tmp_path: Path) -> None:
    """The same through a file closed and reopened by sqlite3 alone, as an upgrade finds it."""
    url = f"sqlite:///{tmp_path / 'ingest.db'}"
    with open_store(url) as store:
        store.store_batch(make_batch(count=7))
    with sqlite3.connect(tmp_path / "ingest.db") as connection:
        connection.execute("DROP TABLE site_month")
        connection.execute("UPDATE ingest_meta SET value = '2' WHERE key = 'schema_version'")
    connection.close()
    with open_store(url) as store:
        [indicator] = store.indicators()
        assert indicator.records == 7
        assert_matches_a_scan(store)


def test_consumers_writing_together_on_postgresql_lose_no_count(postgres_url: str) -> None:
    """Four connections store at once: the same batches in different orders (a redelivery race: each record is
    counted by whichever adds it) and batches of their own, on the same few sites and months."""
    rng = random.Random(41)
    shared = random_batches(rng, 30)
    own = [random_batches(rng, 30, device=f"borne-{index}") for index in range(4)]
    open_store(postgres_url).close()  # tables exist before the race
    errors: list[BaseException] = []
    accepted: list[int] = [0] * 4

    def consume(index: int) -> None:
        try:
            with open_store(postgres_url) as store:
                mine = shared[:]
                random.Random(index).shuffle(mine)
                work = [batch for pair in zip(mine, own[index], strict=True) for batch in pair]
                for batch in work:
                    accepted[index] += len(store.store_batch(batch)[0])
        except BaseException as error:  # collected for the assertion below
            errors.append(error)

    threads = [threading.Thread(target=consume, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    total = sum(len(batch.records) for batch in shared) + sum(len(batch.records) for mine in own for batch in mine)
    assert sum(accepted) == total
    with open_store(postgres_url) as store:
        store.upsert_sites(SITES)
        assert store.record_count() == total
        assert sum(indicator.records for indicator in store.indicators("region")) == total
        assert_matches_a_scan(store)
