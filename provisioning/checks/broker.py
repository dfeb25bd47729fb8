"""The broker checks: the device's TLS identity, and a round trip to the broker with it."""

from __future__ import annotations

import logging
import queue
import shutil
import socket
import sqlite3
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from provisioning.checks.runner import (
    CheckContext,
    CheckResult,
    Outcome,
    failed,
    passed,
    settings_or_skip,
    warned,
)
from provisioning.identity import CertificateExpired, IdentityError, common_name, read_pem, verify_identity
from provisioning.layout import free_space_path
from sync_agent.contract import ComponentState, DeviceConfig, Status, topic
from sync_agent.settings import SyncSettings

logger = logging.getLogger(__name__)


def check_certificate(ctx: CheckContext) -> CheckResult:
    sync, _ = settings_or_skip(ctx)
    section = sync.sync
    if not section.tls:
        return failed("certificate", "[sync] tls = false: records would cross the network in clear", "set tls = true")
    if section.tls_cert is None or section.tls_key is None:
        return passed("certificate", f"no client certificate: logs in as user {section.username!r} over TLS")
    if not section.tls_cert.exists():
        csr = section.tls_cert.with_name("device.csr")
        waiting = f"; its CSR waits at {csr}" if csr.exists() else ""
        return failed(
            "certificate",
            f"no device certificate at {section.tls_cert}{waiting}",
            f"sign the CSR on the fleet side (`borne provision fleet sign --ca-dir CA {csr.name}`), "
            "then `borne provision install-cert --cert DEVICE.crt --ca ca.crt`",
        )
    now = ctx.now()
    renewal = renewal_steps(section.tls_cert, sync.device.device_id)
    try:
        identity = verify_identity(
            key_pem=read_pem(section.tls_key, "device key"),
            cert_pem=read_pem(section.tls_cert, "device certificate"),
            ca_pem=read_pem(section.tls_ca, "fleet CA certificate"),
            device_id=sync.device.device_id,
            where={"key": str(section.tls_key), "cert": str(section.tls_cert), "ca": str(section.tls_ca)},
            now=now,
        )
    except IdentityError as error:
        if isinstance(error, CertificateExpired):
            return failed(
                "certificate", f"{error.problem}: the broker refuses this terminal, records wait in the outbox", renewal
            )
        return failed("certificate", error.problem, error.fix)
    certificate = identity.certificate
    until = certificate.not_valid_after_utc
    detail = (
        f"{section.tls_cert}: CN {identity.common_name}, signed by {common_name(certificate.issuer)}, "
        f"valid until {until:%Y-%m-%d}"
    )
    left = until - now
    if left < timedelta(days=ctx.certificate_warn_days):
        days = max(0, left.days)
        return warned(
            "certificate",
            f"{detail}: expires in {days} day{'s' if days != 1 else ''} (the broker refuses it from then on)",
            f"renew it before {until:%Y-%m-%d}: {renewal}",
        )
    return passed("certificate", detail)


def renewal_steps(cert: Path, device_id: str) -> str:
    """How a terminal's certificate is renewed: its CSR (the same key) signed again by the fleet CA, or
    without a CSR on the terminal (a certificate made elsewhere), a new key and CSR."""
    csr = cert.with_name("device.csr")
    if not csr.exists():
        return (
            f"there is no CSR at {csr}: make a new key and CSR with `sudo borne provision init --force` (same "
            "arguments as the first time), have it signed with `borne provision fleet sign`, install it with "
            '`sudo borne provision install-cert` and restart borne-sync (docs/technician.md, "Renewing a certificate")'
        )
    return (
        f"carry {csr} (no secret in it) to the fleet operator, who signs it again: `borne provision fleet sign "
        f"--ca-dir fleet/ca --fleet fleet/fleet.csv device.csr`; back on the terminal `sudo borne provision "
        f"install-cert --cert {device_id}.crt`, then `sudo systemctl restart borne-sync` and check again "
        '(docs/technician.md, "Renewing a certificate")'
    )


def _backlog(outbox: Path) -> int:
    """Records not yet acknowledged, read without locks or side files (the services own the outbox)."""
    if not outbox.exists():
        return 0
    try:
        with sqlite3.connect(f"{outbox.as_uri()}?mode=ro&immutable=1", uri=True) as db:
            row = db.execute("SELECT count(*) FROM records WHERE state IN ('pending', 'in_flight')").fetchone()
        return int(row[0])
    except sqlite3.Error:
        return 0


def _state_from(result: CheckResult | None) -> ComponentState:
    if result is None or result.outcome == Outcome.SKIP:
        return ComponentState.UNKNOWN
    return ComponentState.OK if result.outcome in (Outcome.PASS, Outcome.WARN) else ComponentState.FAILED


def check_status(sync: SyncSettings, ctx: CheckContext) -> Status:
    """The Status this check publishes: what the sync agent would say, plus the model and microphone verdicts."""
    try:
        borne_version = version("borne")
    except PackageNotFoundError:
        borne_version = "unknown"
    return Status(
        site_id=sync.device.site_id,
        device_id=sync.device.device_id,
        state="online",
        backlog=_backlog(sync.outbox.path),
        disk_free_bytes=shutil.disk_usage(free_space_path(sync.outbox.path.parent)).free,
        versions={"borne": borne_version},
        microphone=_state_from(ctx.results.get("microphone")),
        model=_state_from(ctx.results.get("model")),
        sent_at=datetime.now(UTC),
    )


class _Probe:
    """One MQTT v5 session with the device's identity; the paho thread reports into these events."""

    def __init__(self) -> None:
        self.connack = threading.Event()
        self.connack_reason: str | None = None
        self.connack_failed = False
        self.lost = threading.Event()
        self.lost_reason = ""
        self.puback = threading.Event()
        self.puback_reason = ""
        self.puback_failed = False
        self.suback = threading.Event()
        self.suback_reasons: list[str] = []
        self.suback_failed = False
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()


def _wait(event: threading.Event, lost: threading.Event, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if event.wait(0.02):
            return True
        if lost.is_set():
            return event.is_set()
    return False


def check_broker(ctx: CheckContext) -> CheckResult:
    """Connect with the device's TLS identity as the sync agent does, publish a retained Status, read it back.

    The round trip: the broker's PUBACK for the retained Status (MQTT v5 reason code; a publish the broker
    refuses comes back "Not authorized"), granted subscriptions to the device's status, ack and config
    topics (provisioning/broker.py's dynamic-security rights), and the same Status delivered back as the
    retained message (a retained configuration is read and validated when the platform has published one).
    """
    from paho.mqtt.reasoncodes import ReasonCode

    from borne_common.mqtt import BrokerConfigError, connect_client

    sync, _ = settings_or_skip(ctx)
    section, device = sync.sync, sync.device
    where = f"{section.broker_host}:{section.broker_port}"
    topics = {kind: topic(device.site_id, device.device_id, kind) for kind in ("status", "ack", "config")}
    identity_fix = (
        "check that the device certificate ([sync] tls_cert) was signed by the fleet CA the broker trusts "
        "(`borne provision fleet sign`) and installed (`borne provision install-cert`)"
    )
    acl_fix = (
        f"add {device.site_id},{device.device_id} to the fleet CSV and regenerate the broker's rights "
        "(`borne provision fleet broker-config`), then restart the broker"
    )
    probe = _Probe()
    if section.tls:
        missing = [str(p) for p in (section.tls_ca, section.tls_cert, section.tls_key) if p and not p.is_file()]
        if missing:
            return failed("broker", f"not tried: {', '.join(missing)} missing", identity_fix)

    def on_connect(_c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        probe.connack_reason, probe.connack_failed = str(reason), reason.is_failure
        probe.connack.set()

    def on_disconnect(_c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        probe.lost_reason = str(reason)
        probe.lost.set()

    def on_publish(_c: object, _u: object, _mid: int, reason: ReasonCode, _p: object) -> None:
        probe.puback_reason, probe.puback_failed = str(reason), reason.is_failure
        probe.puback.set()

    def on_subscribe(_c: object, _u: object, _mid: int, reasons: list[ReasonCode], _p: object) -> None:
        probe.suback_reasons = [str(r) for r in reasons]
        probe.suback_failed = any(r.is_failure for r in reasons)
        probe.suback.set()

    def on_message(_c: object, _u: object, message: Any) -> None:
        probe.messages.put((str(message.topic), bytes(message.payload)))

    def callbacks(client: Any) -> None:
        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_subscribe = on_subscribe
        client.on_message = on_message

    try:
        # The broker forces every client id to its certificate name: this takes a running agent's connection
        # for the check's second (it reconnects and resends what was not acknowledged).
        client = connect_client(section, device.device_id, clean_start=True, keepalive_s=30, prepare=callbacks)
    except BrokerConfigError as error:
        return failed("broker", f"not tried: {error}", identity_fix)
    except ssl.SSLCertVerificationError as error:
        return failed(
            "broker",
            f"{where}: the broker's certificate is not trusted ({error.verify_message})",
            "install the fleet CA that signed the broker's certificate as [sync] tls_ca, "
            "and use the host name its certificate names",
        )
    except ssl.SSLError as error:
        return failed("broker", f"{where}: the TLS handshake failed ({error.reason or error})", identity_fix)
    except (socket.gaierror, ConnectionRefusedError, TimeoutError, OSError) as error:
        return failed(
            "broker",
            f"cannot reach the broker at {where} ({error.strerror or error})",
            "check the network, [sync] broker_host and broker_port, that the broker runs, "
            "and that the firewall lets TCP out to that port",
        )
    client.loop_start()
    try:
        if not _wait(probe.connack, probe.lost, ctx.broker_timeout_s):
            if probe.lost.is_set():
                why = "closed the connection before accepting the device: it does not accept this device's certificate"
            else:
                why = f"did not answer within {ctx.broker_timeout_s:.0f} s after the TLS handshake"
            return failed("broker", f"{where} {why}", identity_fix)
        if probe.connack_failed:
            return failed("broker", f"{where} refused device {device.device_id}: {probe.connack_reason}", identity_fix)
        status = check_status(sync, ctx)
        client.publish(topics["status"], status.to_json(), qos=1, retain=True)
        puback = _wait(probe.puback, probe.lost, ctx.broker_timeout_s)
        if probe.lost_reason == "Session taken over":
            return failed(
                "broker",
                f"{where} accepted device {device.device_id}, then gave its connection back to another client "
                "with the same certificate, most likely borne-sync (one connection per device)",
                "run the check again; if it happens again, stop borne-sync for the check "
                "(systemctl stop borne-sync; borne provision check; systemctl start borne-sync)",
            )
        if not puback:
            return failed("broker", f"{where}: no acknowledgement for the Status on {topics['status']}", acl_fix)
        if probe.puback_failed:
            return failed(
                "broker",
                f"{where} refused the Status on {topics['status']}: {probe.puback_reason} "
                "(the broker's rights do not list this device)",
                acl_fix,
            )
        client.subscribe([(topics["ack"], 1), (topics["config"], 1), (topics["status"], 1)])
        if not _wait(probe.suback, probe.lost, ctx.broker_timeout_s) or probe.suback_failed:
            reasons = ", ".join(probe.suback_reasons) or "no answer"
            return failed("broker", f"{where} refused the subscriptions to status, ack and config ({reasons})", acl_fix)
        retained = _retained(probe, ctx.broker_timeout_s)
        if retained.get(topics["status"]) != status.to_json().encode():
            return failed(
                "broker",
                f"{where}: the Status published on {topics['status']} did not come back as the retained message",
                "check that the broker keeps retained messages (persistence, retain_available) and that no "
                "other client with this device's identity publishes at the same time",
            )
        config_note = _config_note(retained.get(topics["config"]))
    finally:
        client.disconnect()
        client.loop_stop()
    return passed(
        "broker",
        f"{where} as {device.device_id} over TLS: retained Status acknowledged on {topics['status']} "
        f"({probe.puback_reason}) and read back; ack and config subscribed; {config_note}",
    )


def _retained(probe: _Probe, status_wait_s: float, config_wait_s: float = 0.5) -> dict[str, bytes]:
    """Retained messages delivered after subscribing, by topic: waits for the Status, then briefly for a config."""
    received: dict[str, bytes] = {}
    deadline = time.monotonic() + status_wait_s
    while time.monotonic() < deadline:
        try:
            where, payload = probe.messages.get(timeout=0.05)
        except queue.Empty:
            continue
        received[where] = payload
        if where.endswith("/status"):
            deadline = min(deadline, time.monotonic() + config_wait_s)
    return received


def _config_note(payload: bytes | None) -> str:
    if not payload:
        return "no configuration published by the platform yet (defaults apply)"
    try:
        return f"platform configuration version {DeviceConfig.model_validate_json(payload).config_version}"
    except ValueError:
        return "the platform's retained configuration is invalid (the terminal keeps its own)"
