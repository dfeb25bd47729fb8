"""The technician screen's logic, without Kivy: the hidden gesture, the PIN gate and the report shown.

The screen (kiosk_app/ui) opens after `CornerGesture` sees a quick series of taps in one corner and
`PinGate` accepts the PIN whose scrypt hash is `[kiosk] technician_pin_hash` (`borne provision pin`), or
a plain `[kiosk] technician_pin` of older settings; neither keeps the screen disabled.
Times come from an injected monotonic clock, so the tests move time by hand.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import logging
import os
import shutil
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sync_agent.contract import ComponentState
from sync_agent.outbox import STATES, Outbox, OutboxError

Clock = Callable[[], float]
logger = logging.getLogger(__name__)


class Corner(enum.StrEnum):
    """A screen corner as the viewer sees it."""

    TOP_LEFT = "top-left"
    TOP_RIGHT = "top-right"
    BOTTOM_LEFT = "bottom-left"
    BOTTOM_RIGHT = "bottom-right"


class CornerGesture:
    """`taps` taps within `within_s` seconds inside a square of `size_px` in one corner opens the way.

    Coordinates are Kivy's: origin at the bottom-left, y upwards. A tap anywhere else starts the
    count again, so ordinary use of the screen never adds up to the gesture.
    """

    def __init__(
        self,
        *,
        corner: Corner = Corner.TOP_RIGHT,
        size_px: float = 80.0,
        taps: int = 5,
        within_s: float = 3.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if taps < 2:
            raise ValueError(f"taps={taps}: a hidden gesture needs at least 2 taps")
        if within_s <= 0 or size_px <= 0:
            raise ValueError("within_s and size_px must be positive")
        self.corner = Corner(corner)
        self.size_px = size_px
        self.taps = taps
        self.within_s = within_s
        self._clock = clock
        self._times: deque[float] = deque(maxlen=taps)

    def in_corner(self, x: float, y: float, width: float, height: float) -> bool:
        left = x <= self.size_px
        right = x >= width - self.size_px
        bottom = y <= self.size_px
        top = y >= height - self.size_px
        return {
            Corner.TOP_LEFT: top and left,
            Corner.TOP_RIGHT: top and right,
            Corner.BOTTOM_LEFT: bottom and left,
            Corner.BOTTOM_RIGHT: bottom and right,
        }[self.corner]

    def tap(self, x: float, y: float, width: float, height: float) -> bool:
        """Record a touch at (x, y) on a window of width × height; True when it completes the gesture."""
        if not self.in_corner(x, y, width, height):
            self._times.clear()
            return False
        now = self._clock()
        self._times.append(now)
        if len(self._times) == self.taps and now - self._times[0] <= self.within_s:
            self._times.clear()
            return True
        return False

    def reset(self) -> None:
        self._times.clear()


class PinCheck(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    LOCKED = "locked"  # too many wrong PINs: nothing is checked until the lock ends
    DISABLED = "disabled"  # no PIN configured: the technician screen stays closed


# scrypt at 16 MiB and about 50 ms a try on the development machine: slow enough that the hash in
# borne.toml does not give the PIN away to whoever reads the file, quick enough for the PIN pad.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1
PIN_HASH_PATTERN = r"^scrypt\$[0-9]+\$[0-9]+\$[0-9]+\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$"
MAX_LOCKOUT_S = 3600.0
PIN_LOCK_FILE = "technician-lock.json"  # the kiosk keeps it beside the outbox


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    """The PIN as `[kiosk] technician_pin_hash` keeps it: scrypt$N$r$p$salt$hash (base64)."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    encode = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_pin(pin: str, stored: str) -> bool:
    """Whether `pin` matches a `hash_pin` string (in constant time once hashed)."""
    try:
        _name, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest, validate=True)
        tried = hashlib.scrypt(
            pin.encode("utf-8"),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(tried, expected)


class PinGate:
    """Checks the technician PIN; `max_failures` wrong PINs in a row lock it for `lockout_s`, each further
    lock twice as long as the one before (at most an hour) until a right PIN. With `lock_file` the count
    and the lock survive a restart of the kiosk (a restart must not give an attacker three new tries)."""

    def __init__(
        self,
        configured_pin: str = "",
        *,
        pin_hash: str = "",
        max_failures: int = 3,
        lockout_s: float = 60.0,
        clock: Clock = time.monotonic,
        lock_file: Path | None = None,
        wall_clock: Clock = time.time,
    ) -> None:
        """`pin_hash` (from `hash_pin`) wins over a plain `configured_pin`; neither: the screen is disabled."""
        self._hash = pin_hash
        self._digest = _digest(configured_pin) if configured_pin and not pin_hash else None
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self._clock = clock
        self._wall = wall_clock
        self._lock_file = lock_file
        self._failures = 0
        self._lockouts = 0
        self._locked_until: float | None = None
        self._load()

    @property
    def enabled(self) -> bool:
        return bool(self._hash) or self._digest is not None

    @property
    def failures(self) -> int:
        """Wrong PINs since the last right one."""
        return self._failures

    def locked_for(self) -> float:
        """Seconds left before another PIN may be tried (0 when not locked)."""
        if self._locked_until is None:
            return 0.0
        left = self._locked_until - self._clock()
        if left <= 0:
            self._locked_until = None
            return 0.0
        return left

    def check(self, pin: str) -> PinCheck:
        if not self.enabled:
            return PinCheck.DISABLED
        if self.locked_for() > 0:
            return PinCheck.LOCKED
        if self._matches(pin):
            self._failures = self._lockouts = 0
            self._save()
            return PinCheck.ACCEPTED
        self._failures += 1
        if self._failures % self.max_failures == 0:
            self._locked_until = self._clock() + min(MAX_LOCKOUT_S, self.lockout_s * 2**self._lockouts)
            self._lockouts += 1
        self._save()
        return PinCheck.REJECTED

    def _matches(self, pin: str) -> bool:
        if self._hash:
            return verify_pin(pin, self._hash)
        # Both sides hashed first: the comparison time depends on neither the PIN's digits nor its length.
        return self._digest is not None and hmac.compare_digest(_digest(pin), self._digest)

    def _load(self) -> None:
        if self._lock_file is None:
            return
        try:
            saved = json.loads(self._lock_file.read_text(encoding="utf-8"))
            self._failures, self._lockouts = int(saved["failures"]), int(saved["lockouts"])
            left = float(saved["locked_until"]) - self._wall() if saved.get("locked_until") else 0.0
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("technician lock file %s unreadable: counting as locked once", self._lock_file)
            self._failures, self._lockouts, left = self.max_failures, 1, self.lockout_s
        if left > 0:
            self._locked_until = self._clock() + min(left, MAX_LOCKOUT_S)

    def _save(self) -> None:
        if self._lock_file is None:
            return
        left = self.locked_for()
        state = {
            "failures": self._failures,
            "lockouts": self._lockouts,
            "locked_until": self._wall() + left if left else None,
        }
        temporary = self._lock_file.with_name(self._lock_file.name + ".new")
        try:
            temporary.write_text(json.dumps(state), encoding="utf-8")
            temporary.replace(self._lock_file)
        except OSError as error:
            logger.warning("cannot keep the technician lock in %s: %s", self._lock_file, error.strerror)


def _digest(pin: str) -> bytes:
    return hashlib.sha256(pin.encode("utf-8")).digest()


@dataclass(frozen=True)
class TechnicianReport:
    """What the technician screen shows (no citizen data: counts and states only)."""

    site_id: str
    device_id: str
    software_version: str
    outbox_path: str
    outbox_counts: dict[str, int]  # pending, in_flight, acked, rejected
    oldest_pending_age_s: float | None
    last_ack_hour: datetime | None  # the outbox keeps acknowledgement times to the hour
    outbox_bytes: int
    disk_free_bytes: int | None
    outbox_problem: str | None  # the outbox could not be read, or was recovered from corruption
    model: ComponentState
    microphone: ComponentState

    @property
    def backlog(self) -> int:
        return self.outbox_counts.get("pending", 0) + self.outbox_counts.get("in_flight", 0)


def software_version() -> str:
    try:
        return version("borne")
    except PackageNotFoundError:
        return "unknown"


def gather_report(
    *,
    site_id: str,
    device_id: str,
    outbox: Outbox,
    model: ComponentState,
    microphone: ComponentState,
    now: datetime | None = None,
    waiting_records: int = 0,
    waiting_reason: str = "",
) -> TechnicianReport:
    """Collect the technician screen's figures; an unreadable outbox is reported, not raised, and so are
    records waiting in memory because the outbox refused them (`RecordKeeper`)."""
    now = now or datetime.now(UTC)
    counts = dict.fromkeys(STATES, 0)
    oldest: float | None = None
    last_ack: datetime | None = None
    size = 0
    problem: str | None = None
    try:
        stats = outbox.stats(now=now)
        counts, oldest, size, problem = dict(stats.counts), stats.oldest_pending_age_s, stats.file_bytes, stats.recovery
        last_ack = outbox.last_ack_hour()
    except (OutboxError, OSError, ValueError, sqlite3.Error) as error:
        problem = f"cannot read the outbox: {error}"
    if waiting_records:
        waiting = f"{waiting_records} record(s) wait in memory, refused by the outbox: {waiting_reason}"
        problem = f"{waiting}; {problem}" if problem else waiting
    try:
        free: int | None = shutil.disk_usage(outbox.path.parent).free
    except OSError:
        free = None
    return TechnicianReport(
        site_id=site_id,
        device_id=device_id,
        software_version=software_version(),
        outbox_path=str(outbox.path),
        outbox_counts=counts,
        oldest_pending_age_s=oldest,
        last_ack_hour=last_ack,
        outbox_bytes=size,
        disk_free_bytes=free,
        outbox_problem=problem,
        model=model,
        microphone=microphone,
    )
