from __future__ import annotations

import logging
import os
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from borne_cli.main import cli
from sync_agent.contract import Ack, Rejection
from sync_agent.outbox import Outbox, OutboxError, OutboxFull
from tests.conftest import make_draft

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)


def pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_open_sets_wal_full_sync_and_schema(outbox: Outbox) -> None:
    assert pragma(outbox.path, "journal_mode") == "wal"
    assert outbox._db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert pragma(outbox.path, "user_version") == 1
    assert outbox.quick_check() == "ok"


def test_add_gives_an_id_and_stores_pending(outbox: Outbox) -> None:
    draft = make_draft(4)
    record = outbox.add(draft)
    assert record.record_id.version == 7
    assert record.rating == draft.rating
    assert outbox.state_of(record.record_id) == "pending"
    assert outbox.records("pending") == [record]


def test_records_survive_reopening(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db") as box:
        stored = [box.add(make_draft(rating)) for rating in (1, 2, 3, 4)]
    with Outbox.open(tmp_path / "o.db") as box:
        assert box.records() == stored


def test_claim_is_oldest_first_and_bounded(outbox: Outbox) -> None:
    stored = [outbox.add(make_draft()) for _ in range(10)]
    batch = outbox.claim_batch(max_records=4, max_bytes=1_000_000, now=NOW)
    assert batch is not None
    assert [r.record_id for r in batch.records] == [r.record_id for r in stored[:4]]
    assert {outbox.state_of(r.record_id) for r in stored[:4]} == {"in_flight"}
    size = len(stored[0].to_json().encode())
    small = outbox.claim_batch(max_records=100, max_bytes=2 * size + 2, now=NOW)
    assert small is not None and [r.record_id for r in small.records] == [r.record_id for r in stored[4:6]]
    # A single record larger than the byte bound still goes alone, or it would block the queue forever.
    alone = outbox.claim_batch(max_records=100, max_bytes=1, now=NOW)
    assert alone is not None and len(alone.records) == 1


def test_claim_on_empty_returns_none(outbox: Outbox) -> None:
    assert outbox.claim_batch(max_records=10, max_bytes=10_000, now=NOW) is None


def test_ack_moves_accepted_and_duplicates_to_acked_and_rejected_aside(outbox: Outbox) -> None:
    a, b, c, d = (outbox.add(make_draft()) for _ in range(4))
    batch = outbox.claim_batch(max_records=10, max_bytes=10**6, now=NOW)
    assert batch is not None
    stranger = uuid.uuid4()
    ack = Ack(
        batch_id=batch.batch_id,
        accepted=[a.record_id],
        duplicates=[b.record_id, stranger],
        rejected=[Rejection(record_id=c.record_id, reason="schema"), Rejection(record_id=None, reason="x")],
    )
    outcome = outbox.apply_ack(ack, now=NOW)
    assert (outcome.acked, outcome.rejected, outcome.unknown) == (2, 1, [stranger])
    assert [outbox.state_of(r.record_id) for r in (a, b, c, d)] == ["acked", "acked", "rejected", "in_flight"]
    # The same Ack again (QoS 1 duplicates) changes nothing.
    again = outbox.apply_ack(ack, now=NOW)
    assert (again.acked, again.rejected) == (0, 0)


def test_release_puts_unacked_back_in_order(outbox: Outbox) -> None:
    a, b = outbox.add(make_draft()), outbox.add(make_draft())
    batch = outbox.claim_batch(max_records=10, max_bytes=10**6, now=NOW)
    assert batch is not None
    outbox.apply_ack(Ack(batch_id=batch.batch_id, accepted=[a.record_id]), now=NOW)
    assert outbox.release_batch(batch.batch_id) == 1
    assert outbox.state_of(b.record_id) == "pending"
    again = outbox.claim_batch(max_records=10, max_bytes=10**6, now=NOW)
    assert again is not None and [r.record_id for r in again.records] == [b.record_id]


def test_purge_keeps_acked_for_the_retention(outbox: Outbox) -> None:
    old, recent, pending = (outbox.add(make_draft()) for _ in range(3))
    first = outbox.claim_batch(max_records=1, max_bytes=10**6, now=NOW)
    assert first is not None
    outbox.apply_ack(Ack(batch_id=first.batch_id, accepted=[old.record_id]), now=NOW - timedelta(days=40))
    second = outbox.claim_batch(max_records=1, max_bytes=10**6, now=NOW)
    assert second is not None
    outbox.apply_ack(Ack(batch_id=second.batch_id, accepted=[recent.record_id]), now=NOW - timedelta(days=2))
    assert outbox.purge(now=NOW, retention_days=30) == 1
    assert outbox.state_of(old.record_id) is None
    assert outbox.state_of(recent.record_id) == "acked"
    assert outbox.state_of(pending.record_id) == "pending"
    assert outbox.purge(now=NOW, retention_days=0) == 1


def test_stats(outbox: Outbox) -> None:
    empty = outbox.stats(now=NOW)
    assert empty.counts == {"pending": 0, "in_flight": 0, "acked": 0, "rejected": 0}
    assert empty.oldest_pending_age_s is None
    outbox.add(make_draft(hour=9))  # 09:00+01:00 = 08:00 UTC
    outbox.add(make_draft(hour=11))
    stats = outbox.stats(now=NOW)
    assert stats.counts["pending"] == 2 and stats.backlog == 2
    assert stats.oldest_pending_age_s == pytest.approx(4.5 * 3600)
    assert stats.file_bytes > 0


def test_no_exact_time_is_stored(outbox: Outbox) -> None:
    record = outbox.add(make_draft())
    batch = outbox.claim_batch(max_records=1, max_bytes=10**6, now=NOW)
    assert batch is not None
    outbox.apply_ack(Ack(batch_id=batch.batch_id, accepted=[record.record_id]), now=NOW)
    row = outbox._db.conn.execute("SELECT period, acked_hour FROM records").fetchone()
    for value in row:
        moment = datetime.fromisoformat(value)
        assert (moment.minute, moment.second, moment.microsecond) == (0, 0, 0)


def test_disk_full_is_a_clear_error_and_keeps_what_was_stored(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db") as box:
        kept = box.add(make_draft())
        pages = box._db.conn.execute("PRAGMA page_count").fetchone()[0]
        box._db.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(OutboxFull, match=r"disk full.*records already stored are kept"):
            for _ in range(500):
                box.add(make_draft())
    with Outbox.open(tmp_path / "o.db") as box:
        assert box.records()[0] == kept
        assert box.quick_check() == "ok"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    Outbox.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(OutboxError, match="schema version 99, newer than this software"):
        Outbox.open(path)


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutboxError, match="cannot create the outbox directory"):
        Outbox.open(blocker / "sub" / "o.db")


def corrupt_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(page, len(data), page):  # damage every page but the header
        data[offset : offset + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))


def test_corrupted_outbox_is_moved_aside_and_unsent_records_recovered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o.db"
    with Outbox.open(path) as box:
        sent = box.add(make_draft(1))
        batch = box.claim_batch(max_records=1, max_bytes=10**6, now=NOW)
        assert batch is not None
        box.apply_ack(Ack(batch_id=batch.batch_id, accepted=[sent.record_id]), now=NOW)
        unsent = [box.add(make_draft(4)) for _ in range(3)]
        box._db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # Damage the index pages only: rows stay readable, quick_check fails.
    conn = sqlite3.connect(path)
    index_pages = [row[0] for row in conn.execute("SELECT rootpage FROM sqlite_master WHERE type = 'index'")]
    conn.close()
    data = bytearray(path.read_bytes())
    for root in index_pages:
        start = (root - 1) * 4096
        data[start + 8 : start + 40] = b"\xff" * 32
    path.write_bytes(bytes(data))

    with caplog.at_level(logging.ERROR, logger="sync_agent.outbox"), Outbox.open(path) as box:
        assert box.recovery is not None
        assert box.recovery.moved_to.exists()
        assert box.recovery.recovered_unsent == 3
        assert box.recovery.already_acked == 1
        assert [r.record_id for r in box.records("pending")] == [r.record_id for r in unsent]
        assert box.quick_check() == "ok"
        stats = box.stats(now=NOW)
    assert "corrupted outbox moved to" in caplog.text
    assert "3 unsent record(s) recovered" in caplog.text
    assert "1 acknowledged record(s) were already at the platform" in caplog.text
    assert stats.recovery is not None and "moved to" in stats.recovery


def test_garbage_file_is_moved_aside_and_a_new_outbox_starts(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with Outbox.open(path) as box:
        assert box.recovery is not None
        assert box.recovery.recovered_unsent == 0
        assert box.recovery.unreadable_rows
        assert "may be lost" in box.recovery.describe()
        assert box.recovery.moved_to.read_bytes().startswith(b"this is not sqlite")
        box.add(make_draft())
        assert box.stats(now=NOW).counts["pending"] == 1


def test_badly_damaged_file_recovers_what_it_can(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox.open(path) as box:
        for _ in range(200):
            box.add(make_draft())
        box._db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    corrupt_middle(path)
    with Outbox.open(path) as box:
        assert box.recovery is not None
        assert box.recovery.recovered_unsent == len(box.records())
        assert box.quick_check() == "ok"


def test_outbox_stats_command(tmp_path: Path, write_config) -> None:  # type: ignore[no-untyped-def]
    config = write_config(f'[outbox]\npath = "{tmp_path}/o.db"\n')
    with Outbox.open(tmp_path / "o.db") as box:
        box.add(make_draft())
    runner = CliRunner()
    table = runner.invoke(cli, ["outbox", "stats", "--config", str(config)])
    assert table.exit_code == 0, table.output
    assert "pending         1" in table.output
    as_json = runner.invoke(cli, ["outbox", "stats", "--config", str(config), "--json"])
    assert '"pending": 1' in as_json.output and '"backlog": 1' in as_json.output
    purge = runner.invoke(cli, ["outbox", "purge", "--config", str(config)])
    assert purge.exit_code == 0 and "purged 0 record(s)" in purge.output


@pytest.mark.skipif(os.geteuid() != 0, reason="what root leaves behind: only root can make it")
def test_outbox_stats_run_as_root_leaves_the_files_to_the_directory_owner(tmp_path: Path, write_config) -> None:  # type: ignore[no-untyped-def]
    """`sudo borne outbox stats` before the kiosk's first record must not leave a root-owned outbox."""
    directory = tmp_path / "borne"
    directory.mkdir()
    os.chown(directory, 4242, 4242)  # the service user's directory
    config = write_config(f'[outbox]\npath = "{directory}/outbox.db"\n')
    with Outbox.open(directory / "outbox.db") as box:  # root holds it open: WAL and shared memory exist
        box.add(make_draft())
        result = CliRunner().invoke(cli, ["outbox", "stats", "--config", str(config)])
        assert result.exit_code == 0, result.output
        owners = {path.name: path.stat().st_uid for path in directory.iterdir()}
    assert owners and set(owners.values()) == {4242}, owners
