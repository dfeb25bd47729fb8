"""The kiosk (writer) and the sync agent (updater) work on the same outbox file at the same time."""

from __future__ import annotations

import multiprocessing
import os
import random
import traceback
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path

from sync_agent.contract import Ack
from sync_agent.outbox import Outbox
from tests.conftest import make_draft

DURATION_S = float(os.environ.get("BORNE_CONCURRENCY_SECONDS", "30"))


def _kiosk(path: Path, until: float, results: Queue) -> None:  # type: ignore[type-arg]
    import time

    added = []
    try:
        with Outbox.open(path, busy_timeout_s=10) as box:
            while time.monotonic() < until:
                added.append(str(box.add(make_draft(random.randint(1, 4))).record_id))
                time.sleep(random.uniform(0, 0.005))
        results.put(("kiosk", added, None))
    except Exception:
        results.put(("kiosk", added, traceback.format_exc()))


def _sync(path: Path, until: float, results: Queue) -> None:  # type: ignore[type-arg]
    import time

    acked: list[str] = []
    try:
        with Outbox.open(path, busy_timeout_s=10) as box:
            while time.monotonic() < until:
                batch = box.claim_batch(max_records=50, max_bytes=64 * 1024, now=datetime.now(UTC))
                if batch is None:
                    time.sleep(0.01)
                    continue
                if random.random() < 0.2:  # no Ack came: the batch goes back to pending
                    box.release_batch(batch.batch_id)
                    continue
                ids = [record.record_id for record in batch.records]
                box.apply_ack(Ack(batch_id=batch.batch_id, accepted=ids), now=datetime.now(UTC))
                acked.extend(str(record_id) for record_id in ids)
                box.stats(now=datetime.now(UTC))
                if random.random() < 0.05:
                    box.purge(now=datetime.now(UTC), retention_days=30)
        results.put(("sync", acked, None))
    except Exception:
        results.put(("sync", acked, traceback.format_exc()))


def test_writer_and_updater_processes_share_the_outbox(tmp_path: Path) -> None:
    import time

    path = tmp_path / "outbox.db"
    Outbox.open(path).close()
    context = multiprocessing.get_context("spawn")
    results: Queue = context.Queue()  # type: ignore[type-arg]
    until = time.monotonic() + DURATION_S
    processes = [context.Process(target=target, args=(path, until, results)) for target in (_kiosk, _sync)]
    for process in processes:
        process.start()
    outcome = {}
    for _ in processes:
        name, ids, error = results.get(timeout=DURATION_S + 120)
        outcome[name] = (ids, error)
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0

    assert outcome["kiosk"][1] is None, outcome["kiosk"][1]
    assert outcome["sync"][1] is None, outcome["sync"][1]
    added, acked = outcome["kiosk"][0], outcome["sync"][0]
    assert len(added) > 20 * DURATION_S
    assert len(acked) > 0

    with Outbox.open(path) as box:
        states = {str(record.record_id): box.state_of(record.record_id) for record in box.records()}
        assert box.quick_check() == "ok"
    assert set(added) == set(states), "a row was lost or invented"
    assert all(states[record_id] == "acked" for record_id in acked)
    assert len(set(acked)) == len(acked), "a record was acknowledged in two batches"
