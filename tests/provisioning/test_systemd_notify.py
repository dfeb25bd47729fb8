"""The units say Type=notify with a watchdog; these tests hold the processes to it. Each process runs for
real with NOTIFY_SOCKET pointing at a socket the test reads, as systemd would set it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.chain import Chain
from tests.support.broker import free_port

pytestmark = pytest.mark.slow
BORNE = str(Path(sys.executable).with_name("borne"))


class NotifySocket:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def collect(self, until: Callable[[list[str]], bool], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while not until(self.messages) and time.monotonic() < deadline:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return self.messages

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[Callable[[str], NotifySocket]]:
    made: list[NotifySocket] = []

    def make(name: str) -> NotifySocket:
        made.append(NotifySocket(tmp_path / f"{name}.notify"))
        return made[-1]

    yield make
    for sock in made:
        sock.close()


def _pythonpath() -> dict[str, str]:
    """PYTHONPATH passed on, so a checkout run with it (a worktree) runs its own code."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}


def stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def watchdogs(messages: list[str]) -> int:
    return messages.count("WATCHDOG=1")


def test_ingest_is_ready_and_pings_while_the_broker_is_away(
    tmp_path: Path, notify_socket: Callable[[str], NotifySocket]
) -> None:
    """READY=1 once the loop runs (no broker needed: reconnecting is its job), then WATCHDOG=1 while it
    waits between attempts, with a STATUS= saying so."""
    config = tmp_path / "ingest.toml"
    config.write_text(
        "[ingest]\n"
        f'broker_host = "127.0.0.1"\nbroker_port = {free_port()}\ntls = false\n'
        f'db = "sqlite:///{tmp_path / "ingest.db"}"\nreconnect_min_s = 2.0\nreconnect_max_s = 4.0\n'
    )
    listener = notify_socket("ingest")
    env = {"NOTIFY_SOCKET": str(listener.path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **_pythonpath()}
    process = subprocess.Popen([BORNE, "ingest", "run", "--config", str(config)], env=env, stderr=subprocess.PIPE)
    try:
        messages = listener.collect(lambda seen: watchdogs(seen) >= 2, timeout=60)
    finally:
        code = stop(process)
    assert messages[0] == "READY=1", messages
    assert any(message.startswith("STATUS=reconnecting in ") for message in messages), messages
    assert watchdogs(messages) >= 2, messages
    assert code == 0


def test_sync_and_ingest_notify_while_delivering(
    tmp_path: Path, notify_socket: Callable[[str], NotifySocket], monkeypatch: pytest.MonkeyPatch
) -> None:
    chain = Chain(tmp_path / "chain")
    try:
        chain.write_records(20)
        ingest, sync = notify_socket("ingest"), notify_socket("sync")
        monkeypatch.setenv("NOTIFY_SOCKET", str(ingest.path))
        chain.start_ingest()
        consuming = ingest.collect(lambda seen: any(m.startswith("STATUS=consuming") for m in seen), timeout=60)
        monkeypatch.setenv("NOTIFY_SOCKET", str(sync.path))
        chain.start_sync()
        chain.wait_until(chain.drained, timeout=90, what="the outbox to drain")
        sync_messages = sync.collect(lambda seen: watchdogs(seen) >= 3, timeout=30)
        ingest_messages = ingest.collect(lambda seen: watchdogs(seen) >= 3, timeout=30)
    finally:
        chain.stop()
    assert consuming[0] == "READY=1", consuming
    assert any(message.startswith("STATUS=consuming $share/") for message in ingest_messages), ingest_messages
    assert watchdogs(ingest_messages) >= 3
    assert sync_messages[0] == "READY=1", sync_messages
    assert watchdogs(sync_messages) >= 3
    chain.assert_store_matches_outbox()


def test_sync_is_ready_and_pings_while_the_broker_is_away(
    tmp_path: Path, notify_socket: Callable[[str], NotifySocket]
) -> None:
    """A terminal whose network is down is retrying, not failing to start: READY=1 at once, then
    WATCHDOG=1 while it waits between attempts."""
    config = tmp_path / "borne.toml"
    config.write_text(
        '[device]\nsite_id = "fs-23-01"\ndevice_id = "borne-a"\n'
        f'kiosk_state_path = "{tmp_path / "k.json"}"\n\n'
        f'[outbox]\npath = "{tmp_path / "outbox.db"}"\n\n'
        f'[sync]\nbroker_host = "127.0.0.1"\nbroker_port = {free_port()}\ntls = false\n'
        "backoff_min_s = 0.2\nbackoff_max_s = 0.5\n"
        f'device_config_path = "{tmp_path / "device-config.json"}"\n'
    )
    listener = notify_socket("sync")
    env = {"NOTIFY_SOCKET": str(listener.path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **_pythonpath()}
    process = subprocess.Popen([BORNE, "sync", "--config", str(config)], env=env, stderr=subprocess.PIPE)
    try:
        messages = listener.collect(lambda seen: watchdogs(seen) >= 3, timeout=60)
    finally:
        stop(process)
    assert messages[0] == "READY=1", messages
    assert watchdogs(messages) >= 3, messages
    assert any(message.startswith("STATUS=waiting ") for message in messages), messages
