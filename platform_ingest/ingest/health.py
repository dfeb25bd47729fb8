"""Is ingest keeping up, and who is misbehaving: `borne ingest health`.

From the store: dead letters per terminal and per kind of reason since a moment (one hour by default;
batches dropped over a terminal's rate are among them, as "rate limited"), the broker's redeliveries
to ingest per terminal (a message delivered again because a consumer left before acknowledging it:
many of them is what a payload that stops ingest looks like), and from the terminals' own Status, the
oldest record a terminal still waits to have acknowledged.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from platform_ingest.store import HealthRows


@dataclass(frozen=True)
class DeadLetterCount:
    terminal: str
    reason: str
    count: int
    payload_bytes: int


@dataclass(frozen=True)
class Redeliveries:
    terminal: str
    count: int


@dataclass(frozen=True)
class OldestPending:
    terminal: str
    age_s: float
    backlog: int
    reported_at: datetime


@dataclass(frozen=True)
class Health:
    since: datetime
    dead_letters: list[DeadLetterCount]
    redeliveries: list[Redeliveries]
    oldest_pending: OldestPending | None
    terminals_reporting: int
    records_pending: int

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["since"] = self.since.isoformat()
        if self.oldest_pending is not None:
            document["oldest_pending"]["reported_at"] = self.oldest_pending.reported_at.isoformat()
        return document


def reason_kind(reason: str) -> str:
    """The reason without its particulars, to count alike ones together: "payload is not JSON (Expecting
    value at 1:1)" -> "payload is not JSON", "3 record(s) rejected: …" -> "N record(s) rejected"."""
    head = reason.split(": ", 1)[0]
    head = re.sub(r"\s*\([^)]*\)$", "", head)
    return re.sub(r"\d+", "N", head).strip() or "unknown"


def terminal_of(topic: str) -> str:
    """`site/device` of a terminal's topic; the topic itself (cut) otherwise."""
    parts = topic.split("/")
    return f"{parts[2]}/{parts[3]}" if len(parts) == 5 and parts[:2] == ["borne", "v1"] else topic[:120]


def summarise(rows: HealthRows, since: datetime, now: datetime) -> Health:
    letters: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for topic, reason, payload_bytes in rows.dead_letters:
        counts = letters[(terminal_of(topic), reason_kind(reason))]
        counts[0] += 1
        counts[1] += payload_bytes
    redelivered: dict[str, int] = defaultdict(int)
    for topic, event, count in rows.events:
        if event == "redelivered":
            redelivered[terminal_of(topic)] += count
    oldest: OldestPending | None = None
    for status in rows.statuses:
        if status.backlog <= 0 or status.oldest_pending_age_s is None:
            continue
        age = status.oldest_pending_age_s + max(0.0, (now - status.sent_at).total_seconds())
        if oldest is None or age > oldest.age_s:
            oldest = OldestPending(f"{status.site_id}/{status.device_id}", age, status.backlog, status.sent_at)
    return Health(
        since=since,
        dead_letters=sorted(
            (DeadLetterCount(t, r, c, b) for (t, r), (c, b) in letters.items()), key=lambda d: (-d.count, d.terminal)
        ),
        redeliveries=sorted((Redeliveries(t, c) for t, c in redelivered.items()), key=lambda r: (-r.count, r.terminal)),
        oldest_pending=oldest,
        terminals_reporting=len(rows.statuses),
        records_pending=sum(status.backlog for status in rows.statuses),
    )


def render(health: Health) -> str:
    lines = [f"since {health.since.isoformat(timespec='seconds')}"]
    if health.dead_letters:
        lines.append("dead letters:")
        width = max(len(d.terminal) for d in health.dead_letters)
        lines += [
            f"  {d.terminal:<{width}}  {d.count:>6}  {d.payload_bytes:>10} B  {d.reason}" for d in health.dead_letters
        ]
    else:
        lines.append("dead letters: none")
    if health.redeliveries:
        lines.append("redelivered to ingest:")
        lines += [f"  {r.terminal}  {r.count}" for r in health.redeliveries]
    else:
        lines.append("redelivered to ingest: none")
    lines.append(
        f"terminals reporting a Status: {health.terminals_reporting}, records waiting: {health.records_pending}"
    )
    if health.oldest_pending is not None:
        oldest = health.oldest_pending
        lines.append(
            f"oldest unacknowledged record: {oldest.age_s / 3600:.1f} h at {oldest.terminal} "
            f"({oldest.backlog} waiting, reported {oldest.reported_at.isoformat(timespec='seconds')})"
        )
    else:
        lines.append("oldest unacknowledged record: none reported")
    return "\n".join(lines)
