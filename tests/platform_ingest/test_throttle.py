"""The per-terminal token bucket, on a fake clock."""

from __future__ import annotations

from platform_ingest.ingest.throttle import Throttle

A, B = "borne/v1/fs-1/borne-a/batch", "borne/v1/fs-1/borne-b/batch"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_over_its_rate_is_dropped_and_counted_while_another_goes_through() -> None:
    clock = Clock()
    throttle = Throttle(rate_per_s=2, burst=3, clock=clock)
    assert [throttle.allow(A, 10) for _ in range(5)] == [True, True, True, False, False]
    assert throttle.allow(B, 10)  # its own bucket
    clock.now = 0.5  # one token back
    assert [throttle.allow(A, 10) for _ in range(2)] == [True, False]
    (dropped,) = throttle.drain()
    assert (dropped.topic, dropped.batches, dropped.payload_bytes) == (A, 3, 30)
    assert throttle.drain() == []
    clock.now = 100  # refilled, but never above the burst
    assert [throttle.allow(A, 10) for _ in range(4)] == [True, True, True, False]


def test_rate_zero_lets_everything_through() -> None:
    throttle = Throttle(rate_per_s=0, burst=1)
    assert all(throttle.allow(A, 1) for _ in range(1000))
    assert throttle.drain() == []


def test_any_other_topic_is_its_own_bucket() -> None:
    throttle = Throttle(rate_per_s=1, burst=1, clock=Clock())
    assert throttle.allow("borne/v1/x/batch", 1) and not throttle.allow("borne/v1/x/batch", 1)
    assert throttle.allow("other", 1)
