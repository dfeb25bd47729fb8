"""`InputWake` on FIFOs standing in for evdev nodes: a write wakes, silence does not, a hang-up is dropped."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kiosk_app.ui.input_wake import InputWake

RECORD = bytes(24)  # one evdev record on 64-bit Linux


class Wakes:
    def __init__(self) -> None:
        self.count = 0
        self.changed = threading.Condition()

    def __call__(self) -> None:
        with self.changed:
            self.count += 1
            self.changed.notify_all()

    def wait_for(self, count: int, timeout_s: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count >= count, timeout_s)


def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def fifo(directory: Path, name: str) -> Path:
    path = directory / name
    os.mkfifo(path)
    return path


def writer(path: Path) -> int:
    """The write end; the reader (the waker) must already be open."""
    return os.open(path, os.O_WRONLY | os.O_NONBLOCK)


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[int]]:
    """Write ends opened by a test, closed after it."""
    opened: list[int] = []
    yield opened
    for fd in opened:
        os.close(fd)


def test_a_write_wakes_and_silence_does_not(tmp_path: Path, wakes: Wakes, nodes: list[int]) -> None:
    path = fifo(tmp_path, "event0")
    with InputWake([str(tmp_path / "event*")], wakes) as waker:
        assert waker.watching == 1 and waker.paths == [str(path)]
        nodes.append(writer(path))
        time.sleep(0.3)
        assert wakes.count == 0 and waker.turns == 0  # nothing written: the thread never left its wait
        os.write(nodes[0], RECORD)
        assert wakes.wait_for(1)
        os.write(nodes[0], RECORD * 3)
        assert wakes.wait_for(2)
    assert wakes.count == 2


def test_several_ready_nodes_are_drained_with_one_wake(tmp_path: Path, wakes: Wakes, nodes: list[int]) -> None:
    paths = [fifo(tmp_path, f"event{index}") for index in range(3)]
    blocked = threading.Event()

    def wake() -> None:
        wakes()
        blocked.wait(10)  # hold the thread: the next writes all land before its next poll

    with InputWake([str(tmp_path / "event*")], wake) as waker:
        assert waker.watching == 3
        nodes.extend(writer(path) for path in paths)
        os.write(nodes[0], RECORD)
        assert wakes.wait_for(1)
        for fd in nodes:
            os.write(fd, RECORD * 2)
        blocked.set()
        assert wakes.wait_for(2)
        time.sleep(0.3)
        assert wakes.count == 2  # three ready nodes, one wake
        assert waker.turns == 2  # and each was drained: no poll returned for leftovers
        assert waker.watching == 3


def test_a_node_that_hangs_up_is_dropped_without_spinning(tmp_path: Path, wakes: Wakes) -> None:
    gone, kept = fifo(tmp_path, "event0"), fifo(tmp_path, "event1")
    with InputWake([str(tmp_path / "event*")], wakes, rescan_s=600) as waker:
        assert waker.watching == 2
        keep = writer(kept)
        try:
            unplugged = writer(gone)
            os.write(unplugged, RECORD)
            os.close(unplugged)  # the reader now sees data, then end of file and POLLHUP for ever
            assert wakes.wait_for(1)
            assert eventually(lambda: waker.watching == 1)
            assert waker.paths == [str(kept)]
            turns = waker.turns
            time.sleep(0.5)
            assert waker.turns == turns  # a hung-up node left open would make poll return at once, forever
            os.write(keep, RECORD)
            assert wakes.wait_for(2)
        finally:
            os.close(keep)
    assert wakes.count == 2


def test_a_node_that_hung_up_waits_for_the_next_rescan(tmp_path: Path, wakes: Wakes) -> None:
    path = fifo(tmp_path, "event0")
    with InputWake([str(tmp_path / "event*")], wakes, rescan_s=600) as waker:
        os.close(writer(path))  # a writer came and went: hang-up
        assert eventually(lambda: waker.watching == 0)
        time.sleep(0.3)
        assert waker.watching == 0 and waker.rescans == 1  # not reopened: the next rescan is 10 min away


def test_a_new_node_is_picked_up_on_rescan(tmp_path: Path, wakes: Wakes) -> None:
    with InputWake([str(tmp_path / "event*")], wakes, rescan_s=0.05) as waker:
        assert waker.watching == 0
        path = fifo(tmp_path, "event3")  # plugged in after start
        assert eventually(lambda: waker.watching == 1)
        fd = writer(path)
        try:
            os.write(fd, RECORD)
            assert wakes.wait_for(1)
        finally:
            os.close(fd)


def test_stop_joins_promptly_while_the_thread_waits(tmp_path: Path, wakes: Wakes) -> None:
    fifo(tmp_path, "event0")
    waker = InputWake([str(tmp_path / "event*")], wakes, rescan_s=3600).start()
    thread = waker._thread
    assert thread is not None and thread.is_alive()
    stopper = threading.Thread(target=waker.stop)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive() and not thread.is_alive()  # an hour-long wait ended by the stop pipe
    assert waker.watching == 0 and wakes.count == 0
    waker.stop()  # twice is harmless


def test_nodes_that_cannot_be_opened_are_skipped_and_logged_once(
    tmp_path: Path, wakes: Wakes, caplog: pytest.LogCaptureFixture
) -> None:
    good = fifo(tmp_path, "event0")
    (tmp_path / "event1").mkdir()  # opens, but is no device
    locked = tmp_path / "event2"
    locked.write_bytes(b"")
    locked.chmod(0)
    if os.access(locked, os.R_OK):
        locked.unlink()  # root reads anything: no permission case here, the rest still holds
    caplog.set_level(logging.INFO, logger="kiosk_app.ui.input_wake")
    with InputWake([str(tmp_path / "event*"), str(tmp_path / "none*")], wakes, rescan_s=0.05) as waker:
        assert waker.paths == [str(good)]
        assert eventually(lambda: waker.rescans >= 4)
        assert waker.watching == 1
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert sum(str(tmp_path / "event1") in message for message in warnings) == 1  # once, not per rescan
    if locked.exists():
        [message] = [message for message in warnings if str(locked) in message]
        assert "'input' group" in message


def test_a_failing_wake_callback_does_not_stop_the_watch(tmp_path: Path, nodes: list[int]) -> None:
    path = fifo(tmp_path, "event0")
    calls: list[int] = []

    def wake() -> None:
        calls.append(1)
        raise RuntimeError("boom")

    with InputWake([str(path)], wake) as waker:
        nodes.append(writer(path))
        os.write(nodes[0], RECORD)
        assert eventually(lambda: len(calls) == 1)
        os.write(nodes[0], RECORD)
        assert eventually(lambda: len(calls) == 2)
        assert waker.watching == 1
