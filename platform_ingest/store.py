"""Where ingest keeps records, dead letters, the sites directory, and for health the terminals' latest
Status and counted events (redeliveries): SQLite (default) or PostgreSQL.

Records are stored idempotently on `(device_id, record_id)`: storing a record again is a no-op that
reports it as a duplicate. Everything one batch changes is written in one transaction: its records (one
multi-row INSERT per 500 records) and the counts of the records it added in `site_month` (site, month,
records, satisfied, comments, bursts; `x = x + excluded.x`, so consumers writing together lose no increment),
which `indicators()` reads instead of scanning the records. Errors come out
as `StoreUnavailable` (the database cannot be reached or is busy: retry later, the message stays
unacknowledged at the broker) or `StoreError` (the database refused the data).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from platform_ingest.departments import DEPARTMENTS, UNKNOWN, region_of
from sync_agent.contract import Batch, DeviceConfig, Flag, Record, Status, truncate_to_hour

SCHEMA_VERSION = 3
"""1: records, dead letters, sites, events, terminal_status; 2: terminal_status keeps the whole Status, and
device_configs the configurations published to each terminal (fleet); 3: site_month, the indicators' counts per
site and month, kept up to date in each batch's transaction (and filled from the records by the migration)."""
MAX_DEAD_LETTER_BYTES = 64 * 1024
"""Dead letters keep at most this many bytes of the payload (and its full length)."""

GroupBy = Literal["site", "department", "region"]
GROUPS: tuple[GroupBy, ...] = ("site", "department", "region")


class StoreError(Exception):
    """The database refused an operation; the message says which and why."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or stays busy; retrying later may work."""


@dataclass(frozen=True)
class DeadLetter:
    """A payload ingest could not use, kept for an operator with the reason."""

    topic: str
    payload: bytes
    reason: str


@dataclass(frozen=True)
class StoredDeadLetter:
    id: int
    topic: str
    payload: bytes
    payload_bytes: int
    reason: str
    received_at: datetime


@dataclass(frozen=True)
class TerminalStatus:
    """The latest Status a terminal published (`borne/v1/{site}/{device}/status`), as ingest keeps it.

    `last_seen` is when the latest online Status arrived; `offline_since` when the broker published the
    terminal's last will (None while it is online). The site's name and département come from the sites
    directory (None for a site it does not list)."""

    site_id: str
    device_id: str
    state: str
    backlog: int
    oldest_pending_age_s: float | None
    sent_at: datetime
    received_at: datetime
    last_seen: datetime | None = None
    offline_since: datetime | None = None
    last_ack_at: datetime | None = None
    disk_free_bytes: int | None = None
    app_version: str | None = None
    config_version: int | None = None
    microphone: str = "unknown"
    model: str = "unknown"
    technician_pin_failures: int | None = None
    site_name: str | None = None
    department: str | None = None
    config_sent: int | None = None
    config_sent_at: datetime | None = None


@dataclass(frozen=True)
class HealthRows:
    """What `health.summarise` reads: dead letters (topic, reason, bytes), events (topic, event, count),
    and every terminal's latest Status."""

    dead_letters: list[tuple[str, str, int]]
    events: list[tuple[str, str, int]]
    statuses: list[TerminalStatus]


@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    department: str


@dataclass(frozen=True)
class Indicator:
    """Satisfaction indicators of one group (a site, a département or a region) in one month."""

    group: str
    label: str
    month: str
    records: int
    satisfied: int
    comments: int
    bursts: int

    @property
    def satisfaction_rate(self) -> float:
        """Share of ratings 3 (satisfied) and 4 (very satisfied)."""
        return self.satisfied / self.records if self.records else 0.0


@dataclass(frozen=True)
class DashboardUser:
    """An account of the web dashboard: its name, its argon2 password hash and its role
    ('national', 'region:CODE' or 'site:ID'; `platform_ingest.dashboard.accounts` reads it)."""

    name: str
    password_hash: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class StoredComment:
    """A record's moderated comment as the dashboard lists it (no record or device id)."""

    site_id: str
    site_name: str | None
    month: str
    rating: int
    text: str
    language: str | None


class Store(ABC):
    """Records, dead letters and sites; one instance per process, used from one thread."""

    @abstractmethod
    def store(
        self, records: Sequence[Record], *, dead_letter: DeadLetter | None = None, received: datetime | None = None
    ) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        """Store `records` (and `dead_letter`) in one transaction: (accepted ids, duplicate ids)."""

    def store_batch(self, batch: Batch) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        """Store a whole valid batch: (accepted ids, duplicate ids)."""
        return self.store(batch.records)

    @abstractmethod
    def add_dead_letter(self, letter: DeadLetter, *, received: datetime | None = None) -> None:
        """Keep `letter` (payload truncated to MAX_DEAD_LETTER_BYTES)."""

    @abstractmethod
    def dead_letters(self, limit: int = 100) -> list[StoredDeadLetter]:
        """The most recent dead letters, newest first."""

    @abstractmethod
    def purge_dead_letters(self, before: datetime) -> int:
        """Delete the dead letters received before `before`; return how many."""

    @abstractmethod
    def count_event(self, topic: str, event: str, *, received: datetime | None = None) -> None:
        """Count one `event` ('redelivered'…) for the terminal of `topic`, in the hour of `received`."""

    @abstractmethod
    def put_status(self, status: Status, *, received: datetime | None = None) -> bool:
        """Keep `status` as its terminal's latest unless a newer one (by `sent_at`) is kept, or if it says
        offline (the last will the broker publishes carries the time of connection); True if kept."""

    @abstractmethod
    def health_rows(self, since: datetime) -> HealthRows:
        """Dead letters and events since `since`, and every terminal's latest Status."""

    @abstractmethod
    def terminals(self) -> list[TerminalStatus]:
        """Every terminal's latest Status with its site's name and département, by site then device."""

    @abstractmethod
    def put_device_config(self, site_id: str, device_id: str, config: DeviceConfig, published_at: datetime) -> None:
        """Keep `config` as published (retained) to the terminal `site_id/device_id` at `published_at`."""

    @abstractmethod
    def last_config_version(self) -> int:
        """The highest configuration version published or reported by a terminal (0: none yet)."""

    def latest_device_configs(self) -> dict[tuple[str, str], DeviceConfig]:
        """The latest (highest version) configuration published to each terminal, by (site id, device id)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no configurations; use the SQL stores")

    @abstractmethod
    def upsert_sites(self, sites: Iterable[Site]) -> int:
        """Insert or update sites in one transaction; the number written."""

    @abstractmethod
    def indicators(self, by: GroupBy = "site", month: str | None = None) -> list[Indicator]:
        """Indicators per group and month (only `month`, 'YYYY-MM', if given), ordered by group then month."""

    def site_indicators(self, site_ids: Iterable[str], month: str | None = None) -> list[Indicator]:
        """`indicators("site", month)` of the sites `site_ids` only (a département's page reads its few sites, not
        the whole network's)."""
        wanted = set(site_ids)
        return [indicator for indicator in self.indicators("site", month) if indicator.group in wanted]

    # The dashboard's queries and accounts (platform_ingest.dashboard); the SQL stores implement them, other
    # stores (test doubles) need not.

    def sites(self) -> list[Site]:
        """The sites directory, by site id."""
        raise NotImplementedError(f"{type(self).__name__} keeps no dashboard data; use the SQL stores")

    def comments(
        self,
        *,
        departments: Sequence[str] | None = None,
        site_id: str | None = None,
        month: str | None = None,
        rating: int | None = None,
        search: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[StoredComment], int]:
        """Records' comments, newest month first: (one page of them, how many match). `departments` keeps the
        sites of those départements (the sites directory), `site_id` one site, `search` the texts that contain
        it (case-insensitive; accents must match on SQLite)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no dashboard data; use the SQL stores")

    def put_dashboard_user(self, user: DashboardUser) -> None:
        """Create the dashboard account `user.name`, or replace its password hash and role."""
        raise NotImplementedError(f"{type(self).__name__} keeps no dashboard data; use the SQL stores")

    def dashboard_user(self, name: str) -> DashboardUser | None:
        """The dashboard account `name`, if there is one."""
        raise NotImplementedError(f"{type(self).__name__} keeps no dashboard data; use the SQL stores")

    def dashboard_users(self) -> list[DashboardUser]:
        """Every dashboard account, by name."""
        raise NotImplementedError(f"{type(self).__name__} keeps no dashboard data; use the SQL stores")

    def delete_dashboard_user(self, name: str) -> bool:
        """Remove the dashboard account `name`; False if there was none."""
        raise NotImplementedError(f"{type(self).__name__} keeps no dashboard data; use the SQL stores")

    @abstractmethod
    def record_count(self) -> int:
        """How many records are stored."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; the store may not be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...

    def fetchall(self) -> list[Any]: ...


_RECORD_COLUMNS = (
    "device_id",
    "record_id",
    "site_id",
    "period",
    "month",
    "rating",
    "answers",
    "comment_text",
    "comment_language",
    "comment_asr_model",
    "comment_confidence",
    "comment_redactions",
    "flags",
    "burst",
    "ui_language",
    "app_version",
    "schema_version",
    "received_hour",
)


INSERT_CHUNK = 500
"""Records per INSERT statement (18 parameters each: 9,000, under SQLite's 32,766 and PostgreSQL's 65,535)."""
_RECORD_PLACEHOLDERS = f"({', '.join('?' for _ in _RECORD_COLUMNS)})"


def _insert_records_sql(rows: int) -> str:
    """One INSERT of `rows` records that skips those already stored and returns the keys of those it added."""
    return (
        f"INSERT INTO records ({', '.join(_RECORD_COLUMNS)}) VALUES "  # noqa: S608 — fixed names, values are bound
        f"{', '.join(_RECORD_PLACEHOLDERS for _ in range(rows))} "
        "ON CONFLICT (device_id, record_id) DO NOTHING RETURNING device_id, record_id"
    )


_AGGREGATE_COLUMNS = ("records", "satisfied", "comments", "bursts")


def _upsert_site_month_sql(rows: int) -> str:
    """Add `rows` (site, month, counts) to site_month; an existing row's counts are incremented in place, under
    its row lock, so two transactions adding to the same site and month both count."""
    increments = ", ".join(f"{name} = site_month.{name} + excluded.{name}" for name in _AGGREGATE_COLUMNS)
    return (
        f"INSERT INTO site_month (site_id, month, {', '.join(_AGGREGATE_COLUMNS)}) VALUES "  # noqa: S608 — fixed
        f"{', '.join('(?, ?, ?, ?, ?, ?)' for _ in range(rows))} "
        f"ON CONFLICT (site_id, month) DO UPDATE SET {increments}"
    )


SITE_MONTH_FROM_RECORDS = (
    "SELECT site_id, month, COUNT(*), SUM(CASE WHEN rating >= 3 THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN comment_text IS NOT NULL THEN 1 ELSE 0 END), SUM(CASE WHEN burst THEN 1 ELSE 0 END) "
    "FROM records GROUP BY site_id, month"
)
"""site_month's rows computed from the records (the migration's backfill; the tests compare with it)."""
_BACKFILL_SITE_MONTH = (
    f"INSERT INTO site_month (site_id, month, {', '.join(_AGGREGATE_COLUMNS)}) {SITE_MONTH_FROM_RECORDS}"
)


def _record_row(record: Record, received_hour: datetime) -> tuple[Any, ...]:
    comment = record.comment
    return (
        record.device_id,
        str(record.record_id),
        record.site_id,
        record.period.isoformat(),
        record.period.strftime("%Y-%m"),  # the month where the office is, from the local time
        int(record.rating),
        json.dumps(record.answers, sort_keys=True),
        comment.text if comment else None,
        comment.language if comment else None,
        comment.asr_model if comment else None,
        comment.confidence if comment else None,
        json.dumps(comment.redactions, sort_keys=True) if comment else None,
        json.dumps([str(flag) for flag in record.flags]),
        Flag.BURST_SUSPECTED in record.flags,
        record.ui_language,
        record.app_version,
        record.schema_version,
        received_hour.isoformat(),
    )


class _SqlStore(Store):
    """The SQL both engines share; subclasses give the connection, DDL and placeholder style."""

    placeholder = "?"

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[_Cursor]: ...

    def _batch_transaction(self) -> AbstractContextManager[_Cursor]:
        """The transaction of a batch's records (PostgreSQL pipelines its statements)."""
        return self._transaction()

    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder)

    def store(
        self, records: Sequence[Record], *, dead_letter: DeadLetter | None = None, received: datetime | None = None
    ) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        received = received or datetime.now(UTC)
        accepted: list[uuid.UUID] = []
        duplicates: list[uuid.UUID] = []
        hour = truncate_to_hour(received.astimezone(UTC))
        # Rows go in key order, so two transactions inserting (or counting) the same keys take their locks in
        # the same order and wait for each other instead of deadlocking.
        ordered = sorted(records, key=lambda record: (record.device_id, record.record_id))
        with self._batch_transaction() as cursor:
            added: dict[tuple[str, str], int] = {}
            for start in range(0, len(ordered), INSERT_CHUNK):
                rows = [_record_row(record, hour) for record in ordered[start : start + INSERT_CHUNK]]
                for device_id, record_id in self._insert_records(cursor, rows):
                    key = (str(device_id), str(record_id))
                    added[key] = added.get(key, 0) + 1
            counts: dict[tuple[str, str], list[int]] = {}
            for record in records:
                key = (record.device_id, str(record.record_id))
                if added.get(key, 0) > 0:  # the first of the same id twice in `records` is the one added
                    added[key] -= 1
                    accepted.append(record.record_id)
                    count = counts.setdefault((record.site_id, record.period.strftime("%Y-%m")), [0, 0, 0, 0])
                    count[0] += 1
                    count[1] += record.rating >= 3
                    count[2] += record.comment is not None
                    count[3] += Flag.BURST_SUSPECTED in record.flags
                else:
                    duplicates.append(record.record_id)
            if counts:
                self._add_counts(cursor, counts)
            if dead_letter is not None:
                self._insert_dead_letter(cursor, dead_letter, received)
        return accepted, duplicates

    def _add_counts(self, cursor: _Cursor, counts: dict[tuple[str, str], list[int]]) -> None:
        """Add `counts` ((site, month) -> records, satisfied, comments, bursts) to site_month, in key order."""
        keys = sorted(counts)
        cursor.execute(
            self._sql(_upsert_site_month_sql(len(keys))), [value for key in keys for value in (*key, *counts[key])]
        )

    def _insert_records(self, cursor: _Cursor, rows: list[tuple[Any, ...]]) -> list[Any]:
        """Insert `rows` (`_record_row`s) but those already stored, in one statement: the (device_id, record_id)
        of the rows added."""
        cursor.execute(self._sql(_insert_records_sql(len(rows))), [value for row in rows for value in row])
        return cursor.fetchall()

    def add_dead_letter(self, letter: DeadLetter, *, received: datetime | None = None) -> None:
        with self._transaction() as cursor:
            self._insert_dead_letter(cursor, letter, received or datetime.now(UTC))

    def _insert_dead_letter(self, cursor: _Cursor, letter: DeadLetter, received: datetime) -> None:
        cursor.execute(
            self._sql(
                "INSERT INTO dead_letters (topic, payload, payload_bytes, reason, received_at) VALUES (?, ?, ?, ?, ?)"
            ),
            (
                _clean_text(letter.topic, 1000),
                letter.payload[:MAX_DEAD_LETTER_BYTES],
                len(letter.payload),
                _clean_text(letter.reason, 2000),
                received.astimezone(UTC).isoformat(),
            ),
        )

    def dead_letters(self, limit: int = 100) -> list[StoredDeadLetter]:
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT id, topic, payload, payload_bytes, reason, received_at FROM dead_letters "
                    "ORDER BY id DESC LIMIT ?"
                ),
                (limit,),
            )
            rows = cursor.fetchall()
        return [
            StoredDeadLetter(
                id=int(row[0]),
                topic=row[1],
                payload=bytes(row[2]),
                payload_bytes=int(row[3]),
                reason=row[4],
                received_at=row[5] if isinstance(row[5], datetime) else datetime.fromisoformat(row[5]),
            )
            for row in rows
        ]

    def purge_dead_letters(self, before: datetime) -> int:
        with self._transaction() as cursor:
            cursor.execute(
                self._sql("DELETE FROM dead_letters WHERE received_at < ?"), (before.astimezone(UTC).isoformat(),)
            )
            return int(cursor.rowcount)

    def count_event(self, topic: str, event: str, *, received: datetime | None = None) -> None:
        hour = truncate_to_hour((received or datetime.now(UTC)).astimezone(UTC)).isoformat()
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO ingest_events (hour, topic, event, count) VALUES (?, ?, ?, 1) "
                    "ON CONFLICT (hour, topic, event) DO UPDATE SET count = ingest_events.count + 1"
                ),
                (hour, _clean_text(topic, 300), event),
            )

    def put_status(self, status: Status, *, received: datetime | None = None) -> bool:
        arrived = (received or datetime.now(UTC)).astimezone(UTC).isoformat()
        with self._transaction() as cursor:
            if status.state == "offline":
                # The last will carries the time of connection, so it is older than the Status before it; it
                # only says the terminal went away (and when, if it was online until then).
                cursor.execute(
                    self._sql(
                        f"INSERT INTO terminal_status ({', '.join(_STATUS_COLUMNS)}) "  # noqa: S608 — fixed names
                        f"VALUES ({', '.join('?' for _ in _STATUS_COLUMNS)}) ON CONFLICT (site_id, device_id) "
                        "DO UPDATE SET state = 'offline', received_at = excluded.received_at, offline_since = "
                        "CASE WHEN terminal_status.state = 'offline' THEN terminal_status.offline_since "
                        "ELSE excluded.received_at END"
                    ),
                    _status_row(status, arrived),
                )
            else:
                updates = ", ".join(f"{name} = excluded.{name}" for name in _STATUS_COLUMNS[2:])
                cursor.execute(
                    self._sql(
                        f"INSERT INTO terminal_status ({', '.join(_STATUS_COLUMNS)}) "  # noqa: S608 — fixed names
                        f"VALUES ({', '.join('?' for _ in _STATUS_COLUMNS)}) ON CONFLICT (site_id, device_id) "
                        f"DO UPDATE SET {updates} WHERE excluded.sent_at > terminal_status.sent_at"
                    ),
                    _status_row(status, arrived),
                )
            return int(cursor.rowcount) == 1

    def health_rows(self, since: datetime) -> HealthRows:
        start = since.astimezone(UTC).isoformat()
        with self._transaction() as cursor:
            cursor.execute(
                self._sql("SELECT topic, reason, payload_bytes FROM dead_letters WHERE received_at >= ?"), (start,)
            )
            letters = [(str(t), str(r), int(b)) for t, r, b in cursor.fetchall()]
            hour = truncate_to_hour(since.astimezone(UTC)).isoformat()
            cursor.execute(
                self._sql("SELECT topic, event, SUM(count) FROM ingest_events WHERE hour >= ? GROUP BY topic, event"),
                (hour,),
            )
            events = [(str(t), str(e), int(c)) for t, e, c in cursor.fetchall()]
            statuses = self._terminals(cursor)
        return HealthRows(letters, events, statuses)

    def terminals(self) -> list[TerminalStatus]:
        with self._transaction() as cursor:
            return self._terminals(cursor)

    def _terminals(self, cursor: _Cursor) -> list[TerminalStatus]:
        columns = ", ".join(f"t.{name}" for name in _STATUS_COLUMNS)
        cursor.execute(
            f"SELECT {columns}, s.name, s.department, c.version, c.published_at "  # noqa: S608 — fixed names
            "FROM terminal_status t LEFT JOIN sites s ON s.site_id = t.site_id "
            "LEFT JOIN (SELECT site_id, device_id, MAX(config_version) AS version, MAX(published_at) AS published_at "
            "FROM device_configs GROUP BY site_id, device_id) c ON c.site_id = t.site_id AND c.device_id = t.device_id "
            "ORDER BY t.site_id, t.device_id"
        )
        return [_terminal_status(row) for row in cursor.fetchall()]

    def put_device_config(self, site_id: str, device_id: str, config: DeviceConfig, published_at: datetime) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO device_configs (site_id, device_id, config_version, document, published_at) "
                    "VALUES (?, ?, ?, ?, ?)"
                ),
                (site_id, device_id, config.config_version, config.to_json(), published_at.astimezone(UTC).isoformat()),
            )

    def last_config_version(self) -> int:
        with self._transaction() as cursor:
            cursor.execute(
                "SELECT MAX(v) FROM (SELECT MAX(config_version) AS v FROM device_configs "
                "UNION ALL SELECT MAX(config_version) AS v FROM terminal_status) versions"
            )
            (value,) = cursor.fetchall()[0]
        return int(value or 0)

    def upsert_sites(self, sites: Iterable[Site]) -> int:
        upsert = self._sql(
            "INSERT INTO sites (site_id, name, department, region) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (site_id) DO UPDATE SET name = excluded.name, department = excluded.department, "
            "region = excluded.region"
        )
        written = 0
        with self._transaction() as cursor:
            for site in sites:
                cursor.execute(upsert, (site.site_id, site.name, site.department, region_of(site.department)))
                written += 1
        return written

    def indicators(self, by: GroupBy = "site", month: str | None = None) -> list[Indicator]:
        return self._indicators(by, month)

    def site_indicators(self, site_ids: Iterable[str], month: str | None = None) -> list[Indicator]:
        wanted = sorted(set(site_ids))
        return self._indicators("site", month, wanted) if wanted else []

    def _indicators(self, by: GroupBy, month: str | None, site_ids: Sequence[str] | None = None) -> list[Indicator]:
        key = {
            "site": "r.site_id",
            "department": f"COALESCE(s.department, '{UNKNOWN}')",
            "region": f"COALESCE(s.region, '{UNKNOWN}')",
        }[by]
        conditions, params = [], []
        if month is not None:
            conditions.append("r.month = ?")
            params.append(month)
        if site_ids is not None:  # read through site_month's primary key (site_id, month)
            conditions.append(f"r.site_id IN ({', '.join('?' for _ in site_ids)})")
            params.extend(site_ids)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        # site_month holds the counts per site and month (kept up to date by store()): a few rows per site, never
        # the records themselves.
        query = self._sql(
            f"SELECT {key} AS grp, r.month, SUM(r.records), SUM(r.satisfied), SUM(r.comments), "  # noqa: S608 — key from the table above
            f"SUM(r.bursts) FROM site_month r LEFT JOIN sites s ON s.site_id = r.site_id {where} "
            "GROUP BY grp, r.month ORDER BY grp, r.month"
        )
        with self._transaction() as cursor:
            cursor.execute(query, params)
            rows = cursor.fetchall()
            cursor.execute("SELECT site_id, name FROM sites")
            site_names = {row[0]: row[1] for row in cursor.fetchall()}
        indicators = []
        for group, row_month, records, satisfied, comments, bursts in rows:
            if by == "site":
                label = site_names.get(group, "")
            elif by == "department":
                label = DEPARTMENTS[group].name if group in DEPARTMENTS else ""
            else:
                label = group
            indicators.append(
                Indicator(
                    group=group,
                    label=label,
                    month=str(row_month),
                    records=int(records),
                    satisfied=int(satisfied),
                    comments=int(comments),
                    bursts=int(bursts),
                )
            )
        return indicators

    def record_count(self) -> int:
        with self._transaction() as cursor:
            cursor.execute("SELECT COUNT(*) FROM records")
            return int(cursor.fetchall()[0][0])

    like = "LIKE"
    """The case-insensitive LIKE of the engine (SQLite's LIKE ignores the case of ASCII letters only)."""

    def sites(self) -> list[Site]:
        with self._transaction() as cursor:
            cursor.execute("SELECT site_id, name, department FROM sites ORDER BY site_id")
            return [Site(str(row[0]), str(row[1]), str(row[2])) for row in cursor.fetchall()]

    def comments(
        self,
        *,
        departments: Sequence[str] | None = None,
        site_id: str | None = None,
        month: str | None = None,
        rating: int | None = None,
        search: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[StoredComment], int]:
        conditions = ["r.comment_text IS NOT NULL"]
        params: list[Any] = []
        if departments is not None:
            if not departments:
                return [], 0
            conditions.append(f"s.department IN ({', '.join('?' for _ in departments)})")
            params.extend(departments)
        if site_id is not None:
            conditions.append("r.site_id = ?")
            params.append(site_id)
        if month is not None:
            conditions.append("r.month = ?")
            params.append(month)
        if rating is not None:
            conditions.append("r.rating = ?")
            params.append(rating)
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(f"r.comment_text {self.like} ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        where = " AND ".join(conditions)
        source = f"FROM records r LEFT JOIN sites s ON s.site_id = r.site_id WHERE {where}"
        with self._transaction() as cursor:
            cursor.execute(self._sql(f"SELECT COUNT(*) {source}"), params)
            total = int(cursor.fetchall()[0][0])
            cursor.execute(
                self._sql(
                    f"SELECT r.site_id, s.name, r.month, r.rating, r.comment_text, r.comment_language {source} "
                    "ORDER BY r.month DESC, r.period DESC, r.record_id LIMIT ? OFFSET ?"
                ),
                [*params, limit, offset],
            )
            rows = cursor.fetchall()
        return [
            StoredComment(str(row[0]), row[1], str(row[2]), int(row[3]), str(row[4]), row[5]) for row in rows
        ], total

    def put_dashboard_user(self, user: DashboardUser) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "INSERT INTO dashboard_users (name, password_hash, role, created_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role"
                ),
                (user.name, user.password_hash, user.role, user.created_at.astimezone(UTC).isoformat()),
            )

    def dashboard_user(self, name: str) -> DashboardUser | None:
        with self._transaction() as cursor:
            cursor.execute(
                self._sql("SELECT name, password_hash, role, created_at FROM dashboard_users WHERE name = ?"), (name,)
            )
            rows = cursor.fetchall()
        return _dashboard_user(rows[0]) if rows else None

    def dashboard_users(self) -> list[DashboardUser]:
        with self._transaction() as cursor:
            cursor.execute("SELECT name, password_hash, role, created_at FROM dashboard_users ORDER BY name")
            return [_dashboard_user(row) for row in cursor.fetchall()]

    def delete_dashboard_user(self, name: str) -> bool:
        with self._transaction() as cursor:
            cursor.execute(self._sql("DELETE FROM dashboard_users WHERE name = ?"), (name,))
            return int(cursor.rowcount) == 1

    def latest_device_configs(self) -> dict[tuple[str, str], DeviceConfig]:
        with self._transaction() as cursor:
            cursor.execute(
                "SELECT c.site_id, c.device_id, c.document FROM device_configs c WHERE c.config_version = "
                "(SELECT MAX(l.config_version) FROM device_configs l "
                "WHERE l.site_id = c.site_id AND l.device_id = c.device_id)"
            )
            rows = cursor.fetchall()
        return {
            (str(site), str(device)): (
                DeviceConfig.model_validate_json(document)
                if isinstance(document, str | bytes)
                else DeviceConfig.model_validate(document)
            )
            for site, device, document in rows
        }


def _datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _dashboard_user(row: Sequence[Any]) -> DashboardUser:
    return DashboardUser(name=str(row[0]), password_hash=str(row[1]), role=str(row[2]), created_at=_datetime(row[3]))


_STATUS_COLUMNS = (
    "site_id",
    "device_id",
    "state",
    "backlog",
    "oldest_pending_age_s",
    "sent_at",
    "received_at",
    "last_seen",
    "offline_since",
    "last_ack_at",
    "disk_free_bytes",
    "app_version",
    "config_version",
    "microphone",
    "model",
    "technician_pin_failures",
)


def _status_row(status: Status, arrived: str) -> tuple[Any, ...]:
    online = status.state == "online"
    return (
        status.site_id,
        status.device_id,
        status.state,
        status.backlog,
        status.oldest_pending_age_s,
        status.sent_at.astimezone(UTC).isoformat(),
        arrived,
        arrived if online else None,
        None if online else arrived,
        status.last_ack_at.astimezone(UTC).isoformat() if status.last_ack_at else None,
        status.disk_free_bytes,
        _clean_text(status.versions["borne"], 64) if "borne" in status.versions else None,
        status.config_version,
        str(status.microphone),
        str(status.model),
        status.technician_pin_failures,
    )


def _optional_datetime(value: Any) -> datetime | None:
    return None if value is None else _datetime(value)


def _terminal_status(row: Sequence[Any]) -> TerminalStatus:
    return TerminalStatus(
        site_id=row[0],
        device_id=row[1],
        state=row[2],
        backlog=int(row[3]),
        oldest_pending_age_s=None if row[4] is None else float(row[4]),
        sent_at=_datetime(row[5]),
        received_at=_datetime(row[6]),
        last_seen=_optional_datetime(row[7]),
        offline_since=_optional_datetime(row[8]),
        last_ack_at=_optional_datetime(row[9]),
        disk_free_bytes=None if row[10] is None else int(row[10]),
        app_version=row[11],
        config_version=None if row[12] is None else int(row[12]),
        microphone=row[13] or "unknown",
        model=row[14] or "unknown",
        technician_pin_failures=None if row[15] is None else int(row[15]),
        site_name=row[16],
        department=row[17],
        config_sent=None if row[18] is None else int(row[18]),
        config_sent_at=_optional_datetime(row[19]),
    )


def _clean_text(text: str, limit: int) -> str:
    """`text` without NUL characters or lone surrogates (neither survives a PostgreSQL text column)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\N{REPLACEMENT CHARACTER}")[:limit]


_SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS ingest_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS records (
        device_id TEXT NOT NULL, record_id TEXT NOT NULL, site_id TEXT NOT NULL,
        period TEXT NOT NULL, month TEXT NOT NULL, rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 4),
        answers TEXT NOT NULL, comment_text TEXT, comment_language TEXT, comment_asr_model TEXT,
        comment_confidence REAL, comment_redactions TEXT, flags TEXT NOT NULL, burst INTEGER NOT NULL,
        ui_language TEXT NOT NULL, app_version TEXT NOT NULL, schema_version INTEGER NOT NULL,
        received_hour TEXT NOT NULL,
        PRIMARY KEY (device_id, record_id)
    )""",
    "CREATE INDEX IF NOT EXISTS records_month_site ON records (month, site_id)",
    """CREATE TABLE IF NOT EXISTS site_month (
        site_id TEXT NOT NULL, month TEXT NOT NULL, records INTEGER NOT NULL, satisfied INTEGER NOT NULL,
        comments INTEGER NOT NULL, bursts INTEGER NOT NULL, PRIMARY KEY (site_id, month)
    )""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
        payload_bytes INTEGER NOT NULL, reason TEXT NOT NULL, received_at TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS sites (
        site_id TEXT PRIMARY KEY, name TEXT NOT NULL, department TEXT NOT NULL, region TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at)",
    """CREATE TABLE IF NOT EXISTS ingest_events (
        hour TEXT NOT NULL, topic TEXT NOT NULL, event TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (hour, topic, event)
    )""",
    """CREATE TABLE IF NOT EXISTS terminal_status (
        site_id TEXT NOT NULL, device_id TEXT NOT NULL, state TEXT NOT NULL, backlog INTEGER NOT NULL,
        oldest_pending_age_s REAL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL,
        last_seen TEXT, offline_since TEXT, last_ack_at TEXT, disk_free_bytes INTEGER, app_version TEXT,
        config_version INTEGER, microphone TEXT, model TEXT, technician_pin_failures INTEGER,
        PRIMARY KEY (site_id, device_id)
    )""",
    """CREATE TABLE IF NOT EXISTS device_configs (
        site_id TEXT NOT NULL, device_id TEXT NOT NULL, config_version INTEGER NOT NULL, document TEXT NOT NULL,
        published_at TEXT NOT NULL, PRIMARY KEY (site_id, device_id, config_version)
    )""",
    """CREATE TABLE IF NOT EXISTS dashboard_users (
        name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL, created_at TEXT NOT NULL
    )""",
)
_SQLITE_MIGRATIONS = {
    2: tuple(
        f"ALTER TABLE terminal_status ADD COLUMN {column}"
        for column in (
            "last_seen TEXT",
            "offline_since TEXT",
            "last_ack_at TEXT",
            "disk_free_bytes INTEGER",
            "app_version TEXT",
            "config_version INTEGER",
            "microphone TEXT",
            "model TEXT",
            "technician_pin_failures INTEGER",
        )
    ),
    # The DDL above has just created site_month, empty: count the records already stored.
    3: (_BACKFILL_SITE_MONTH,),
}


class SqliteStore(_SqlStore):
    """An embedded SQLite file (WAL, synchronous=FULL); several local processes may share it."""

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 30.0) -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout_s)
            if self.path != ":memory:":
                self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailable(f"cannot open SQLite database {self.path}: {error}") from error
        self._migrate()

    def _migrate(self) -> None:
        with self._transaction() as cursor:
            for statement in _SQLITE_DDL:
                cursor.execute(statement)
            _check_version(cursor, self._sql, f"SQLite database {self.path}", _SQLITE_MIGRATIONS)

    @contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        cursor = self._connection.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite database {self.path}: {error}") from error
        try:
            yield cursor
            cursor.execute("COMMIT")
        except BaseException as error:
            self._connection.rollback()
            if isinstance(error, sqlite3.OperationalError):
                raise StoreUnavailable(f"SQLite database {self.path}: {error}") from error
            if isinstance(error, sqlite3.Error):
                raise StoreError(f"SQLite database {self.path} refused the data: {error}") from error
            raise
        finally:
            cursor.close()

    def close(self) -> None:
        self._connection.close()


def _check_version(cursor: _Cursor, sql: Any, where: str, migrations: dict[int, tuple[str, ...]]) -> None:
    """Record the schema version of a new database; bring an older one up to it (`migrations`: the statements
    that lead to each version), in the caller's transaction; refuse a newer one."""
    cursor.execute(sql("SELECT value FROM ingest_meta WHERE key = ?"), ("schema_version",))
    rows = cursor.fetchall()
    if not rows:
        cursor.execute(
            sql("INSERT INTO ingest_meta (key, value) VALUES (?, ?)"), ("schema_version", str(SCHEMA_VERSION))
        )
        return
    stored = int(rows[0][0])
    if stored > SCHEMA_VERSION:
        raise StoreError(
            f"{where} has ingest schema version {stored}, newer than this borne's {SCHEMA_VERSION}; upgrade borne"
        )
    for version in range(stored + 1, SCHEMA_VERSION + 1):
        for statement in migrations.get(version, ()):
            cursor.execute(statement)
    if stored < SCHEMA_VERSION:
        cursor.execute(sql("UPDATE ingest_meta SET value = ? WHERE key = ?"), (str(SCHEMA_VERSION), "schema_version"))


_POSTGRES_DDL = (
    "CREATE TABLE IF NOT EXISTS ingest_meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE IF NOT EXISTS records (
        device_id text NOT NULL, record_id uuid NOT NULL, site_id text NOT NULL,
        period timestamptz NOT NULL, month char(7) NOT NULL, rating smallint NOT NULL CHECK (rating BETWEEN 1 AND 4),
        answers jsonb NOT NULL, comment_text text, comment_language text, comment_asr_model text,
        comment_confidence double precision, comment_redactions jsonb, flags jsonb NOT NULL, burst boolean NOT NULL,
        ui_language text NOT NULL, app_version text NOT NULL, schema_version smallint NOT NULL,
        received_hour timestamptz NOT NULL,
        PRIMARY KEY (device_id, record_id)
    )""",
    "CREATE INDEX IF NOT EXISTS records_month_site ON records (month, site_id)",
    """CREATE TABLE IF NOT EXISTS site_month (
        site_id text NOT NULL, month text NOT NULL, records bigint NOT NULL, satisfied bigint NOT NULL,
        comments bigint NOT NULL, bursts bigint NOT NULL, PRIMARY KEY (site_id, month)
    )""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, topic text NOT NULL, payload bytea NOT NULL,
        payload_bytes integer NOT NULL, reason text NOT NULL, received_at timestamptz NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS sites (
        site_id text PRIMARY KEY, name text NOT NULL, department text NOT NULL, region text NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at)",
    """CREATE TABLE IF NOT EXISTS ingest_events (
        hour timestamptz NOT NULL, topic text NOT NULL, event text NOT NULL, count integer NOT NULL,
        PRIMARY KEY (hour, topic, event)
    )""",
    """CREATE TABLE IF NOT EXISTS terminal_status (
        site_id text NOT NULL, device_id text NOT NULL, state text NOT NULL, backlog integer NOT NULL,
        oldest_pending_age_s double precision, sent_at timestamptz NOT NULL, received_at timestamptz NOT NULL,
        last_seen timestamptz, offline_since timestamptz, last_ack_at timestamptz, disk_free_bytes bigint,
        app_version text, config_version integer, microphone text, model text, technician_pin_failures integer,
        PRIMARY KEY (site_id, device_id)
    )""",
    """CREATE TABLE IF NOT EXISTS device_configs (
        site_id text NOT NULL, device_id text NOT NULL, config_version integer NOT NULL, document jsonb NOT NULL,
        published_at timestamptz NOT NULL, PRIMARY KEY (site_id, device_id, config_version)
    )""",
    """CREATE TABLE IF NOT EXISTS dashboard_users (
        name text PRIMARY KEY, password_hash text NOT NULL, role text NOT NULL, created_at timestamptz NOT NULL
    )""",
)
_POSTGRES_MIGRATIONS = {
    2: tuple(
        f"ALTER TABLE terminal_status ADD COLUMN IF NOT EXISTS {column}"
        for column in (
            "last_seen timestamptz",
            "offline_since timestamptz",
            "last_ack_at timestamptz",
            "disk_free_bytes bigint",
            "app_version text",
            "config_version integer",
            "microphone text",
            "model text",
            "technician_pin_failures integer",
        )
    ),
    3: (_BACKFILL_SITE_MONTH,),
}
_POSTGRES_RECORD_TYPES = (
    "text", "uuid", "text", "timestamptz", "text", "smallint", "text", "text", "text", "text", "float8", "text",
    "text", "boolean", "text", "text", "smallint", "timestamptz",
)  # fmt: skip
_JSON_COLUMNS = {"answers", "comment_redactions", "flags"}  # JSON texts in a row, jsonb in the table
_POSTGRES_INSERT_RECORDS = (
    f"INSERT INTO records ({', '.join(_RECORD_COLUMNS)}) SELECT "  # noqa: S608 — fixed names and types
    f"{', '.join(f'{name}::jsonb' if name in _JSON_COLUMNS else name for name in _RECORD_COLUMNS)} "
    "FROM json_to_recordset(%s::json) AS r("
    f"{', '.join(f'{name} {kind}' for name, kind in zip(_RECORD_COLUMNS, _POSTGRES_RECORD_TYPES, strict=True))}) "
    "ON CONFLICT (device_id, record_id) DO NOTHING RETURNING device_id, record_id"
)
_MIGRATION_LOCK = 0x626F726E65  # pg_advisory_xact_lock key: consumers starting together migrate one at a time


class PostgresStore(_SqlStore):
    """A PostgreSQL database (`pip install 'borne[ingest-pg]'`); any number of consumers may share it.

    The tables live in the connection's search_path; put `?options=-csearch_path%3Dname` in the URL to
    use another schema than `public`.
    """

    placeholder = "%s"
    like = "ILIKE"

    def __init__(self, url: str, *, connect_timeout_s: int = 10) -> None:
        try:
            import psycopg
        except ImportError as error:
            raise StoreError(
                "the PostgreSQL store requires the psycopg package: pip install 'borne[ingest-pg]'"
            ) from error
        self._psycopg = psycopg
        self.url = url
        self._connect_timeout_s = connect_timeout_s
        self._connection: Any = None
        self._connect()
        with self._transaction() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            for statement in _POSTGRES_DDL:
                cursor.execute(statement)
            _check_version(cursor, self._sql, "PostgreSQL database", _POSTGRES_MIGRATIONS)

    def _connect(self) -> None:
        try:
            self._connection = self._psycopg.connect(self.url, connect_timeout=self._connect_timeout_s, autocommit=True)
        except self._psycopg.Error as error:
            raise StoreUnavailable(f"cannot connect to PostgreSQL ({_redact(self.url)}): {error}") from error

    def _insert_records(self, cursor: _Cursor, rows: list[tuple[Any, ...]]) -> list[Any]:
        # The rows as one JSON parameter the server splits (json_to_recordset): a short statement psycopg converts
        # once and caches, where a VALUES list of 500 rows is 9,000 placeholders parsed again on every call (and
        # one array per column costs more to dump).
        document = json.dumps([dict(zip(_RECORD_COLUMNS, row, strict=True)) for row in rows])
        cursor.execute(_POSTGRES_INSERT_RECORDS, (document,))
        return cursor.fetchall()

    def _batch_transaction(self) -> AbstractContextManager[_Cursor]:
        # In pipeline mode BEGIN goes with the INSERT, and the site_month statement with the COMMIT: two round
        # trips a batch instead of four. Errors still come out here, before the Ack can be sent.
        return self._transaction(pipelined=True)

    @contextmanager
    def _transaction(self, *, pipelined: bool = False) -> Iterator[_Cursor]:
        psycopg = self._psycopg
        if self._connection is None or self._connection.closed or self._connection.broken:
            self._connect()
        try:
            with (
                self._connection.pipeline() if pipelined else nullcontext(),
                self._connection.transaction(),
                self._connection.cursor() as cursor,
            ):
                yield cursor
        except psycopg.OperationalError as error:
            raise StoreUnavailable(f"PostgreSQL ({_redact(self.url)}): {error}") from error
        except psycopg.Error as error:
            raise StoreError(f"PostgreSQL refused the data: {error}") from error

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


def _redact(url: str) -> str:
    """`url` without its password, for messages."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else f"{scheme}://{user}@{host}"


def open_store(url: str) -> Store:
    """The store `url` names: `sqlite:///relative.db`, `sqlite:////absolute.db`, `sqlite:///:memory:`,
    or `postgresql://user@host:port/database`."""
    if url.startswith("sqlite:///"):
        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    raise StoreError(
        f"unsupported database URL {_redact(url)!r}: expected sqlite:////absolute/path.db or postgresql://user@host/db"
    )


def iso_month(text: str) -> str:
    """`text` if it is a month 'YYYY-MM', else ValueError."""
    try:
        parsed = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise ValueError(f"{text!r} is not a month; expected YYYY-MM, e.g. 2026-11") from None
    return parsed.strftime("%Y-%m")
