"""A TCP proxy on loopback that a test can cut and restore, to play a broken network link."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

from tests.support.broker import free_port


class LinkProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        self._target = (target_host, target_port)
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._dropped = threading.Event()
        self._listener = socket.create_server((self.host, self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Drop every open connection (the serving thread closes them) and refuse new ones."""
        self._up.clear()
        self._dropped.clear()
        self._dropped.wait(timeout=5)

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self.cut()
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _drop_all(self, selector: selectors.BaseSelector) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._dropped.set()

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        while not self._stop.is_set():
            if not self._up.is_set() and not self._dropped.is_set():
                self._drop_all(selector)
            try:
                events = selector.select(timeout=0.05)
            except (OSError, ValueError):
                return
            for key, _ in events:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._listener:
                    self._accept(selector)
                else:
                    self._forward(selector, sock, key.data)

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if not self._up.is_set():
            client.close()
            return
        try:
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            client.close()
            return
        with self._lock:
            self._pairs.append((client, upstream))
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)

    def _forward(self, selector: selectors.BaseSelector, source: socket.socket, sink: socket.socket) -> None:
        try:
            data = source.recv(65536)
            if data and self._up.is_set():
                sink.sendall(data)
                return
        except OSError:
            pass
        with self._lock:
            self._pairs = [pair for pair in self._pairs if source not in pair]
        for sock in (source, sink):
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(sock)
            sock.close()
