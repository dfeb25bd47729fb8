"""`borne provision check`: the terminal's self-test, one small function per check.

Each check takes a `CheckContext` (the settings file, thresholds, and the few system facts it reads,
injectable for tests) and returns a `CheckResult`: pass, fail or skip, what was found, and for a
failure the fix. `run_checks` runs them in order; the CLI prints the table or JSON.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import shutil
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from borne_common.settings import DEFAULT_CONFIG_PATH, SettingsError
from kiosk_app.settings import KioskSettings
from provisioning.identity import IdentityError, common_name, read_pem, verify_identity
from provisioning.layout import free_space_path
from sync_agent.contract import ComponentState, DeviceConfig, Status, topic
from sync_agent.settings import SyncSettings

MODELS_FIX = "install the model bundle: borne provision models install --from /media/usb/whisper-base"
UNITS = ("borne-kiosk.service", "borne-sync.service")

logger = logging.getLogger(__name__)

Runner = Callable[[Sequence[str]], tuple[int, str]]
"""Runs a command, returns (exit status, stdout and stderr); 127 when the program is absent."""


def run_command(args: Sequence[str], timeout_s: float = 15.0) -> tuple[int, str]:
    try:
        done = subprocess.run(  # noqa: S603 — fixed system tools (timedatectl, systemctl)
            list(args), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError:
        return 127, f"{args[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"{args[0]}: no answer within {timeout_s:.0f} s"
    return done.returncode, (done.stdout + done.stderr).strip()


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 — a verdict, not a password
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: Outcome
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome == Outcome.FAIL

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "result": self.outcome.value, "detail": self.detail, "fix": self.fix}


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Outcome.PASS, detail)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Outcome.FAIL, detail, fix)


@dataclass
class CheckContext:
    """What the checks read: the settings file, thresholds and system facts (replaceable in tests)."""

    config: Path = DEFAULT_CONFIG_PATH
    min_free_bytes: int = 500 * 1000 * 1000
    microphone_device: str | None = None  # None: [kiosk] microphone_device, else the default input
    listen_s: float = 1.5
    min_level_dbfs: float = -75.0
    max_word_error_rate: float = 0.5
    broker_timeout_s: float = 10.0
    run: Runner = run_command
    drm_root: Path = Path("/sys/class/drm")
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    systemd_root: Path = Path("/run/systemd/system")
    results: dict[str, CheckResult] = field(default_factory=dict)
    _settings: tuple[SyncSettings, KioskSettings] | None = None

    def settings(self) -> tuple[SyncSettings, KioskSettings]:
        """Both device processes' settings from `config`; raises `SettingsError`."""
        if self._settings is None:
            self._settings = (SyncSettings.load(self.config), KioskSettings.load(self.config))
        return self._settings


class _NeedsSettings(Exception):
    pass


def _settings_or_skip(ctx: CheckContext) -> tuple[SyncSettings, KioskSettings]:
    try:
        return ctx.settings()
    except SettingsError:
        raise _NeedsSettings from None


# -- settings, disk, clock --------------------------------------------------------------------------


def check_settings(ctx: CheckContext) -> CheckResult:
    if not ctx.config.exists():
        return failed(
            "settings",
            f"{ctx.config} not found: this terminal is not enrolled",
            "enrol it: borne provision init --site ID --department NN --device-id ID --broker mqtts://HOST:PORT",
        )
    try:
        sync, _kiosk = ctx.settings()
    except SettingsError as error:
        return failed(
            "settings",
            " ".join(str(error).split()),
            f"correct the key named above in {ctx.config} (docs/settings.md lists every key)",
        )
    device = sync.device
    return passed(
        "settings",
        f"{ctx.config}: device {device.device_id} at site {device.site_id} ({device.department}), "
        f"broker {sync.sync.broker_host}:{sync.sync.broker_port}",
    )


def check_disk(ctx: CheckContext) -> CheckResult:
    sync, _ = _settings_or_skip(ctx)
    where = free_space_path(sync.outbox.path.parent)
    free = shutil.disk_usage(where).free
    detail = (
        f"{free / 1e6:.0f} MB free on the outbox's filesystem ({where}); at least {ctx.min_free_bytes / 1e6:.0f} MB"
    )
    if free < ctx.min_free_bytes:
        return failed(
            "disk",
            detail + " needed",
            "free space: `borne outbox purge`, `journalctl --vacuum-size=100M`, or use a larger SD card",
        )
    return passed("disk", detail + " wanted")


def clock_result(status: int, output: str, now: datetime) -> CheckResult:
    """Decide from `timedatectl show -p NTPSynchronized --value`'s exit status and output."""
    stamp = f"{now:%Y-%m-%d %H:%M:%S} UTC"
    answer = output.strip().lower()
    if status == 0 and answer == "yes":
        return passed("clock", f"synchronised by NTP (now {stamp})")
    if status == 0 and answer == "no":
        return failed(
            "clock",
            f"not synchronised by NTP (now {stamp}); certificates and record hours depend on it",
            "let the terminal reach an NTP server (UDP 123), run `timedatectl set-ntp true`, "
            "wait a minute, check again",
        )
    reason = " ".join(output.split())[:160] or f"exit status {status}"
    return failed(
        "clock",
        f"synchronisation unknown: timedatectl could not tell ({reason}); now {stamp}",
        "run the check on the terminal booted with systemd, "
        "with systemd-timesyncd enabled (`timedatectl set-ntp true`)",
    )


def check_clock(ctx: CheckContext) -> CheckResult:
    status, output = ctx.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    return clock_result(status, output, datetime.now(UTC))


# -- TLS identity -----------------------------------------------------------------------------------


def check_certificate(ctx: CheckContext) -> CheckResult:
    sync, _ = _settings_or_skip(ctx)
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
    try:
        identity = verify_identity(
            key_pem=read_pem(section.tls_key, "device key"),
            cert_pem=read_pem(section.tls_cert, "device certificate"),
            ca_pem=read_pem(section.tls_ca, "fleet CA certificate"),
            device_id=sync.device.device_id,
            where={"key": str(section.tls_key), "cert": str(section.tls_cert), "ca": str(section.tls_ca)},
        )
    except IdentityError as error:
        return failed("certificate", error.problem, error.fix)
    certificate = identity.certificate
    return passed(
        "certificate",
        f"{section.tls_cert}: CN {identity.common_name}, signed by {common_name(certificate.issuer)}, "
        f"valid until {certificate.not_valid_after_utc:%Y-%m-%d}",
    )


# -- speech model -----------------------------------------------------------------------------------


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate with the speech fixtures' normalisation (numbers spelled out when num2words is there)."""
    from bench.wer import edit_distance, normalize

    try:
        ref, hyp = normalize(reference), normalize(hypothesis)
    except ImportError:  # num2words (a dev dependency) spells digits; without it, digits stay words
        import re

        def plain(text: str) -> list[str]:
            return re.sub(r"[^\w]+", " ", text.lower().replace("_", " ")).split()

        ref, hyp = plain(reference), plain(hypothesis)
    return edit_distance(ref, hyp) / len(ref) if ref else 0.0


def check_model(ctx: CheckContext) -> CheckResult:
    from edge_models.bundles import BundleError, verify_bundle
    from edge_models.samples import FRENCH_SAMPLE, FRENCH_SAMPLE_TEXT

    _, kiosk = _settings_or_skip(ctx)
    options = kiosk.voice
    bundle = options.model_dir
    try:
        manifest = verify_bundle(bundle, full=True)
    except BundleError as error:
        return failed("model", error.problem, MODELS_FIX)
    try:
        from edge_models.asr import WhisperTranscriber
        from edge_models.audio import WavFileSource
        from edge_models.pipeline import VoiceSession
        from edge_models.vad import SileroVad

        transcriber = WhisperTranscriber(bundle, options, verify=False)
        session = VoiceSession.of(WavFileSource(FRENCH_SAMPLE), transcriber, options, vad=SileroVad())
        text = session.run().text
    except (RuntimeError, ImportError, OSError, ValueError) as error:
        return failed(
            "model",
            f"bundle {bundle} verified but the model does not run: {error}",
            "install the voice extra (pip install 'borne[voice]') and reinstall the bundle: " + MODELS_FIX,
        )
    rate = word_error_rate(FRENCH_SAMPLE_TEXT, text)
    stored = manifest.extra.get("weights", {}).get("stored", "as-shipped")
    heard = (
        f"{manifest.name} verified ({len(manifest.files)} files, {stored} weights); "
        f'heard "{text}" for "{FRENCH_SAMPLE_TEXT}"'
    )
    if rate > ctx.max_word_error_rate:
        return failed(
            "model",
            f"{heard}: word error rate {rate:.2f} above {ctx.max_word_error_rate:.2f}",
            "reinstall the bundle (" + MODELS_FIX + ") and check [voice] language = 'fr'",
        )
    return passed("model", f"{heard} (word error rate {rate:.2f})")


# -- microphone, display ----------------------------------------------------------------------------


def level_dbfs(samples: Any) -> tuple[float, float]:
    """(RMS, peak) of float samples in dB relative to full scale; -inf for digital silence."""
    import numpy as np

    if len(samples) == 0:
        return -math.inf, -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    peak = float(np.max(np.abs(samples)))
    return (20 * math.log10(rms) if rms > 0 else -math.inf), (20 * math.log10(peak) if peak > 0 else -math.inf)


def check_microphone(ctx: CheckContext) -> CheckResult:
    """Open the input device the kiosk uses and measure the level of a short read (kept in RAM, then zeroed)."""
    from edge_models.audio import SounddeviceSource, SourceState
    from edge_models.options import SAMPLE_RATE

    _, kiosk = _settings_or_skip(ctx)
    configured = ctx.microphone_device
    if configured is None:
        configured = str(getattr(kiosk.kiosk, "microphone_device", "") or "") or None
    device: int | str | None = int(configured) if configured is not None and configured.isdigit() else configured
    shown = repr(configured) if configured else "the default input"
    problems: list[str] = []

    def on_state(state: SourceState, detail: str) -> None:
        if state in (SourceState.NO_DEVICE, SourceState.DISCONNECTED):
            problems.append(detail or state.value)
            source.stop()

    source = SounddeviceSource(device, retry_s=0.2, on_state=on_state)
    timer = threading.Timer(ctx.listen_s + source.start_timeout_s + 5.0, source.stop)
    timer.start()
    wanted = round(ctx.listen_s * SAMPLE_RATE)
    blocks = []
    try:
        for block in source.blocks():
            blocks.append(block.copy())
            block.fill(0.0)
            if sum(len(b) for b in blocks) >= wanted:
                source.stop()
    finally:
        timer.cancel()
    if problems and not blocks:
        problem = problems[0]
        if "querying device -1" in problem:  # PortAudio's way of saying it has no input device at all
            problem = f"PortAudio finds no input device ({problem})"
        return failed(
            "microphone",
            f"no microphone ({shown}): {problem}",
            "plug in the USB microphone (`arecord -l` must list it); if it is not the default input, "
            "set [kiosk] microphone_device",
        )
    import numpy as np

    audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    rms, peak = level_dbfs(audio)
    audio.fill(0.0)
    for block in blocks:
        block.fill(0.0)
    heard = len(audio) / SAMPLE_RATE
    detail = f"{shown} at {source.capture_rate} Hz: level {rms:.0f} dBFS (peak {peak:.0f}) over {heard:.1f} s"
    if heard < ctx.listen_s * 0.5:
        return failed("microphone", f"{shown} delivered only {heard:.1f} s of audio", "replug the microphone")
    if rms < ctx.min_level_dbfs:
        return failed(
            "microphone",
            f"{detail}: it hears nothing",
            "unmute it and raise the capture level (`alsamixer`, F4 for capture), speak near it during the check",
        )
    return passed("microphone", detail)


def check_display(ctx: CheckContext) -> CheckResult:
    connected = []
    for status in sorted(ctx.drm_root.glob("card*-*/status")):
        try:
            if status.read_text().strip() == "connected":
                connected.append(status.parent.name)
        except OSError:
            continue
    if connected:
        return passed("display", f"connected: {', '.join(connected)}")
    for variable in ("WAYLAND_DISPLAY", "DISPLAY"):
        if ctx.environ.get(variable):
            return passed("display", f"display server {variable}={ctx.environ[variable]}")
    return failed(
        "display",
        f"no display: no connector under {ctx.drm_root} reports 'connected', "
        "and neither WAYLAND_DISPLAY nor DISPLAY is set",
        "connect the touchscreen (DSI ribbon or HDMI) and reboot; `cat /sys/class/drm/*/status` must say connected",
    )


# -- broker -----------------------------------------------------------------------------------------


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
    return ComponentState.OK if result.outcome == Outcome.PASS else ComponentState.FAILED


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

    sync, _ = _settings_or_skip(ctx)
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


# -- systemd ----------------------------------------------------------------------------------------


def units_result(states: Mapping[str, Mapping[str, str]]) -> CheckResult:
    """Decide from `systemctl show -p LoadState,ActiveState,UnitFileState` per unit."""
    problems, fixes = [], []
    for unit, state in states.items():
        if state.get("LoadState") != "loaded":
            problems.append(f"{unit} not installed")
            fixes.append("borne provision install-units")
        elif state.get("ActiveState") != "active":
            problems.append(f"{unit} is {state.get('ActiveState', 'unknown')}")
            fixes.append(f"systemctl start {unit}; `journalctl -u {unit} -b` says why it stopped")
        elif state.get("UnitFileState") != "enabled":
            problems.append(
                f"{unit} is active but {state.get('UnitFileState', 'not enabled')} (will not start at boot)"
            )
            fixes.append(f"systemctl enable {unit}")
    if problems:
        return failed("units", "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    return passed("units", ", ".join(states) + ": active and enabled")


def check_units(ctx: CheckContext) -> CheckResult:
    if not ctx.systemd_root.is_dir():
        return failed(
            "units",
            f"not running under systemd ({ctx.systemd_root} is absent), so the services cannot be checked",
            "run the check on the terminal booted normally; in a container or chroot pass --skip units",
        )
    states: dict[str, dict[str, str]] = {}
    for unit in UNITS:
        status, output = ctx.run(["systemctl", "show", "-p", "LoadState,ActiveState,UnitFileState", unit])
        if status != 0:
            return failed("units", f"systemctl failed: {' '.join(output.split())[:160]}", "check systemd is running")
        states[unit] = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    return units_result(states)


# -- running ----------------------------------------------------------------------------------------

CHECKS: dict[str, Callable[[CheckContext], CheckResult]] = {
    "settings": check_settings,
    "disk": check_disk,
    "clock": check_clock,
    "certificate": check_certificate,
    "model": check_model,
    "microphone": check_microphone,
    "display": check_display,
    "broker": check_broker,
    "units": check_units,
}


def run_check(name: str, ctx: CheckContext) -> CheckResult:
    """One check; a check that needs the settings is skipped when they do not load."""
    try:
        result = CHECKS[name](ctx)
    except _NeedsSettings:
        result = CheckResult(name, Outcome.SKIP, "not run: the settings do not load (see the settings line)")
    except Exception as error:  # one broken check must not hide the others' results
        logger.exception("check %s crashed", name)
        result = failed(
            name,
            f"the check itself failed: {type(error).__name__}: {error}",
            "install the voice extra if a module is missing (pip install 'borne[voice]'); "
            "otherwise report it with the output of `borne -v provision check`",
        )
    ctx.results[name] = result
    return result


def run_checks(
    ctx: CheckContext, skip: Sequence[str] = (), on_result: Callable[[CheckResult], None] | None = None
) -> list[CheckResult]:
    results = []
    for name in CHECKS:
        if name in skip:
            result = CheckResult(name, Outcome.SKIP, "skipped (--skip)")
            ctx.results[name] = result
        else:
            result = run_check(name, ctx)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def format_result(result: CheckResult, width: int = 12) -> str:
    mark = {Outcome.PASS: "pass", Outcome.FAIL: "FAIL", Outcome.SKIP: "skip"}[result.outcome]
    line = f"{result.name:<{width}} {mark:<6} {result.detail}"
    if result.fix:
        line += f"\n{'':<{width}} {'':<6} fix: {result.fix}"
    return line


def summary(results: Sequence[CheckResult]) -> str:
    counts = {outcome: sum(r.outcome == outcome for r in results) for outcome in Outcome}
    verdict = "FAILED" if counts[Outcome.FAIL] else "OK"
    return f"{verdict}: {counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} failed, {counts[Outcome.SKIP]} skipped"


__all__ = [
    "CHECKS",
    "CheckContext",
    "CheckResult",
    "Outcome",
    "check_broker",
    "check_certificate",
    "check_clock",
    "check_disk",
    "check_display",
    "check_microphone",
    "check_model",
    "check_settings",
    "check_units",
    "clock_result",
    "format_result",
    "run_check",
    "run_checks",
    "summary",
    "units_result",
    "word_error_rate",
]
