"""Wake the event loop as soon as an input device has something to read (no Kivy import here).

The attract screen lets Kivy's (interruptible) clock sleep for a second at a time. `InputWake` watches the
input device nodes (evdev `/dev/input/event*`: what SDL's KMSDRM evdev input and the X server read) from a
daemon thread and calls `wake()` once a node is readable, so a touch is read by SDL on the loop turn that
the wake causes instead of up to a frame later. It never interprets events: each open evdev file has its
own copy of the kernel's queue, so draining ours takes nothing from SDL's.

- Each node matching the glob patterns is opened O_RDONLY|O_NONBLOCK|O_CLOEXEC; one that cannot be opened
  (no permission, gone) is skipped and logged once.
- On readiness every ready node is drained (read until EAGAIN) and `wake()` is called once.
- A node that hangs up or fails (POLLHUP, POLLERR, ENODEV: an unplugged touchscreen) is closed and
  forgotten; the patterns are scanned again every `rescan_s` for new nodes (hot-plug), so a node that hung
  up is reopened at the earliest on the next rescan and never makes the thread spin.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import logging
import os
import select
import stat
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

logger = logging.getLogger(__name__)

DEFAULT_PATTERNS = ("/dev/input/event*",)
RESCAN_S = 10.0
READ_CHUNK = 4096  # evdev records are 24 bytes on 64-bit Linux; a chunk holds 170 of them
MAX_READS_PER_TURN = 64  # a node that never runs dry waits for the next turn instead of holding the thread
_HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL
_GONE = {errno.ENODEV, errno.ENXIO, errno.EIO, errno.EBADF}


class InputWake:
    """Calls `wake()` from a daemon thread whenever one of the input nodes matching `patterns` is readable."""

    def __init__(
        self,
        patterns: Sequence[str],
        wake: Callable[[], object],
        *,
        rescan_s: float = RESCAN_S,
    ) -> None:
        if rescan_s <= 0:
            raise ValueError(f"rescan_s must be positive, not {rescan_s!r}")
        self.patterns = tuple(patterns)
        self.rescan_s = rescan_s
        self._wake = wake
        self._nodes: dict[int, str] = {}  # fd → path; changed only by start() and then the thread
        self._reported: set[str] = set()  # paths whose failure to open was logged
        self._poll = select.poll()
        self._stop_r = self._stop_w = -1
        self._thread: threading.Thread | None = None
        self.wakes = 0  # calls of wake() so far
        self.turns = 0  # returns from poll so far (the thread never spins: tests count these)
        self.rescans = 0

    # -- public --------------------------------------------------------------------------------------

    @property
    def watching(self) -> int:
        """Number of input nodes open now."""
        return len(self._nodes)

    @property
    def paths(self) -> list[str]:
        return sorted(self._nodes.values())

    def start(self) -> InputWake:
        """Open the nodes present now (so `watching` is right on return), then watch them on a thread."""
        if self._thread is not None:
            raise RuntimeError("this InputWake is already started")
        self._stop_r, self._stop_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll.register(self._stop_r, select.POLLIN)
        self._rescan()
        self._thread = threading.Thread(target=self._run, name="input-wake", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread (it wakes at once from its wait), join it and close every node."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with contextlib.suppress(BlockingIOError):  # a full pipe: a stop is already pending
            os.write(self._stop_w, b"x")
        thread.join(timeout_s)
        if thread.is_alive():
            logger.error("the input wake thread did not stop within %.0f s", timeout_s)
            return  # it still uses the descriptors; the process is ending anyway
        for fd in list(self._nodes):
            self._close(fd)
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)
        self._stop_r = self._stop_w = -1

    def __enter__(self) -> InputWake:
        return self.start()

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- the thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        next_rescan = time.monotonic() + self.rescan_s
        while True:
            timeout_ms = max(0, int((next_rescan - time.monotonic()) * 1000) + 1)
            ready = self._poll.poll(timeout_ms)
            self.turns += 1
            woken = False
            for fd, mask in ready:
                if fd == self._stop_r:
                    return
                if fd not in self._nodes:
                    continue
                got, gone = self._drain(fd) if mask & select.POLLIN else (False, False)
                woken = woken or got
                if gone or mask & _HANGUP:
                    logger.info(
                        "input device %s went away; looking for devices again within %.0f s",
                        self._nodes[fd],
                        self.rescan_s,
                    )
                    self._close(fd)
            if woken:
                self.wakes += 1
                try:
                    self._wake()
                except Exception:
                    logger.exception("the input wake callback failed")
            if time.monotonic() >= next_rescan:
                self._rescan()
                next_rescan = time.monotonic() + self.rescan_s

    def _drain(self, fd: int) -> tuple[bool, bool]:
        """Read `fd` until it would block: (anything read, the node is gone)."""
        got = False
        for _ in range(MAX_READS_PER_TURN):
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return got, False
            except OSError as error:
                if error.errno in _GONE:
                    return got, True
                raise
            if not data:  # end of file: a FIFO's last writer left (an evdev node never says this)
                return got, True
            got = True
        return got, False

    def _rescan(self) -> None:
        self.rescans += 1
        open_paths = set(self._nodes.values())
        for path in sorted({path for pattern in self.patterns for path in glob.glob(pattern)}):
            if path not in open_paths:
                self._open(path)

    def _open(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            self._report(path, error.strerror or str(error), permission=isinstance(error, PermissionError))
            return
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            os.close(fd)
            self._report(path, "not a character device", permission=False)
            return
        self._nodes[fd] = path
        self._poll.register(fd, select.POLLIN)
        self._reported.discard(path)
        logger.debug("watching input device %s", path)

    def _close(self, fd: int) -> None:
        self._nodes.pop(fd, None)
        with contextlib.suppress(KeyError):
            self._poll.unregister(fd)
        os.close(fd)

    def _report(self, path: str, reason: str, *, permission: bool) -> None:
        if path in self._reported:
            return
        self._reported.add(path)
        fix = (
            ": the kiosk's user needs read access to the input devices (the 'input' group, "
            "SupplementaryGroups=input in borne-kiosk.service)"
            if permission
            else ""
        )
        logger.warning("cannot watch input device %s (%s)%s", path, reason, fix)


__all__ = ["DEFAULT_PATTERNS", "RESCAN_S", "InputWake"]
