"""The outbox: a SQLite file where the kiosk stores records and the sync agent takes them to send.

One writer process (kiosk) and one reader/updater process (sync) share the file. SQLite in WAL mode
lets them read while the other writes; every write is a short `BEGIN IMMEDIATE` transaction, retried
with back-off while the other process holds the lock, so "database is locked" never reaches a caller
unless the lock is held for longer than `busy_timeout_s`. `synchronous=FULL` makes a committed add
survive a power cut.

States: pending -> in_flight (claimed into a batch) -> acked (the platform's Ack names it), or
rejected (the platform refused it for good; kept for the technician until purged). A batch that
gets no Ack is released back to pending, or re-sent with the same batch id.

Only the hour of a session is stored (in the record's `period`); acknowledgement times are stored
at hour precision too.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from sync_agent.contract import Ack, Batch, Record, RecordDraft, new_record_id, truncate_to_hour

logger = logging.getLogger(__name__)

T = TypeVar("T")

STATES = ("pending", "in_flight", "acked", "rejected")


class OutboxError(Exception):
    """The outbox cannot do what was asked; the message says why and what to do."""


class OutboxBusy(OutboxError):
    """The other process held the lock for longer than the configured busy timeout."""


class OutboxFull(OutboxError):
    """The disk (or the configured size limit) is full; nothing already stored was lost."""


def _migration_1(db: Database) -> None:
    table = db.table("records")
    table.create(
        {
            "seq": int,
            "record_id": str,
            "state": str,
            "period": str,
            "payload": str,
            "size": int,
            "batch_id": str,
            "attempts": int,
            "acked_hour": str,
            "reason": str,
        },
        pk="seq",
        not_null={"record_id", "state", "period", "payload", "size", "attempts"},
        defaults={"attempts": 0},
    )
    table.create_index(["record_id"], unique=True)
    table.create_index(["state", "seq"])
    table.create_index(["batch_id"])


# Append only: a migration, once released, never changes. PRAGMA user_version counts those applied.
# Not sqlite-migrate's `Migrations`: ours run in the writer's BEGIN IMMEDIATE transaction with the user_version
# bump, retried on the other process's lock, and refuse an outbox newer than this software (docs/architecture.md).
MIGRATIONS: tuple[Callable[[Database], None], ...] = (_migration_1,)


@dataclass(frozen=True)
class RecoveryReport:
    """What happened to a corrupted outbox file found at open."""

    moved_to: Path
    problem: str
    recovered_unsent: int
    already_acked: int
    unreadable_rows: bool

    def describe(self) -> str:
        lost = "some rows could not be read and may be lost" if self.unreadable_rows else "no unsent record was lost"
        return (
            f"corrupted outbox moved to {self.moved_to} ({self.problem}); "
            f"{self.recovered_unsent} unsent record(s) recovered into a new outbox; "
            f"{self.already_acked} acknowledged record(s) were already at the platform; {lost}"
        )


@dataclass(frozen=True)
class OutboxStats:
    counts: dict[str, int]
    oldest_pending_age_s: float | None
    file_bytes: int
    path: str
    recovery: str | None = None

    @property
    def backlog(self) -> int:
        return self.counts["pending"] + self.counts["in_flight"]


@dataclass(frozen=True)
class AckOutcome:
    acked: int
    rejected: int
    unknown: list[uuid.UUID] = field(default_factory=list)


class Outbox:
    """A durable queue of `Record`s in one SQLite file; open it with `Outbox.open`."""

    def __init__(self, db: Database, path: Path, busy_timeout_s: float, recovery: RecoveryReport | None):
        self._db = db
        self.path = path
        self._busy_timeout_s = busy_timeout_s
        self.recovery = recovery

    @classmethod
    def open(cls, path: Path, *, busy_timeout_s: float = 10.0) -> Outbox:
        """Open or create the outbox, bring its schema up to date and check its integrity."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutboxError(
                f"cannot create the outbox directory {path.parent} ({error.strerror}); "
                "check [outbox] path in the settings and the directory's permissions"
            ) from None
        recovery = None
        salvaged: list[Record] = []
        problem = _integrity_problem(path)
        if problem is not None:
            recovery, salvaged = _move_aside_and_salvage(path, problem)
            logger.error("outbox %s: %s", path, recovery.describe())
        created = not path.exists()
        outbox = cls(_connect(path, busy_timeout_s), path, busy_timeout_s, recovery)
        if created:
            _open_to_the_umask(path)
        outbox._migrate()
        for record in salvaged:
            outbox.add_record(record)
        _give_to_directory_owner(path)
        return outbox

    def close(self) -> None:
        self._db.conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------

    def add(self, draft: RecordDraft) -> Record:
        """Give the draft its UUIDv7 and store it, in one transaction; the returned record is durable."""

        def insert(conn: sqlite3.Connection) -> Record:
            record = Record.from_draft(draft, new_record_id(draft.period))
            self._insert(conn, record)
            return record

        return self._write(insert)

    def add_record(self, record: Record) -> bool:
        """Store a record that already has its id (recovery, tests); False if it was there already."""

        def insert(conn: sqlite3.Connection) -> bool:
            try:
                self._insert(conn, record)
            except sqlite3.IntegrityError:
                return False
            return True

        return self._write(insert)

    def claim_batch(self, *, max_records: int, max_bytes: int, now: datetime) -> Batch | None:
        """Move the oldest pending records (bounded by count and JSON bytes) in flight as one batch."""

        def claim(conn: sqlite3.Connection) -> Batch | None:
            rows = conn.execute(
                "SELECT seq, payload, size FROM records WHERE state = 'pending' ORDER BY seq LIMIT ?",
                (max_records,),
            ).fetchall()
            chosen: list[tuple[int, str]] = []
            total = 0
            for seq, payload, size in rows:
                if chosen and total + size + 1 > max_bytes:
                    break
                chosen.append((seq, payload))
                total += size + 1
            if not chosen:
                return None
            records = [Record.model_validate_json(payload) for _, payload in chosen]
            batch = Batch(
                batch_id=uuid.uuid4(),
                site_id=records[0].site_id,
                device_id=records[0].device_id,
                records=records,
                sent_at=now,
            )
            conn.executemany(
                "UPDATE records SET state = 'in_flight', batch_id = ?, attempts = attempts + 1 WHERE seq = ?",
                [(str(batch.batch_id), seq) for seq, _ in chosen],
            )
            return batch

        return self._write(claim)

    def in_flight_batches(self, *, now: datetime) -> list[Batch]:
        """Batches sent and not yet acknowledged (for example before a restart), to send again as they were."""
        rows = self._read("SELECT batch_id, payload FROM records WHERE state = 'in_flight' ORDER BY seq")
        grouped: dict[str, list[Record]] = {}
        for batch_id, payload in rows:
            grouped.setdefault(batch_id, []).append(Record.model_validate_json(payload))
        return [
            Batch(
                batch_id=uuid.UUID(batch_id),
                site_id=records[0].site_id,
                device_id=records[0].device_id,
                records=records,
                sent_at=now,
            )
            for batch_id, records in grouped.items()
        ]

    def release_batch(self, batch_id: uuid.UUID) -> int:
        """Put the batch's unacknowledged records back to pending (no Ack came); returns how many."""
        return self._write(
            lambda conn: (
                conn.execute(
                    "UPDATE records SET state = 'pending', batch_id = NULL WHERE batch_id = ? AND state = 'in_flight'",
                    (str(batch_id),),
                ).rowcount
            )
        )

    def apply_ack(self, ack: Ack, *, now: datetime) -> AckOutcome:
        """Mark what the platform stored (accepted or duplicate) acked, and what it refused rejected."""
        acked_hour = truncate_to_hour(now.astimezone(UTC)).isoformat()

        def apply(conn: sqlite3.Connection) -> AckOutcome:
            acked = rejected = 0
            unknown = []
            for record_id in ack.settled:
                changed = conn.execute(
                    "UPDATE records SET state = 'acked', acked_hour = ?, reason = NULL "
                    "WHERE record_id = ? AND state != 'acked'",
                    (acked_hour, str(record_id)),
                ).rowcount
                acked += changed
                if not changed and not self._known(conn, record_id):
                    unknown.append(record_id)
            for rejection in ack.rejected:
                if rejection.record_id is None:
                    continue
                changed = conn.execute(
                    "UPDATE records SET state = 'rejected', acked_hour = ?, reason = ? "
                    "WHERE record_id = ? AND state IN ('pending', 'in_flight')",
                    (acked_hour, rejection.reason, str(rejection.record_id)),
                ).rowcount
                rejected += changed
            return AckOutcome(acked=acked, rejected=rejected, unknown=unknown)

        return self._write(apply)

    def purge(self, *, now: datetime, retention_days: int) -> int:
        """Delete acked and rejected records older than the retention; returns how many."""
        cutoff = truncate_to_hour(now.astimezone(UTC) - timedelta(days=retention_days)).isoformat()
        return self._write(
            lambda conn: (
                conn.execute(
                    "DELETE FROM records WHERE state IN ('acked', 'rejected') AND acked_hour < ?", (cutoff,)
                ).rowcount
            )
        )

    # -- reading ---------------------------------------------------------------------------------

    def records(self, state: str | None = None) -> list[Record]:
        """Records in insertion order, optionally in one state."""
        if state is not None and state not in STATES:
            raise ValueError(f"unknown state {state!r}; expected one of {', '.join(STATES)}")
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        rows = self._read(f"SELECT payload FROM records {where} ORDER BY seq", params)  # noqa: S608
        return [Record.model_validate_json(payload) for (payload,) in rows]

    def state_of(self, record_id: uuid.UUID) -> str | None:
        rows = self._read("SELECT state FROM records WHERE record_id = ?", (str(record_id),))
        return rows[0][0] if rows else None

    def stats(self, *, now: datetime) -> OutboxStats:
        counts = dict.fromkeys(STATES, 0)
        for state, count in self._read("SELECT state, count(*) FROM records GROUP BY state"):
            counts[state] = count
        oldest = self._read("SELECT period FROM records WHERE state IN ('pending', 'in_flight') ORDER BY seq LIMIT 1")
        age = None
        if oldest:
            age = max(0.0, (now - datetime.fromisoformat(oldest[0][0])).total_seconds())
        file_bytes = sum(
            candidate.stat().st_size for candidate in (self.path, _sibling(self.path, "-wal")) if candidate.exists()
        )
        return OutboxStats(
            counts=counts,
            oldest_pending_age_s=age,
            file_bytes=file_bytes,
            path=str(self.path),
            recovery=self.recovery.describe() if self.recovery else None,
        )

    def last_ack_hour(self) -> datetime | None:
        """The hour of the most recent acknowledgement among the records kept (acked ones), or None."""
        rows = self._read("SELECT max(acked_hour) FROM records WHERE state = 'acked'")
        value = rows[0][0] if rows else None
        return datetime.fromisoformat(value) if value else None

    def quick_check(self) -> str:
        return str(self._read("PRAGMA quick_check")[0][0])

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _insert(conn: sqlite3.Connection, record: Record) -> None:
        payload = record.to_json()
        conn.execute(
            "INSERT INTO records (record_id, state, period, payload, size, attempts) VALUES (?, 'pending', ?, ?, ?, 0)",
            (str(record.record_id), record.period.isoformat(), payload, len(payload.encode())),
        )

    @staticmethod
    def _known(conn: sqlite3.Connection, record_id: uuid.UUID) -> bool:
        return conn.execute("SELECT 1 FROM records WHERE record_id = ?", (str(record_id),)).fetchone() is not None

    def _migrate(self) -> None:
        def migrate(conn: sqlite3.Connection) -> None:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise OutboxError(
                    f"outbox {self.path} has schema version {version}, newer than this software "
                    f"({len(MIGRATIONS)}); upgrade borne or point [outbox] path elsewhere"
                )
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(self._db)
                conn.execute(f"PRAGMA user_version = {number}")
                logger.info("outbox %s: schema migrated to version %d", self.path, number)

        self._write(migrate)

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[Any]:
        return self._retry(lambda: self._db.conn.execute(sql, params).fetchall())

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._db.conn

        def transaction() -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                if conn.in_transaction:  # SQLite already rolled back on some errors (disk full)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return self._retry(transaction)

    def _retry(self, attempt: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._busy_timeout_s
        delay = 0.005
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as error:
                message = str(error)
                if "full" in message:
                    raise OutboxFull(
                        f"outbox {self.path}: disk full ({message}); free space on "
                        f"{self.path.parent} — records already stored are kept"
                    ) from None
                if "locked" not in message and "busy" not in message:
                    raise
                if time.monotonic() >= deadline:
                    raise OutboxBusy(
                        f"outbox {self.path} stayed locked for more than {self._busy_timeout_s:.0f} s; "
                        "another process holds it (raise [outbox] busy_timeout_s or find the process)"
                    ) from None
                time.sleep(delay * (0.5 + random.random()))  # noqa: S311 — jitter, not security
                delay = min(delay * 2, 0.2)


def _connect(path: Path, busy_timeout_s: float) -> Database:
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as error:
        raise OutboxError(f"cannot open outbox {path} ({error}); check the path and its permissions") from None
    return Database(conn, execute_plugins=False)


def _open_to_the_umask(path: Path) -> None:
    """SQLite creates a database 0644 whatever the umask allows, and its WAL and shared-memory files
    with the database's mode: give the new file what the process's umask allows (0660 under the
    units' 0007, so the kiosk and the sync agent, two users of one group, both write it)."""
    try:
        umask = next(
            int(line.split()[1], 8)
            for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines()
            if line.startswith("Umask:")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        return
    try:
        path.chmod(0o666 & ~umask)
    except OSError as error:
        logger.warning("cannot set the mode of the new outbox %s: %s", path, error.strerror)


def _give_to_directory_owner(path: Path) -> None:
    """Run as root (`sudo borne outbox stats`), SQLite creates the database, its WAL and shared-memory
    files as root, which the kiosk and the sync agent then cannot write: hand them to the directory's
    owner, as if that user had made them."""
    if os.geteuid() != 0:
        return
    owner = path.parent.stat()
    for file in (path, _sibling(path, "-wal"), _sibling(path, "-shm")):
        try:
            if file.stat().st_uid == 0 and owner.st_uid != 0:
                os.chown(file, owner.st_uid, owner.st_gid)
        except FileNotFoundError:
            continue


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _integrity_problem(path: Path) -> str | None:
    """None when the file is absent or passes `PRAGMA quick_check`, else what is wrong."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        return str(error)
    if [row[0] for row in rows] != ["ok"]:
        return "quick_check: " + "; ".join(str(row[0]) for row in rows[:3])
    return None


def _move_aside_and_salvage(path: Path, problem: str) -> tuple[RecoveryReport, list[Record]]:
    """Move the damaged file (and its -wal/-shm) aside; read back the unsent records it still holds."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
    for suffix in ("", "-wal", "-shm"):
        source = _sibling(path, suffix)
        if source.exists():
            os.replace(source, _sibling(target, suffix))
    unsent, acked, unreadable = _salvage(target)
    report = RecoveryReport(
        moved_to=target,
        problem=problem,
        recovered_unsent=len(unsent),
        already_acked=acked,
        unreadable_rows=unreadable,
    )
    return report, unsent


def _salvage(path: Path) -> tuple[list[Record], int, bool]:
    """Unsent records readable from a damaged file, in order, the count of acked ones, and whether
    reading stopped on a damaged row."""
    unsent: list[Record] = []
    acked = 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            for state, payload in conn.execute("SELECT state, payload FROM records ORDER BY seq"):
                if state == "acked":
                    acked += 1
                elif state in ("pending", "in_flight"):
                    unsent.append(Record.model_validate_json(payload))
        finally:
            conn.close()
    except (sqlite3.DatabaseError, ValueError):
        return unsent, acked, True
    return unsent, acked, False
