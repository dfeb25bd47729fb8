"""Store-and-forward under faults: every test ends with the central store compared record by record
with what the simulated kiosk wrote: 0 lost, 0 duplicated."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.chain import Chain


@pytest.fixture
def chain(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Chain]:
    options = getattr(request, "param", {})
    running = Chain(tmp_path, **options)
    yield running
    running.stop()


def test_happy_path(chain: Chain) -> None:
    chain.write_records(500)
    chain.start_ingest()
    chain.start_sync()
    chain.wait_until(chain.drained, 60, "the drain")
    chain.assert_store_matches_outbox()


def test_broker_killed_and_restarted_during_a_drain(chain: Chain) -> None:
    chain.write_records(3000)
    chain.start_ingest()
    chain.start_sync()
    chain.wait_until(lambda: chain.acked() > 300, 60, "the drain to start")
    for _ in range(2):
        chain.broker.kill()
        time.sleep(1.0)
        chain.broker.start()
        chain.wait_until(lambda: chain.acked() > 0, 30, "progress after the restart")
    chain.wait_until(chain.drained, 120, "the drain after broker restarts")
    assert chain.acked() == 3000
    chain.assert_store_matches_outbox()


@pytest.mark.parametrize("chain", [{"use_proxy": True}], indirect=True)
def test_link_cut_and_restored(chain: Chain) -> None:
    assert chain.proxy is not None
    chain.write_records(3000)
    chain.start_ingest()
    chain.start_sync()
    chain.wait_until(lambda: chain.acked() > 200, 60, "the drain to start")
    for _ in range(3):
        chain.proxy.cut()
        time.sleep(1.5)
        before = chain.acked()
        time.sleep(1.0)
        assert chain.acked() == before, "records were acknowledged while the link was cut"
        chain.proxy.restore()
        chain.wait_until(
            lambda before=before: chain.acked() > before or chain.drained(), 60, "progress after the link came back"
        )
    chain.wait_until(chain.drained, 120, "the drain after the cuts")
    chain.assert_store_matches_outbox()


@pytest.mark.parametrize(
    "chain", [{"sync_options": {"batch_max_records": 2, "max_batches_in_flight": 1}}], indirect=True
)
def test_sync_agent_sigkilled_fifty_times_during_a_drain(chain: Chain) -> None:
    chain.write_records(5000)
    chain.start_ingest()
    rng = random.Random(5)
    kills = 0
    while kills < 50:
        before = chain.acked()
        chain.start_sync()
        # Kill at a random point while records are moving: after 1 to 80 more acknowledgements.
        target = before + rng.randint(1, 80)
        chain.wait_until(
            lambda target=target: chain.acked() >= target or chain.drained(), 60, "the drain to move", every=0.005
        )
        time.sleep(rng.uniform(0, 0.02))
        chain.kill(chain.sync_process)
        assert not chain.drained(), f"the drain ended after {kills} kills: write more records"
        kills += 1
    chain.start_sync()
    chain.wait_until(chain.drained, 180, "the drain after the kills")
    chain.assert_store_matches_outbox()


def test_ingest_killed_mid_stream(chain: Chain) -> None:
    chain.write_records(6000)
    chain.start_ingest()
    chain.start_sync()
    for kill in range(3):
        target = chain.acked() + random.randint(200, 600)
        chain.wait_until(lambda target=target: chain.acked() >= target, 60, "the drain to progress", every=0.01)
        chain.kill(chain.ingest_process)
        assert not chain.drained(), f"the drain ended before ingest kill {kill + 1}: write more records"
        time.sleep(0.5)
        chain.start_ingest()
    chain.wait_until(chain.drained, 120, "the drain after ingest restarts")
    chain.assert_store_matches_outbox()


def test_a_week_offline_then_drained(chain: Chain) -> None:
    chain.broker.stop()  # the office line is down
    chain.start_ingest()
    chain.start_sync()
    chain.write_records(4000, days=7)
    time.sleep(2)
    assert chain.acked() == 0
    chain.broker.start()
    chain.wait_until(chain.drained, 180, "the week's backlog to drain")
    assert chain.acked() == 4000
    chain.assert_store_matches_outbox()
