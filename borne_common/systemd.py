"""sd_notify without a dependency: READY=1, WATCHDOG=1, STATUS=...; a no-op outside systemd."""

from __future__ import annotations

import os
import socket
import threading
import time

WATCHDOG_PING_S = 5.0
"""Longest time between two WATCHDOG=1 while a service waits (the units' WatchdogSec are far longer)."""


def notify(message: str) -> bool:
    """Send `message` to systemd's notification socket; False when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


def wait_alive(stop: threading.Event, seconds: float) -> None:
    """Wait `seconds` (or until `stop`), telling systemd's watchdog every few seconds that the loop is alive."""
    deadline = time.monotonic() + seconds
    while not stop.is_set():
        notify("WATCHDOG=1")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        stop.wait(min(remaining, WATCHDOG_PING_S))
