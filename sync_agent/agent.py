"""The sync agent: drains the outbox to the central broker and marks records acked on the platform's Ack.

One supervisor loop: connect (MQTT v5, TLS client certificate, persistent session), send the batches
left in flight by a previous run with their original ids, then keep up to `max_batches_in_flight`
batches out, oldest records first. A record is acknowledged only when an `Ack` naming it arrives on
`borne/v1/{site}/{device}/ack`; a batch with no Ack after `ack_timeout_s` is sent again with the same
batch id. Any failure closes the connection and the loop retries after an exponential back-off with
jitter. The paho network thread only queues messages; the outbox is touched from this loop alone.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import shutil
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import ValidationError

from borne_common.mqtt import BrokerConfigError, connect_client
from borne_common.systemd import notify, wait_alive
from sync_agent.contract import MAX_CONFIG_VERSION, Ack, Batch, ComponentState, DeviceConfig, Status, topic
from sync_agent.outbox import Outbox
from sync_agent.settings import SyncSettings

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15.0


class SyncError(Exception):
    """A failure of the link to the broker; the supervisor backs off and retries."""


class BrokerRefused(SyncError):
    """The broker answered but refused us (identity, ACL); retrying helps only once it is fixed."""


def backoff_delays(minimum: float, maximum: float, rng: random.Random) -> Callable[[], float]:
    """Exponential back-off with full jitter; call the result for the next wait."""
    attempt = 0

    def next_delay() -> float:
        nonlocal attempt
        ceiling = min(maximum, minimum * (2**attempt))
        attempt += 1
        return rng.uniform(minimum, max(minimum, ceiling))

    return next_delay


@dataclass
class DrainProgress:
    acked: int = 0
    rejected: int = 0
    batches_sent: int = 0
    resent: int = 0
    last_ack_at: datetime | None = None


@dataclass
class _Sent:
    batch: Batch
    deadline: float
    attempts: int = 1


MAX_ACK_WAIT_S = 600.0


@dataclass
class _Inbox:
    """What the network thread hands to the loop."""

    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    connected: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    refusal: str | None = None


class SyncAgent:
    def __init__(self, settings: SyncSettings, outbox: Outbox, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.outbox = outbox
        self.progress = DrainProgress()
        self._rng = rng or random.Random()  # noqa: S311 — jitter, not security
        device = settings.device
        self._topics = {
            kind: topic(device.site_id, device.device_id, kind) for kind in ("batch", "ack", "status", "config")
        }
        self._client: mqtt.Client | None = None
        self._inbox = _Inbox()
        self._sent: dict[uuid.UUID, _Sent] = {}
        self._last_status = 0.0
        self._config_version = _read_config_version(settings.device.device_config_path)

    # -- supervisor ---------------------------------------------------------------------------------

    def run(
        self, stop: threading.Event, *, once: bool = False, on_progress: Callable[[DrainProgress], Any] | None = None
    ) -> bool:
        """Drain until `stop` is set (or, with `once`, until nothing is left). True when nothing is left."""
        delay = backoff_delays(self.settings.sync.backoff_min_s, self.settings.sync.backoff_max_s, self._rng)
        notify("READY=1")  # store-and-forward: an unreachable broker is this loop's normal work, not a failed start
        while not stop.is_set():
            try:
                self._connect()
                delay = backoff_delays(self.settings.sync.backoff_min_s, self.settings.sync.backoff_max_s, self._rng)
                if self._serve(stop, once=once, on_progress=on_progress):
                    return True
            except (BrokerRefused, BrokerConfigError) as error:
                logger.error("%s", error)
            except (SyncError, OSError, ssl.SSLError) as error:
                logger.warning(
                    "link to broker %s:%d failed: %s",
                    self.settings.sync.broker_host,
                    self.settings.sync.broker_port,
                    error,
                )
            except Exception:
                logger.exception("sync loop failed; retrying")
            finally:
                self._disconnect()
            wait = delay()
            notify(f"STATUS=waiting {wait:.0f} s before reconnecting")
            wait_alive(stop, wait)
        return self._backlog() == 0

    # -- connection ---------------------------------------------------------------------------------

    def _connect(self) -> None:
        settings = self.settings
        inbox = _Inbox()
        self._inbox = inbox
        if settings.sync.tls:
            _check_files(settings)
        offline = self._status("offline")

        def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
            if reason.is_failure:
                inbox.refusal = str(reason)
                inbox.lost.set()
            else:
                inbox.connected.set()

        def on_disconnect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
            inbox.lost.set()

        def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            inbox.messages.put((message.topic, bytes(message.payload)))

        def prepare(client: mqtt.Client) -> None:
            client.on_connect = on_connect
            client.on_disconnect = on_disconnect
            client.on_message = on_message
            self._client = client  # stopped by _disconnect() even when connecting fails

        client = connect_client(
            settings.sync, settings.device.device_id, will=(self._topics["status"], offline.to_json()), prepare=prepare
        )
        client.loop_start()
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while not inbox.connected.is_set():
            if inbox.lost.is_set() or time.monotonic() > deadline:
                if inbox.refusal:
                    identity = (
                        f"the user name ([sync] username) and the password in {settings.sync.password_file}"
                        if settings.sync.username
                        else "that the device certificate ([sync] tls_cert) is signed by the fleet CA"
                    )
                    raise BrokerRefused(
                        f"broker {settings.sync.broker_host}:{settings.sync.broker_port} refused device "
                        f"{settings.device.device_id}: {inbox.refusal}; check {identity}, and that the broker's "
                        "ACL lists this device"
                    )
                raise SyncError("no CONNACK from the broker")
            time.sleep(0.01)
        for kind in ("ack", "config"):
            client.subscribe(self._topics[kind], qos=1)
        self._sent = {}
        self._publish_status()
        logger.info(
            "connected to %s:%d as %s", settings.sync.broker_host, settings.sync.broker_port, settings.device.device_id
        )

    def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected():
                client.disconnect()
        finally:
            client.loop_stop()

    # -- draining -----------------------------------------------------------------------------------

    def _serve(self, stop: threading.Event, *, once: bool, on_progress: Callable[[DrainProgress], Any] | None) -> bool:
        for unacknowledged in self.outbox.in_flight_batches(now=datetime.now(UTC)):
            self._send(unacknowledged, again=True)
        while not stop.is_set():
            if self._inbox.lost.is_set():
                raise SyncError("connection lost")
            while len(self._sent) < self.settings.sync.max_batches_in_flight:
                batch = self.outbox.claim_batch(
                    max_records=self.settings.sync.batch_max_records,
                    max_bytes=self.settings.sync.batch_max_bytes,
                    now=datetime.now(UTC),
                )
                if batch is None:
                    break
                self._send(batch)
            self._handle_messages(timeout=0.05)
            self._resend_expired()
            if time.monotonic() - self._last_status > self.settings.sync.status_interval_s:
                self._publish_status()
            notify("WATCHDOG=1")
            if on_progress:
                on_progress(self.progress)
            if once and not self._sent and self._backlog() == 0:
                self._publish_status()
                return True
        return False

    def _send(self, batch: Batch, *, again: bool = False) -> None:
        assert self._client is not None  # noqa: S101 — only called while connected
        info = self._client.publish(self._topics["batch"], batch.to_json(), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise SyncError(f"publish failed: {mqtt.error_string(info.rc)}")
        previous = self._sent.get(batch.batch_id)
        attempts = previous.attempts + 1 if previous else 1
        # Each re-send waits twice as long: a slow platform is not flooded with copies.
        wait = min(self.settings.sync.ack_timeout_s * 2 ** (attempts - 1), MAX_ACK_WAIT_S)
        self._sent[batch.batch_id] = _Sent(batch, time.monotonic() + wait, attempts)
        self.progress.batches_sent += 1
        self.progress.resent += again

    def _resend_expired(self) -> None:
        now = time.monotonic()
        for batch_id, sent in list(self._sent.items()):
            if now >= sent.deadline:
                logger.warning("no Ack for batch %s (sent %d time(s)); sending it again", batch_id, sent.attempts)
                self._send(sent.batch, again=True)

    def _handle_messages(self, timeout: float) -> None:
        try:
            first = self._inbox.messages.get(timeout=timeout)
        except queue.Empty:
            return
        pending = [first]
        while True:
            try:
                pending.append(self._inbox.messages.get_nowait())
            except queue.Empty:
                break
        for message_topic, payload in pending:
            if message_topic == self._topics["ack"]:
                self._on_ack(payload)
            elif message_topic == self._topics["config"]:
                self._on_config(payload)

    def _on_ack(self, payload: bytes) -> None:
        try:
            ack = Ack.model_validate_json(payload)
        except ValidationError as error:
            logger.warning(
                "ignored a malformed Ack (%d bytes): %s", len(payload), error.errors(include_input=False)[:3]
            )
            return
        now = datetime.now(UTC)
        outcome = self.outbox.apply_ack(ack, now=now)
        for rejection in ack.rejected:
            logger.warning("platform rejected record %s: %s", rejection.record_id, rejection.reason)
        self.outbox.release_batch(ack.batch_id)  # whatever the Ack did not settle goes back to pending
        self._sent.pop(ack.batch_id, None)
        self.progress.acked += outcome.acked
        self.progress.rejected += outcome.rejected
        self.progress.last_ack_at = now

    def _on_config(self, payload: bytes) -> None:
        if not payload:
            return
        try:
            config = DeviceConfig.model_validate_json(payload)
        except ValidationError as error:
            logger.warning(
                "ignored an invalid DeviceConfig; keeping version %s: %s",
                self._config_version,
                error.errors(include_input=False)[:3],
            )
            return
        if self._config_version is not None and config.config_version <= self._config_version:
            return
        path = self.settings.device.device_config_path
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".new")
        temporary.write_text(config.to_json(), encoding="utf-8")
        temporary.replace(path)
        self._config_version = config.config_version
        logger.info("applied DeviceConfig version %d", config.config_version)

    # -- status -------------------------------------------------------------------------------------

    def _backlog(self) -> int:
        return self.outbox.stats(now=datetime.now(UTC)).backlog

    def _status(self, state: str) -> Status:
        now = datetime.now(UTC)
        stats = self.outbox.stats(now=now)
        kiosk = _read_kiosk_state(self.settings.device.kiosk_state_path)
        return Status(
            site_id=self.settings.device.site_id,
            device_id=self.settings.device.device_id,
            state="online" if state == "online" else "offline",
            backlog=stats.backlog,
            oldest_pending_age_s=stats.oldest_pending_age_s,
            last_ack_at=self.progress.last_ack_at,
            disk_free_bytes=shutil.disk_usage(self.outbox.path.parent).free,
            versions={"borne": version("borne")},
            microphone=kiosk.microphone,
            model=kiosk.model,
            technician_pin_failures=kiosk.pin_failures,
            config_version=kiosk.config_version,
            sent_at=now,
        )

    def _publish_status(self) -> None:
        if self._client is None:
            return
        self._client.publish(self._topics["status"], self._status("online").to_json(), qos=1, retain=True)
        self._last_status = time.monotonic()


def _check_files(settings: SyncSettings) -> None:
    for key in ("tls_ca", "tls_cert", "tls_key"):
        path = getattr(settings.sync, key)
        if path is not None and not Path(path).is_file():
            raise BrokerRefused(
                f"[sync] {key} = {path}: file not found; enrol the device (`borne provision init`) "
                "or point the setting at the right file"
            )


def _read_config_version(path: Path) -> int | None:
    try:
        return DeviceConfig.model_validate_json(path.read_bytes()).config_version
    except (OSError, ValidationError):
        return None


@dataclass(frozen=True)
class KioskState:
    microphone: ComponentState = ComponentState.UNKNOWN
    model: ComponentState = ComponentState.UNKNOWN
    pin_failures: int | None = None
    config_version: int | None = None


def _count(value: object, low: int, high: int) -> int | None:
    """`value` if it is an integer in [low, high] (JSON booleans are not), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def _read_kiosk_state(path: Path) -> KioskState:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return KioskState(
            ComponentState(raw.get("microphone", ComponentState.UNKNOWN)),
            ComponentState(raw.get("model", ComponentState.UNKNOWN)),
            _count(raw.get("technician_pin_failures"), 0, 2**31 - 1),
            _count(raw.get("config_version"), 1, MAX_CONFIG_VERSION),
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return KioskState()
