"""A rate per terminal, so that one terminal flooding ingest slows only itself.

Ingest consumes one message at a time for the whole fleet: a terminal sending thousands of batches a
second would make every other terminal's batches wait behind its own. Each terminal (the site and
device of the topic) has a token bucket: `rate_per_s` batches a second on average, `burst` at once.
A batch over its terminal's rate is released at the broker unread and unacknowledged: the terminal
keeps it in its outbox and sends it again after its `ack_timeout_s`, nothing is lost, and the cost
to ingest is a dictionary lookup instead of a database transaction. The batches dropped are counted
per terminal, and `drain()` hands the counts to the service, which records them as dead letters (one
per terminal and period, not one per batch).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_TERMINALS = 100_000
"""Buckets kept at most; the fullest (idle longest) are forgotten first, which only refills them."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Throttled:
    """Batches of one terminal dropped over its rate since the last `drain()`."""

    topic: str
    batches: int
    payload_bytes: int


class Throttle:
    """Token buckets per terminal; `rate_per_s = 0` lets everything through."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._dropped: dict[str, tuple[str, int, int]] = {}

    def allow(self, message_topic: str, payload_bytes: int) -> bool:
        """True if the terminal of `message_topic` is within its rate (and takes one token)."""
        if self.rate_per_s <= 0:
            return True
        terminal = _terminal(message_topic)
        now = self._clock()
        bucket = self._buckets.get(terminal)
        if bucket is None:
            if len(self._buckets) >= MAX_TERMINALS:
                self._forget_idle(now)
            bucket = self._buckets[terminal] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate_per_s)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        _, batches, size = self._dropped.get(terminal, (message_topic, 0, 0))
        self._dropped[terminal] = (message_topic, batches + 1, size + payload_bytes)
        return False

    def charge(self, message_topic: str, tokens: float) -> None:
        """Take `tokens` more from the terminal of `message_topic` (it may go into debt)."""
        bucket = self._buckets.get(_terminal(message_topic))
        if bucket is not None:
            bucket.tokens -= tokens

    def drain(self) -> list[Throttled]:
        """What was dropped since the last call, per terminal."""
        dropped, self._dropped = self._dropped, {}
        return [Throttled(topic, batches, size) for topic, batches, size in dropped.values()]

    def _forget_idle(self, now: float) -> None:
        full = [key for key, bucket in self._buckets.items() if now - bucket.updated >= self.burst / self.rate_per_s]
        for key in full or sorted(self._buckets, key=lambda k: self._buckets[k].updated)[: len(self._buckets) // 2]:
            del self._buckets[key]


def _terminal(message_topic: str) -> str:
    """`site/device` of `borne/v1/{site}/{device}/batch`; any other topic is its own bucket."""
    parts = message_topic.split("/")
    return f"{parts[2]}/{parts[3]}" if len(parts) == 5 else message_topic[:300]
