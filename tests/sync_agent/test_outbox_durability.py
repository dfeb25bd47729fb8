"""Kill the writing process with SIGKILL at random points, hundreds of times, and lose nothing."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time
import uuid
from pathlib import Path

from sync_agent.outbox import Outbox
from tests.conftest import make_draft

KILLS = 220


def _writer(path: Path, report_fd: int) -> None:
    with Outbox.open(path) as box:
        while True:
            record = box.add(make_draft(random.randint(1, 4)))
            os.write(report_fd, record.record_id.bytes)  # only after add() returned


def _drain(read_fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_sigkill_during_adds_loses_no_returned_record(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    context = multiprocessing.get_context("fork")
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    reported = bytearray()
    rng = random.Random(1234)
    try:
        for _ in range(KILLS):
            process = context.Process(target=_writer, args=(path, write_fd), daemon=True)
            process.start()
            time.sleep(rng.uniform(0.0, 0.04))
            assert process.pid is not None
            os.kill(process.pid, signal.SIGKILL)
            process.join()
            assert process.exitcode == -signal.SIGKILL
            reported += _drain(read_fd)
    finally:
        os.close(write_fd)
        reported += _drain(read_fd)
        os.close(read_fd)

    returned = [uuid.UUID(bytes=bytes(reported[i : i + 16])) for i in range(0, len(reported), 16)]
    assert len(returned) > KILLS, "the writer should have stored records between kills"

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        stored = [row[0] for row in conn.execute("SELECT record_id FROM records")]
    finally:
        conn.close()
    assert len(stored) == len(set(stored)), "a record is stored twice"
    missing = {str(record_id) for record_id in returned} - set(stored)
    assert not missing, f"{len(missing)} record(s) whose add() returned are gone"

    with Outbox.open(path) as box:
        assert box.recovery is None
        assert box.quick_check() == "ok"
        assert len(box.records()) == len(stored)
