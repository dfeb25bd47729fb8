"""The MQTT side of ingest: a persistent MQTT v5 session on shared subscriptions (the terminals' batches
and statuses), one message at a time.

- `clean_start=False` with a session expiry: while ingest is away the broker keeps its session and
  queues its share of the batches.
- `manual_ack=True`: the batch's PUBACK goes out only after the store committed and the broker
  acknowledged our `Ack` (QoS 1 on `borne/v1/{site}/{device}/ack`); a consumer killed at any point gets
  the batch again when it comes back, stores nothing twice and answers with `duplicates`.
- A message that still makes handling fail is dead-lettered and acknowledged once, never redelivered in
  a loop; a message the broker delivers again (`dup`) is counted for `borne ingest health`.
- Each terminal has a rate (`throttle.py`): over it, its batches are released unread and unacknowledged,
  so one terminal flooding slows only itself.
- Any failure (broker gone, database gone) ends the session; the loop waits (exponential backoff with
  jitter) and starts again. A broker that refuses us is reported with the cause and the fix.
- Under systemd (Type=notify): READY=1 once the loop runs, WATCHDOG=1 from the loop and while waiting to
  reconnect, STATUS= with what it is doing.
"""

from __future__ import annotations

import logging
import random
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.x509.oid import NameOID

from borne_common.mqtt import connect_client, tls_context
from borne_common.systemd import notify, wait_alive
from platform_ingest.ingest.consumer import handle
from platform_ingest.ingest.throttle import Throttle
from platform_ingest.settings import IngestSection
from platform_ingest.store import DeadLetter, Store, StoreError

logger = logging.getLogger(__name__)

BATCH_FILTER = "borne/v1/+/+/batch"
STATUS_FILTER = "borne/v1/+/+/status"
REDELIVERED = "redelivered"
DEAD_LETTER_COST = 100
"""Tokens of its terminal's rate a dead-lettered message costs: a terminal sending garbage within its
rate fills the dead letters at most one a second (by default), not a hundred."""
THROTTLE_REPORT_S = 60.0
RATE_LIMITED = "rate limited"
PURGE_EVERY_S = 24 * 3600.0  # dead letters older than [ingest] dead_letter_retention_days go this often


class ConnectionLost(Exception):
    """The broker connection ended while consuming."""


class BrokerRefused(Exception):
    """The broker refused our connection or subscription; the message says why and what to change."""


def shared_filter(group: str, kind_filter: str = BATCH_FILTER) -> str:
    return f"$share/{group}/{kind_filter}"


class Backoff:
    """Exponential backoff with jitter: each wait is drawn in [cap/2, cap], cap doubling up to `maximum`."""

    def __init__(self, minimum: float, maximum: float, rng: Callable[[], float] = random.random) -> None:
        self.minimum, self.maximum, self._rng = minimum, max(minimum, maximum), rng
        self._attempt = 0

    def next(self) -> float:
        cap = min(self.maximum, self.minimum * float(2**self._attempt))
        self._attempt = min(self._attempt + 1, 32)
        return cap / 2 + self._rng() * cap / 2

    def reset(self) -> None:
        self._attempt = 0


def describe_connection_error(error: BaseException, settings: IngestSection) -> str:
    """What went wrong connecting to the broker, and which setting to change."""
    where = f"{settings.broker_host}:{settings.broker_port}"
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"the broker at {where} presented a certificate we do not trust ({error.verify_message}); set "
            "[ingest] tls_ca to the CA that signed it and broker_host to a name the certificate holds"
        )
    if isinstance(error, ssl.SSLError):
        return (
            f"TLS handshake with {where} failed ({error.reason or error}); the broker likely refused our client "
            "certificate: [ingest] tls_cert must be issued by the CA in the broker's cafile"
        )
    if isinstance(error, ConnectionRefusedError):
        return f"nothing accepts connections at {where}; check [ingest] broker_host and broker_port, and the broker"
    if isinstance(error, ConnectionResetError):
        return (
            f"the broker at {where} closed the connection during setup; if it requires TLS, check [ingest] tls, "
            "and that tls_cert is issued by the CA the broker trusts"
        )
    return f"cannot reach the broker at {where}: {error}"


def describe_early_close(detail: str, settings: IngestSection) -> str:
    """The broker hung up before answering our CONNECT: most often it refused the client certificate."""
    return (
        f"the broker at {settings.broker_host}:{settings.broker_port} closed the connection before accepting "
        f"client {settings.client_id!r} ({detail}); it most likely refused our TLS client certificate: "
        "[ingest] tls_cert must be issued by the CA in the broker's cafile (also check broker_port and tls)"
    )


def describe_refusal(reason: Any, settings: IngestSection) -> str:
    """The CONNACK refusal `reason` as a sentence with the fix."""
    identity = settings.username or f"the certificate {settings.tls_cert}"
    return (
        f"the broker at {settings.broker_host}:{settings.broker_port} refused client {settings.client_id!r} "
        f"({reason}); it must know {identity} as an ingest identity: with Mosquitto, the certificate's common name "
        "(or user name) must be one of the platform's (`borne provision fleet broker-config --ingest NAME`: "
        "subscribe to the batches and statuses, publish the acks), or set [ingest] username/password"
    )


@dataclass
class _SessionState:
    connected: bool = False
    subscribed: bool = False
    failure: BaseException | None = None
    waiting_for_ack: dict[int, tuple[int, int]] = field(default_factory=dict)
    """Ack publish mid -> (batch message mid, qos): batches to acknowledge once the broker has their Ack."""


def _warn_if_client_id_is_guessable(settings: IngestSection) -> None:
    """Client ids are one namespace across Mosquitto's listeners, and on the terminals' listener Borne's
    broker makes a certificate's name its client id: a certificate forged with the fleet CA and named like
    our client id would take this consumer's session from there. The certificate's own name is the first
    guess; the platform's listener lets us give another."""
    if not (settings.tls and settings.tls_cert and settings.username is None):
        return
    try:
        certificate = x509.load_pem_x509_certificate(settings.tls_cert.read_bytes())
    except (OSError, ValueError):
        return  # tls_context() has reported an unreadable certificate already
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(names[0].value) if names else None
    if name is not None and name == settings.client_id:
        logger.warning(
            "[ingest] client_id is the certificate's name %r: anyone holding the fleet CA could connect to the "
            "terminals' listener with a certificate of that name and knock this consumer off; set an id nobody "
            "can guess, e.g. client_id = %r (keep it across restarts: the broker keeps the session under it)",
            name,
            f"{name}-{secrets.token_hex(6)}",
        )


class IngestService:
    """Consumes batches until `stop` is set; `store_factory` opens the store (again after a failure)."""

    def __init__(
        self,
        settings: IngestSection,
        store_factory: Callable[[], Store],
        *,
        on_ready: Callable[[Store], None] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._store_factory = store_factory
        self._on_ready = on_ready
        self._backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s, rng)
        self._tls = tls_context(settings, "ingest") if settings.tls else None  # BrokerConfigError: fatal at start
        _warn_if_client_id_is_guessable(settings)
        self.throttle = Throttle(settings.device_rate_per_s, settings.device_burst)
        self._next_throttle_report = 0.0
        self.handled = 0
        self._next_purge = 0.0  # time.monotonic() of the next dead-letter purge: the first session purges
        self.subscribed = threading.Event()
        """Set while the broker has confirmed our subscription (for readiness checks)."""

    def run(self, stop: threading.Event) -> None:
        """Connect, consume, reconnect after failures; return when `stop` is set."""
        store: Store | None = None
        # Settings and TLS files were checked in __init__: from here on a failure is retried, not fatal.
        notify("READY=1")
        try:
            while not stop.is_set():
                try:
                    if store is None:
                        store = self._store_factory()
                        if self._on_ready is not None:
                            self._on_ready(store)
                    self._session(store, stop)
                except StoreError as error:
                    logger.error("database problem, will reconnect: %s", error)
                    if store is not None:
                        _close_quietly(store)
                    store = None
                except BrokerRefused as error:
                    logger.error("%s", error)
                except ConnectionLost as error:
                    logger.warning("%s", error)
                except (OSError, ssl.SSLError) as error:
                    logger.error("%s", describe_connection_error(error, self.settings))
                except Exception:
                    logger.exception("ingest session failed; starting again")
                if not stop.is_set():
                    delay = self._backoff.next()
                    logger.info("reconnecting in %.1f s", delay)
                    notify(f"STATUS=reconnecting in {delay:.0f} s")
                    wait_alive(stop, delay)
        finally:
            if store is not None:
                _close_quietly(store)
        logger.info("ingest stopped after %d message(s)", self.handled)

    def _handle(self, client: mqtt.Client, store: Store, state: _SessionState) -> None:
        """Set the session's callbacks on `client` (before it connects)."""
        settings = self.settings
        subscription = shared_filter(settings.share_group)
        status_subscription = shared_filter(settings.share_group, STATUS_FILTER)

        def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
            if reason.is_failure:
                state.failure = BrokerRefused(describe_refusal(reason, settings))
                return
            state.connected = True
            self._backoff.reset()
            logger.info(
                "connected to %s:%s as %s (session present: %s)",
                settings.broker_host,
                settings.broker_port,
                settings.client_id,
                flags.session_present,
            )
            client.subscribe([(subscription, 1), (status_subscription, 1)])

        def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
            for reason in reasons:
                if reason.is_failure:
                    state.failure = BrokerRefused(
                        f"the broker refused the subscriptions {subscription} and {status_subscription} ({reason}); "
                        f"client {settings.client_id!r} must be one of the platform's identities "
                        "(`borne provision fleet broker-config --ingest NAME`), connected to the platform listener "
                        "([ingest] broker_port, 8884 by default) with a certificate from the platform CA"
                    )
                    return
            state.subscribed = True
            self.subscribed.set()
            logger.info("subscribed to %s and %s", subscription, status_subscription)
            notify(f"STATUS=consuming {subscription} on {settings.broker_host}:{settings.broker_port}")

        def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
            if state.failure is not None:
                return  # the session is ending; the broker will deliver this message again
            try:
                message_topic = message.topic
            except UnicodeDecodeError:
                message_topic = bytes(message._topic).decode("utf-8", "replace")
            payload = bytes(message.payload)
            if not self.throttle.allow(message_topic, len(payload)):
                client.ack(message.mid, message.qos)  # unacknowledged to the terminal: it sends it again later
                return
            try:
                if message.dup:  # the broker's second try: this consumer left before acknowledging it
                    store.count_event(message_topic, REDELIVERED)
                outcome = handle(message_topic, payload, store, max_payload_bytes=settings.max_payload_bytes)
                if outcome.dead_letter is not None:
                    self.throttle.charge(message_topic, DEAD_LETTER_COST)
            except StoreError as error:
                state.failure = error  # not acknowledged: delivered again once the store is back
                return
            except Exception as error:
                # handle() never raises on a payload; if a payload still makes it raise, it must not come
                # back again and again and stop ingest for every terminal: keep it and let it go.
                self._dead_letter_unforeseen(store, state, client, message, message_topic, payload, error)
                return
            try:
                self.handled += 1
                if outcome.ack is None or outcome.ack_topic is None:
                    client.ack(message.mid, message.qos)
                    return
                info = client.publish(outcome.ack_topic, outcome.ack.to_json(), qos=1)
                # The batch is released at the broker once the broker holds the Ack (see on_publish):
                # paho may queue the Ack behind others, and a PUBACK sent first could lose it.
                state.waiting_for_ack[info.mid] = (message.mid, message.qos)
            except Exception as error:
                # Not acknowledged: the session ends (see _session) and the broker delivers the message
                # again when this consumer reconnects.
                state.failure = error

        def on_publish(client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
            batch = state.waiting_for_ack.pop(mid, None)
            if batch is None:
                return
            if reason.is_failure:
                logger.warning("the broker refused an Ack (%s); the terminal will send that batch again", reason)
            client.ack(*batch)

        client.on_connect = on_connect
        client.on_publish = on_publish
        client.on_subscribe = on_subscribe
        client.on_message = on_message

    def _dead_letter_unforeseen(
        self,
        store: Store,
        state: _SessionState,
        client: mqtt.Client,
        message: mqtt.MQTTMessage,
        message_topic: str,
        payload: bytes,
        error: Exception,
    ) -> None:
        logger.exception("handling %d byte(s) from %r failed; dead-lettered", len(payload), message_topic[:200])
        try:
            store.add_dead_letter(DeadLetter(message_topic, payload, f"internal error ({type(error).__name__})"))
        except Exception as store_error:  # nowhere to keep it: not acknowledged, delivered again later
            state.failure = store_error
            return
        self.handled += 1
        client.ack(message.mid, message.qos)

    def _report_throttled(self, store: Store, *, now: float | None = None) -> None:
        """Once a minute, one dead letter per terminal that went over its rate (none for the others)."""
        now = time.monotonic() if now is None else now
        if now < self._next_throttle_report:
            return
        self._next_throttle_report = now + THROTTLE_REPORT_S
        for throttled in self.throttle.drain():
            reason = (
                f"{RATE_LIMITED}: {throttled.batches} batch(es), {throttled.payload_bytes} bytes, over "
                f"{self.settings.device_rate_per_s:g}/s (burst {self.settings.device_burst}) dropped "
                "unacknowledged; the terminal sends them again"
            )
            logger.warning("%s: %s", throttled.topic[:200], reason)
            store.add_dead_letter(DeadLetter(throttled.topic, b"", reason))

    def _session(self, store: Store, stop: threading.Event) -> None:
        settings = self.settings
        state = _SessionState()
        self.subscribed.clear()
        client = connect_client(
            settings,
            settings.client_id,
            tls=self._tls,
            manual_ack=True,
            section_name="ingest",
            prepare=lambda client: self._handle(client, store, state),
        )
        try:
            while not stop.is_set() and state.failure is None:
                notify("WATCHDOG=1")
                self._purge_dead_letters(store)
                self._report_throttled(store)
                code = client.loop(timeout=0.5)
                if code != mqtt.MQTT_ERR_SUCCESS and state.failure is None:
                    if not state.connected:
                        raise BrokerRefused(describe_early_close(mqtt.error_string(code), settings))
                    raise ConnectionLost(f"lost the broker connection ({mqtt.error_string(code)})")
        finally:
            self.subscribed.clear()
            if client.is_connected():
                client.disconnect()
                for _ in range(10):  # let the DISCONNECT (and any Ack still queued) go out
                    if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                        break
        if state.failure is not None:
            raise state.failure

    def _purge_dead_letters(self, store: Store) -> None:
        """Once a day, delete the dead letters older than the retention: they hold raw device payloads."""
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_EVERY_S
        before = datetime.now(UTC) - timedelta(days=self.settings.dead_letter_retention_days)
        purged = store.purge_dead_letters(before)
        if purged:
            logger.info("deleted %d dead letter(s) received before %s", purged, f"{before:%Y-%m-%d %H:%M} UTC")


def _close_quietly(store: Store) -> None:
    try:
        store.close()
    except Exception:
        logger.exception("closing the store failed")
