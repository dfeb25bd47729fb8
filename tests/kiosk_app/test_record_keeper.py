"""A record the outbox refuses (a real SQLite "disk full") waits in memory and is stored, in order, later."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kiosk_app.record_keeper import RecordKeeper
from sync_agent.contract import Record
from sync_agent.outbox import Outbox, OutboxFull
from tests.conftest import make_draft


def fill_up(outbox: Outbox) -> None:
    """The outbox's file may not grow any more: SQLite answers SQLITE_FULL, as on a full disk."""
    pages = outbox._db.conn.execute("PRAGMA page_count").fetchone()[0]
    outbox._db.conn.execute(f"PRAGMA max_page_count = {pages}")
    for _ in range(2000):  # use up the free room inside the file's last pages
        try:
            outbox.add(make_draft(4, device="filler"))
        except OutboxFull:
            return
    raise AssertionError("the outbox never filled up")


def free_space(outbox: Outbox) -> None:
    outbox._db.conn.execute("PRAGMA max_page_count = 1073741823")


def ratings(outbox: Outbox) -> list[int]:
    return [int(record.rating) for record in outbox.records() if record.device_id != "filler"]


def test_refused_records_wait_and_are_stored_in_order_once_there_is_room(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stored: list[Record] = []
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        keeper = RecordKeeper(outbox, on_stored=stored.append)
        keeper.store(make_draft(1))
        fill_up(outbox)
        with caplog.at_level(logging.ERROR, logger="kiosk_app.record_keeper"):
            keeper.store(make_draft(2))
            keeper.store(make_draft(3))
        assert keeper.waiting == 2 and keeper.refusals == 2
        assert "disk full" in keeper.last_error
        assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1  # said once, not per retry
        assert keeper.retry() == 0 and keeper.waiting == 2

        free_space(outbox)
        keeper.store(make_draft(4))  # the waiting ones go first
        assert keeper.waiting == 0 and keeper.last_error == ""
        assert ratings(outbox) == [1, 2, 3, 4]
        assert [int(r.rating) for r in stored] == [1, 2, 3, 4]
        assert outbox.quick_check() == "ok"


def test_retry_alone_stores_what_waits(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        keeper = RecordKeeper(outbox)
        fill_up(outbox)
        keeper.store(make_draft(2))
        free_space(outbox)
        assert keeper.retry() == 1
        assert ratings(outbox) == [2] and keeper.waiting == 0


def test_beyond_the_limit_the_oldest_waiting_record_is_dropped_and_counted(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        keeper = RecordKeeper(outbox, max_waiting=2)
        fill_up(outbox)
        for rating in (1, 2, 3):
            keeper.store(make_draft(rating))
        assert keeper.waiting == 2 and keeper.dropped == 1
        free_space(outbox)
        keeper.retry()
        assert ratings(outbox) == [2, 3]
