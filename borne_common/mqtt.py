"""The one MQTT v5 client factory: the sync agent, the self-test and ingest connect through it.

`connect_client(section, client_id)` builds a paho client for a settings section that names a broker
(`[sync]` or `[ingest]`): MQTT v5, TLS with the section's CA and client certificate, user name and
password when the section has them, Nagle's algorithm off, and sends CONNECT. A persistent session
(`clean_start=False`, the default) asks the broker to keep it `session_expiry_s`. The caller's
callbacks are set by `prepare` before CONNECT: a broker that drops the connection during `connect()`
(a refused client certificate) is reported to `on_disconnect` then, not later.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

logger = logging.getLogger(__name__)


class BrokerConfigError(Exception):
    """TLS files the settings name cannot be loaded; the message names the section's keys."""


class BrokerSection(Protocol):
    """What a settings section gives to reach the broker (`[sync]`, `[ingest]`)."""

    @property
    def broker_host(self) -> str: ...
    @property
    def broker_port(self) -> int: ...
    @property
    def tls(self) -> bool: ...
    @property
    def tls_ca(self) -> Path | None: ...
    @property
    def tls_cert(self) -> Path | None: ...
    @property
    def tls_key(self) -> Path | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def keepalive_s(self) -> int: ...
    @property
    def session_expiry_s(self) -> int: ...

    def mqtt_password(self) -> str | None:
        """The password to log in with `username` (None: none)."""
        ...


def tls_context(section: BrokerSection, name: str) -> ssl.SSLContext:
    """The TLS context for the broker (CA, then the client certificate), or BrokerConfigError naming `[name]`'s
    bad key."""
    try:
        context = ssl.create_default_context(cafile=str(section.tls_ca) if section.tls_ca else None)
    except (OSError, ssl.SSLError) as error:
        raise BrokerConfigError(f"[{name}] tls_ca = {str(section.tls_ca)!r}: cannot load it ({error})") from None
    if section.tls_cert is not None:
        try:
            context.load_cert_chain(
                str(section.tls_cert), str(section.tls_key) if section.tls_key is not None else None
            )
        except (OSError, ssl.SSLError) as error:
            raise BrokerConfigError(
                f"[{name}] tls_cert = {str(section.tls_cert)!r}, tls_key = {str(section.tls_key)!r}: "
                f"cannot load the client certificate and key ({error})"
            ) from None
    return context


def connect_client(
    section: BrokerSection,
    client_id: str,
    *,
    tls: ssl.SSLContext | None = None,
    clean_start: bool = False,
    manual_ack: bool = False,
    will: tuple[str, str] | None = None,
    keepalive_s: int | None = None,
    section_name: str = "sync",
    prepare: Callable[[mqtt.Client], object] | None = None,
) -> mqtt.Client:
    """A paho MQTT v5 client for `section`'s broker with CONNECT sent; run its loop next.

    `prepare(client)` sets the callbacks before CONNECT is sent.
    `tls`: a context built once by the caller (default: `tls_context(section, section_name)` now, so
    renewed certificate files are read at each connection). `will`: (topic, payload) published retained
    with QoS 1 if the connection drops. `manual_ack`: the caller acknowledges each message itself.
    Raises BrokerConfigError for unloadable TLS files, OSError / ssl.SSLError when the broker cannot be
    reached or the handshake fails.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
        reconnect_on_failure=False,
    )
    if section.tls:
        client.tls_set_context(tls if tls is not None else tls_context(section, section_name))
    if section.username:
        client.username_pw_set(section.username, section.mqtt_password())
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    if prepare is not None:
        prepare(client)
    properties = None
    if not clean_start:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = section.session_expiry_s
    client.connect(
        section.broker_host,
        section.broker_port,
        keepalive=section.keepalive_s if keepalive_s is None else keepalive_s,
        clean_start=clean_start,
        properties=properties,
    )
    disable_nagle(client)
    return client


def disable_nagle(client: mqtt.Client) -> None:
    """Send each packet at once: paho leaves Nagle's algorithm on, which holds a small packet (a batch, an Ack,
    a PUBACK) until the previous one is acknowledged, up to the peer's delayed-ACK timer (40 ms on Linux)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):  # ssl.SSLSocket included
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            logger.debug("could not set TCP_NODELAY", exc_info=True)


__all__ = ["BrokerConfigError", "BrokerSection", "connect_client", "disable_nagle", "tls_context"]
