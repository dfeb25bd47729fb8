"""Failed logins counted per account and per address over a sliding window; over the limit, logins are refused
until the oldest failure leaves the window. In memory: each dashboard process counts its own (run one)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class LoginThrottle:
    window_s: float
    per_account: int
    per_address: int
    max_keys: int = 10_000
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return deque()
        return times

    def wait_s(self, account: str, address: str, now: float) -> float:
        """0 when a login may be tried, else the seconds until it may."""
        waits = []
        for key, limit in ((f"account:{account.lower()}", self.per_account), (f"address:{address}", self.per_address)):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append(times[-limit] + self.window_s - now)
        return max(waits, default=0.0)

    def failed(self, account: str, address: str, now: float) -> None:
        for key in (f"account:{account.lower()}", f"address:{address}"):
            self._failures.setdefault(key, deque()).append(now)
            self._recent(key, now)
        if len(self._failures) > self.max_keys:  # names made up by the thousand: forget what left the window
            for key in list(self._failures):
                self._recent(key, now)

    def __len__(self) -> int:
        """How many accounts and addresses have failures counted."""
        return len(self._failures)
