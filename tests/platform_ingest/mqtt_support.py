"""A terminal's MQTT side for the ingest integration tests, and ingest running in a thread."""

from __future__ import annotations

import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from platform_ingest.ingest.service import IngestService
from platform_ingest.settings import IngestSection
from platform_ingest.store import Store, open_store
from sync_agent.contract import Ack, Batch, topic
from tests.support.broker import Broker, TestPKI


class Device:
    """A terminal connected with its own certificate: publishes batches, collects the Acks it is sent."""

    def __init__(self, broker: Broker, pki: TestPKI, site: str, device: str) -> None:
        self.site, self.device = site, device
        self.acks: queue.Queue[Ack] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv5)
        cert, key = pki.client(device)
        self.client.tls_set(ca_certs=str(pki.ca_file), certfile=str(cert), keyfile=str(key))
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = lambda client, userdata, message: self.acks.put(
            Ack.model_validate_json(message.payload)
        )
        self.client.connect(broker.host, broker.port)
        # paho leaves Nagle on: each publish would wait ~40 ms for the broker's delayed ACK.
        self.client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        self.client.subscribe(topic(site, device, "ack"), qos=1)
        assert subscribed.wait(10), "device could not subscribe to its ack topic"

    def publish(self, batch: Batch | bytes, on_topic: str | None = None) -> None:
        payload = batch if isinstance(batch, bytes) else batch.to_json().encode()
        info = self.client.publish(on_topic or topic(self.site, self.device, "batch"), payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()

    def wait_acks(self, count: int, timeout: float = 20) -> list[Ack]:
        acks = []
        deadline = time.monotonic() + timeout
        while len(acks) < count:
            try:
                acks.append(self.acks.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"received {len(acks)} of {count} Acks") from None
        return acks

    def ack_for(self, batch_id: uuid.UUID, timeout: float = 20) -> Ack:
        deadline = time.monotonic() + timeout
        while True:
            try:
                ack = self.acks.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no Ack for batch {batch_id}") from None
            if ack.batch_id == batch_id:
                return ack

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def ingest_section(
    broker: Broker, pki: TestPKI, db: str, client_id: str = "ingest", **changes: object
) -> IngestSection:
    """Each consumer has its own certificate; here its client id is the certificate's name (ingest warns about that)."""
    cert, key = pki.client(client_id)
    values: dict[str, object] = {
        "broker_host": broker.host,
        "broker_port": broker.platform_port,
        "tls_ca": pki.ca_file,
        "tls_cert": cert,
        "tls_key": key,
        "client_id": client_id,
        "db": db,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
    }
    values.update(changes)
    return IngestSection.model_validate(values)


@contextmanager
def running_ingest(
    section: IngestSection, *, wait_subscribed: bool = True, store_factory: Callable[[], Store] | None = None
) -> Iterator[IngestService]:
    """Ingest consuming in a background thread until the block ends."""
    service = IngestService(section, store_factory or (lambda: open_store(section.db)))
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        if wait_subscribed:
            assert service.subscribed.wait(15), "ingest did not subscribe"
        yield service
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive(), "ingest did not stop"


def wait_until(condition: object, timeout: float = 20, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"
