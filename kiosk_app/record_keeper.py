"""A visit's record that the outbox cannot take yet (disk full, file locked) waits in memory and is stored later.

The citizen has finished and walked away: the kiosk cannot ask them again, so a refused write must not
lose their answer. The draft (already moderated: no raw text) waits in RAM, in order, and is stored
before any newer record, at the next visit's end and every `retry_s` (`retry` is called by the app's
clock), and once more when the kiosk stops. At most `max_waiting` drafts wait; beyond that the oldest
is dropped and counted. A restart loses what waits, as a power cut loses what is on the screen.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from sync_agent.contract import Record, RecordDraft
from sync_agent.outbox import Outbox, OutboxError

logger = logging.getLogger(__name__)

MAX_WAITING = 500  # about 1 kB each: a day of visits at a busy site, a few hundred kB of RAM
RETRY_S = 30.0


class RecordKeeper:
    """Stores drafts in the outbox, in order, keeping those it refuses until it takes them."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        max_waiting: int = MAX_WAITING,
        on_stored: Callable[[Record], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.max_waiting = max_waiting
        self.on_stored = on_stored
        self._waiting: deque[RecordDraft] = deque()
        self.refusals = 0  # writes the outbox refused
        self.dropped = 0  # drafts lost because too many were waiting
        self.last_error = ""

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def store(self, draft: RecordDraft) -> None:
        """Queue `draft` behind any waiting ones and store as many as the outbox takes, in order."""
        if len(self._waiting) >= self.max_waiting:
            self._waiting.popleft()
            self.dropped += 1
            logger.error(
                "%d records waited for the outbox already: the oldest is dropped (%d so far); %s",
                self.max_waiting,
                self.dropped,
                self.last_error,
            )
        self._waiting.append(draft)
        self.retry()

    def retry(self) -> int:
        """Store the waiting drafts, oldest first, until the outbox refuses one; return how many were stored."""
        stored = 0
        while self._waiting:
            try:
                record = self.outbox.add(self._waiting[0])
            except OutboxError as error:
                self.refusals += 1
                if str(error) != self.last_error:
                    logger.error("the outbox refused a record, kept in memory (%d waiting): %s", self.waiting, error)
                self.last_error = str(error)
                break
            self._waiting.popleft()
            stored += 1
            if self.on_stored is not None:
                self.on_stored(record)
        if stored and self.last_error:
            logger.info("the outbox takes records again: %d stored, %d still waiting", stored, self.waiting)
            if not self._waiting:
                self.last_error = ""
        return stored


__all__ = ["MAX_WAITING", "RETRY_S", "RecordKeeper"]
