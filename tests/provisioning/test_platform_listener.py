"""The platform's rights exist only on the platform's listener, which trusts only the platform CA.

Whoever holds the fleet CA (every technician laptop doing `fleet sign`) can make a certificate named
like the platform without `fleet sign` (here with `cryptography`, as an attacker would): against the
real mosquitto, that certificate reaches the terminals' listener only, where it reads no other
terminal's batches, writes no ack and publishes no configuration.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from provisioning.broker import FleetDevice
from provisioning.local_broker import LocalBroker, LocalPKI
from provisioning.pki import issue
from sync_agent.contract import topic

A, B = FleetDevice("fs-1", "borne-a"), FleetDevice("fs-2", "borne-b")


@dataclass
class Probe:
    """An MQTT v5 client that keeps what the broker answered."""

    client: mqtt.Client
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    subacks: dict[int, list[str]] = field(default_factory=dict)
    pubacks: dict[int, str] = field(default_factory=dict)
    answered: threading.Condition = field(default_factory=threading.Condition)

    def subscribe(self, topic_filter: str) -> list[str]:
        _result, mid = self.client.subscribe(topic_filter, qos=1)
        return self._wait(self.subacks, mid)

    def publish(self, topic_name: str, payload: bytes, *, retain: bool = False) -> str:
        info = self.client.publish(topic_name, payload, qos=1, retain=retain)
        return self._wait(self.pubacks, info.mid)

    def _wait(self, answers: dict[int, Any], mid: int) -> Any:
        with self.answered:
            assert self.answered.wait_for(lambda: mid in answers, timeout=10), "the broker did not answer"
            return answers[mid]

    def received(self, seconds: float = 1.0) -> list[tuple[str, bytes, bool]]:
        time.sleep(seconds)
        return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    pki: LocalPKI,
    identity: str,
    port: int,
    cert: Path | None = None,
    key: Path | None = None,
    wait: float = 10,
    *,
    persistent: bool = False,
    client_id: str | None = None,
) -> Probe:
    """Connected with `identity`'s certificate (or `cert`/`key`) and `client_id` (default: the identity);
    `persistent`: resume or keep a session (clean start off, an hour's expiry), as ingest does."""
    if cert is None or key is None:
        cert, key = pki.client(identity)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or identity, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(pki.ca_file), certfile=str(cert), keyfile=str(key))
    probe = Probe(client)
    connected = threading.Event()

    def on_connect(_c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if not reason.is_failure:
            connected.set()

    def on_subscribe(_c: object, _u: object, mid: int, reasons: list[ReasonCode], _p: object) -> None:
        with probe.answered:
            probe.subacks[mid] = [str(reason) for reason in reasons]
            probe.answered.notify_all()

    def on_publish(_c: object, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        with probe.answered:
            probe.pubacks[mid] = str(reason)
            probe.answered.notify_all()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = lambda _c, _u, message: probe.messages.append((message.topic, message.payload, message.retain))
    properties = None
    if persistent:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=not persistent, properties=properties)
    client.loop_start()
    if not connected.wait(wait):
        client.loop_stop()
        raise ConnectionError(f"{identity} was not accepted on port {port}")
    return probe


def refused(pki: LocalPKI, identity: str, port: int, cert: Path | None = None, key: Path | None = None) -> bool:
    """True when the broker refuses the TLS handshake of this certificate on `port`."""
    try:
        probe = connect(pki, identity, port, cert, key, wait=3)
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    probe.close()
    return False


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    pki = LocalPKI(tmp_path / "pki")
    running = LocalBroker(tmp_path / "broker", pki, [A, B]).start()
    try:
        yield running
    finally:
        running.stop()


def test_a_fleet_ca_certificate_named_like_the_platform_gets_no_platform_right(
    broker: LocalBroker, tmp_path: Path
) -> None:
    pki = broker.pki
    forged = tmp_path / "forged"
    issue(pki.ca, "ingest").write(forged / "ingest.crt", forged / "ingest.key")  # no `fleet sign` check on the way
    cert, key = forged / "ingest.crt", forged / "ingest.key"
    assert refused(pki, "ingest", broker.platform_port, cert, key), "the platform listener took a fleet certificate"

    # On the terminals' listener the name "ingest" has no right at all.
    rogue = connect(pki, "ingest", broker.port, cert, key)
    assert rogue.subscribe(f"$share/ingest/{topic('+', '+', 'batch')}") == ["Not authorized"]
    assert rogue.subscribe(topic(B.site_id, B.device_id, "batch")) == ["Not authorized"]
    a = connect(pki, A.device_id, broker.port)
    assert a.subscribe(topic(A.site_id, A.device_id, "ack")) == ["Granted QoS 1"]
    assert a.subscribe(topic(A.site_id, A.device_id, "config")) == ["Granted QoS 1"]
    b = connect(pki, B.device_id, broker.port)
    # Accepted from its own terminal, and delivered to no one: the rogue is subscribed to nothing.
    assert b.publish(topic(B.site_id, B.device_id, "batch"), b"site 2's batch") == "No matching subscribers"
    assert rogue.publish(topic(A.site_id, A.device_id, "ack"), b"forged ack") == "Not authorized"
    assert (
        rogue.publish(topic(A.site_id, A.device_id, "config"), b'{"premium": "0899"}', retain=True) == "Not authorized"
    )
    assert rogue.received() == []
    assert a.received(0.2) == []
    rogue.close()
    a.close()
    again = connect(pki, A.device_id, broker.port)  # a retained configuration would come now
    again.subscribe(topic(A.site_id, A.device_id, "config"))
    assert again.received() == []
    again.close()
    b.close()


def test_a_forged_certificate_named_like_the_consumer_cannot_take_its_session(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """Client ids are one namespace across listeners. The terminals' listener makes a certificate's name its
    client id; the platform's lets the consumer give its own (`[ingest] client_id`): a fleet-CA certificate
    named `ingest` gets the client id `ingest`, not the consumer's, and knocks nothing off."""
    pki = broker.pki
    secret_id = "ingest-5f2c9a07b1e3"
    consumer = connect(pki, "ingest", broker.platform_port, persistent=True, client_id=secret_id)
    assert consumer.subscribe(f"$share/ingest/{topic('+', '+', 'batch')}") == ["Granted QoS 1"]
    issue(pki.ca, "ingest").write(tmp_path / "ingest.crt", tmp_path / "ingest.key")
    rogue = connect(pki, "ingest", broker.port, tmp_path / "ingest.crt", tmp_path / "ingest.key", persistent=True)
    # Even asking for the consumer's id on the terminals' listener gives the certificate's name.
    also = connect(pki, "ingest", broker.port, tmp_path / "ingest.crt", tmp_path / "ingest.key", client_id=secret_id)
    b = connect(pki, B.device_id, broker.port)
    assert b.publish(topic(B.site_id, B.device_id, "batch"), b"site 2's batch") == "Success"
    assert consumer.client.is_connected()
    assert consumer.received() == [(topic(B.site_id, B.device_id, "batch"), b"site 2's batch", False)]
    assert rogue.received(0.5) == [] and also.received(0.2) == []
    for probe in (rogue, also, b, consumer):
        probe.close()


def test_the_platform_certificate_works_on_the_platform_listener_only(broker: LocalBroker) -> None:
    pki = broker.pki
    assert refused(pki, "ingest", broker.port), "the terminals' listener took a platform-CA certificate"
    platform = connect(pki, "ingest", broker.platform_port)
    assert platform.subscribe(f"$share/ingest/{topic('+', '+', 'batch')}") == ["Granted QoS 1"]
    a = connect(pki, A.device_id, broker.port)
    a.subscribe(topic(A.site_id, A.device_id, "ack"))
    b = connect(pki, B.device_id, broker.port)
    assert b.publish(topic(B.site_id, B.device_id, "batch"), b"site 2's batch") == "Success"
    assert platform.publish(topic(A.site_id, A.device_id, "ack"), b"ack") == "Success"
    # Retained, for a terminal not subscribed yet.
    assert (
        platform.publish(topic(A.site_id, A.device_id, "config"), b'{"v": 1}', retain=True) == "No matching subscribers"
    )
    assert platform.received() == [(topic(B.site_id, B.device_id, "batch"), b"site 2's batch", False)]
    assert a.received(0.2) == [(topic(A.site_id, A.device_id, "ack"), b"ack", False)]
    a.subscribe(topic(A.site_id, A.device_id, "config"))
    assert a.received()[-1] == (topic(A.site_id, A.device_id, "config"), b'{"v": 1}', True)
    for probe in (platform, a, b):
        probe.close()


def test_a_device_certificate_is_refused_on_the_platform_listener(broker: LocalBroker) -> None:
    assert refused(broker.pki, A.device_id, broker.platform_port)
    assert not refused(broker.pki, A.device_id, broker.port)
    # A certificate of the platform CA whose name the broker does not list has no right there either.
    stranger = connect(broker.pki, "platform-x", broker.platform_port)
    assert stranger.publish(topic(A.site_id, A.device_id, "ack"), b"ack") == "Not authorized"
    stranger.close()
