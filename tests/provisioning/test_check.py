"""`borne provision check`: each check on its own, the broker check against a real mosquitto with real
certificates (and a broker down, a wrong certificate, a device the ACL does not list), the model check
with the real model and with none, and the command's table, JSON and exit status."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_models.wer import word_error_rate
from provisioning.broker import FleetDevice
from provisioning.checks import (
    CHECKS,
    CheckContext,
    CheckResult,
    Outcome,
    check_broker,
    check_certificate,
    check_disk,
    check_display,
    check_microphone,
    check_model,
    check_settings,
    check_units,
    clock_result,
    run_check,
    run_checks,
    units_result,
)
from provisioning.enrol import install_certificate
from provisioning.pki import create_ca, sign_csr
from sync_agent.contract import ComponentState, Status
from tests.provisioning.helpers import DEVICE, SITE, borne, init_args
from tests.support.broker import Broker, TestPKI


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    return TestPKI(tmp_path / "pki")


@pytest.fixture
def broker(tmp_path: Path, pki: TestPKI) -> Iterator[Broker]:
    running = Broker(tmp_path / "broker", pki, [FleetDevice(SITE, DEVICE)]).start()
    try:
        yield running
    finally:
        running.stop()


def enrol_terminal(root: Path, pki: TestPKI, port: int, days: int = 825) -> Path:
    """A terminal enrolled as a technician does it: init (key + CSR), CSR signed by the fleet CA, install-cert."""
    result = borne(*init_args(root, broker=f"mqtts://127.0.0.1:{port}"))
    assert result.exit_code == 0, result.output
    csr = root / "etc/borne/tls/device.csr"
    signed = root.parent / "signed.crt"
    signed.write_bytes(sign_csr(pki.ca, csr.read_bytes(), days=days))
    install_certificate(root, signed, pki.ca_file)
    return root / "etc/borne/borne.toml"


@pytest.fixture
def config(tmp_path: Path, pki: TestPKI, broker: Broker) -> Path:
    return enrol_terminal(tmp_path / "root", pki, broker.port)


def retained_status(pki: TestPKI, broker: Broker) -> Status:
    """Read the device's retained Status as the platform does (ingest identity: the device may not read it)."""
    cert, key = pki.client("ingest")
    got: list[bytes] = []
    arrived = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="reader", protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(pki.ca_file), certfile=str(cert), keyfile=str(key))

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        got.append(bytes(message.payload))
        arrived.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(f"borne/v1/{SITE}/{DEVICE}/status", qos=1)
    client.connect(broker.host, broker.platform_port)
    client.loop_start()
    try:
        assert arrived.wait(10), "no retained Status on the broker"
    finally:
        client.disconnect()
        client.loop_stop()
    return Status.model_validate_json(got[0])


# -- broker, against a real mosquitto ---------------------------------------------------------------


def test_broker_check_passes_and_leaves_a_retained_status(config: Path, pki: TestPKI, broker: Broker) -> None:
    ctx = CheckContext(config=config)
    ctx.results["model"] = CheckResult("model", Outcome.PASS, "transcribed")
    ctx.results["microphone"] = CheckResult("microphone", Outcome.FAIL, "none")
    result = check_broker(ctx)
    assert result.outcome == Outcome.PASS, result
    assert f"retained Status acknowledged on borne/v1/{SITE}/{DEVICE}/status" in result.detail
    assert "read back" in result.detail
    assert "no configuration published by the platform yet" in result.detail
    status = retained_status(pki, broker)
    assert (status.site_id, status.device_id, status.state) == (SITE, DEVICE, "online")
    assert abs((datetime.now(UTC) - status.sent_at).total_seconds()) < 600
    assert (status.model, status.microphone) == (ComponentState.OK, ComponentState.FAILED)
    assert check_certificate(ctx).outcome == Outcome.PASS


def test_broker_down_fails_the_broker_line(config: Path, broker: Broker) -> None:
    broker.stop()
    result = check_broker(CheckContext(config=config, broker_timeout_s=5))
    assert result.outcome == Outcome.FAIL
    assert f"cannot reach the broker at 127.0.0.1:{broker.port}" in result.detail
    assert "that the broker runs" in result.fix


def test_certificate_from_another_ca_fails_the_broker_line(config: Path, pki: TestPKI, broker: Broker) -> None:
    rogue_cert, rogue_key = pki.client("rogue-" + DEVICE, ca=create_ca("Rogue CA"))
    tls = config.parent / "tls"
    shutil.copyfile(rogue_cert, tls / "device.crt")
    shutil.copyfile(rogue_key, tls / "device.key")
    ctx = CheckContext(config=config, broker_timeout_s=5)
    result = check_broker(ctx)
    assert result.outcome == Outcome.FAIL, result
    assert "does not accept this device's certificate" in result.detail
    assert "signed by the fleet CA the broker trusts" in result.fix
    certificate = check_certificate(ctx)
    assert certificate.outcome == Outcome.FAIL and "is not signed by the fleet CA" in certificate.detail


def test_device_missing_from_the_acl_fails_the_broker_line(tmp_path: Path, pki: TestPKI) -> None:
    other = Broker(tmp_path / "other-broker", pki, [FleetDevice(SITE, "borne-z")]).start()
    try:
        config = enrol_terminal(tmp_path / "root", pki, other.port)
        result = check_broker(CheckContext(config=config, broker_timeout_s=5))
    finally:
        other.stop()
    assert result.outcome == Outcome.FAIL
    assert "refused the Status" in result.detail and "Not authorized" in result.detail
    assert "fleet broker-config" in result.fix


def test_certificate_check_names_the_csr_waiting_for_signature(tmp_path: Path) -> None:
    assert borne(*init_args(tmp_path / "root")).exit_code == 0
    result = check_certificate(CheckContext(config=tmp_path / "root/etc/borne/borne.toml"))
    assert result.outcome == Outcome.FAIL
    assert "its CSR waits at" in result.detail and "fleet sign" in result.fix


def test_a_certificate_expiring_within_30_days_warns_with_the_renewal_steps(tmp_path: Path, pki: TestPKI) -> None:
    config = enrol_terminal(tmp_path / "root", pki, 8883, days=10)
    result = check_certificate(CheckContext(config=config))
    assert result.outcome == Outcome.WARN, result
    assert "expires in 9 days" in result.detail or "expires in 10 days" in result.detail
    csr = config.parent / "tls/device.csr"
    assert f"carry {csr}" in result.fix and "borne provision fleet sign" in result.fix
    assert f"install-cert --cert {DEVICE}.crt" in result.fix and "restart borne-sync" in result.fix
    # The command passes (exit 0) and says so in its table and its summary.
    shown = borne(
        "provision",
        "check",
        "--config",
        config,
        *[a for n in CHECKS if n not in ("settings", "certificate") for a in ("--skip", n)],
    )
    assert shown.exit_code == 0, shown.output
    assert "certificate  WARN" in shown.output and "fix: renew it before" in shown.output
    assert "OK: 1 passed, 1 to act on soon (WARN), 0 failed" in shown.output
    as_json = json.loads(
        borne(
            "provision",
            "check",
            "--config",
            config,
            "--json",
            *[a for n in CHECKS if n != "certificate" for a in ("--skip", n)],
        ).output
    )
    assert as_json["ok"] and [c["result"] for c in as_json["checks"] if c["name"] == "certificate"] == ["warn"]


def test_an_expired_certificate_fails_with_the_renewal_steps(tmp_path: Path, pki: TestPKI) -> None:
    config = enrol_terminal(tmp_path / "root", pki, 8883)  # 825 days
    now = datetime.now(UTC)
    for days, outcome in ((700, Outcome.PASS), (800, Outcome.WARN), (826, Outcome.FAIL)):
        result = check_certificate(CheckContext(config=config, now=lambda days=days: now + timedelta(days=days)))
        assert result.outcome == outcome, (days, result)
    assert "expired on" in result.detail and "the broker refuses this terminal" in result.detail
    assert "borne provision fleet sign" in result.fix and "install-cert" in result.fix
    (config.parent / "tls/device.csr").unlink()  # a certificate made elsewhere: no CSR to sign again
    result = check_certificate(CheckContext(config=config, now=lambda: now + timedelta(days=826)))
    assert result.outcome == Outcome.FAIL and "no CSR at" in result.fix and "provision init --force" in result.fix


# -- model -------------------------------------------------------------------------------------------


def test_missing_model_fails_the_model_line(config: Path) -> None:
    result = check_model(CheckContext(config=config))
    assert result.outcome == Outcome.FAIL
    assert "no model bundle at" in result.detail and "models install --from" in result.fix


@pytest.mark.slow
def test_real_model_transcribes_the_french_sample(config: Path, whisper_bundle: Path) -> None:
    config.write_text(
        config.read_text().replace(str(config.parents[2] / "var/lib/borne/models"), str(whisper_bundle.parent))
    )
    result = check_model(CheckContext(config=config))
    assert result.outcome == Outcome.PASS, result
    assert "heard" in result.detail and "word error rate" in result.detail
    assert "(4 files, int8 weights)" in result.detail


def test_word_error_rate_normalises_case_and_punctuation() -> None:
    assert word_error_rate("Le temps d'attente est évalué à", "le temps d'attente, est évalué à.") == 0.0
    assert word_error_rate("Le temps d'attente est évalué à", "le temps est à") == pytest.approx(3 / 7)


# -- microphone, display, clock, disk, units, settings --------------------------------------------------


def test_no_microphone_fails_with_a_fix(config: Path) -> None:
    result = check_microphone(CheckContext(config=config, microphone_device="no-such-microphone", listen_s=0.5))
    assert result.outcome == Outcome.FAIL
    assert "no microphone ('no-such-microphone')" in result.detail
    assert "arecord -l" in result.fix


def test_display_from_drm_connectors_or_a_display_server(tmp_path: Path) -> None:
    drm = tmp_path / "drm"
    for connector, state in (("card0-HDMI-A-1", "disconnected"), ("card0-DSI-1", "connected")):
        (drm / connector).mkdir(parents=True)
        (drm / connector / "status").write_text(state + "\n")
    found = check_display(CheckContext(drm_root=drm, environ={}))
    assert found.outcome == Outcome.PASS and found.detail == "connected: card0-DSI-1"
    (drm / "card0-DSI-1" / "status").write_text("disconnected\n")
    assert check_display(CheckContext(drm_root=drm, environ={})).outcome == Outcome.FAIL
    server = check_display(CheckContext(drm_root=drm, environ={"WAYLAND_DISPLAY": "wayland-0"}))
    assert server.outcome == Outcome.PASS and "WAYLAND_DISPLAY=wayland-0" in server.detail


def test_clock_verdicts() -> None:
    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert clock_result(0, "yes\n", now).outcome == Outcome.PASS
    unsynced = clock_result(0, "no", now)
    assert unsynced.outcome == Outcome.FAIL and "timedatectl set-ntp true" in unsynced.fix
    unknown = clock_result(1, "System has not been booted with systemd as init system (PID 1).", now)
    assert unknown.outcome == Outcome.FAIL and "unknown" in unknown.detail and "booted with systemd" in unknown.detail


def test_clock_check_runs_timedatectl() -> None:
    calls: list[list[str]] = []

    def run(args: object) -> tuple[int, str]:
        calls.append(list(args))  # type: ignore[call-overload]
        return 0, "yes"

    assert run_check("clock", CheckContext(run=run)).outcome == Outcome.PASS
    assert calls == [["timedatectl", "show", "-p", "NTPSynchronized", "--value"]]


def test_disk_threshold(config: Path) -> None:
    assert check_disk(CheckContext(config=config, min_free_bytes=1)).outcome == Outcome.PASS
    short = check_disk(CheckContext(config=config, min_free_bytes=10**18))
    assert short.outcome == Outcome.FAIL and "outbox purge" in short.fix


def test_units_verdicts(tmp_path: Path) -> None:
    good = {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled"}
    assert units_result({"borne-kiosk.service": good, "borne-sync.service": good}).outcome == Outcome.PASS
    verdict = units_result(
        {
            "borne-kiosk.service": {**good, "ActiveState": "failed"},
            "borne-sync.service": {"LoadState": "not-found", "ActiveState": "inactive"},
        }
    )
    assert verdict.outcome == Outcome.FAIL
    assert "borne-kiosk.service is failed" in verdict.detail and "borne-sync.service not installed" in verdict.detail
    assert "journalctl -u borne-kiosk.service" in verdict.fix and "borne provision install-units" in verdict.fix

    outputs = {
        "borne-kiosk.service": "LoadState=loaded\nActiveState=active\nUnitFileState=enabled",
        "borne-sync.service": "LoadState=loaded\nActiveState=active\nUnitFileState=disabled",
    }
    systemd = tmp_path / "run-systemd-system"
    systemd.mkdir()
    ctx = CheckContext(systemd_root=systemd, run=lambda args: (0, outputs[list(args)[-1]]))
    result = check_units(ctx)
    assert result.outcome == Outcome.FAIL and "systemctl enable borne-sync.service" in result.fix
    outside = check_units(CheckContext(systemd_root=tmp_path / "absent"))
    assert outside.outcome == Outcome.FAIL and "not running under systemd" in outside.detail


def test_bad_settings_fail_their_line_and_skip_the_checks_that_need_them(tmp_path: Path) -> None:
    config = tmp_path / "borne.toml"
    config.write_text('[device]\nsite_id = "fs/1"\n')
    results = {r.name: r for r in run_checks(CheckContext(config=config), skip=("clock", "units", "display"))}
    assert results["settings"].outcome == Outcome.FAIL and "device.site_id = 'fs/1'" in results["settings"].detail
    assert results["broker"].outcome == Outcome.SKIP and "settings do not load" in results["broker"].detail
    absent = check_settings(CheckContext(config=tmp_path / "nothing.toml"))
    assert absent.outcome == Outcome.FAIL and "not enrolled" in absent.detail and "provision init" in absent.fix


# -- the command ---------------------------------------------------------------------------------------


def test_command_prints_the_table_and_json_and_exits_nonzero_on_failure(config: Path) -> None:
    slow = ("--skip", "model", "--skip", "microphone")
    table = borne("provision", "check", "--config", config, *slow)
    assert table.exit_code == 1
    lines = table.output.splitlines()
    assert lines[0].split() == ["check", "result", "detail"]
    assert any(line.startswith("broker") and " pass " in line for line in lines)
    assert any(line.startswith("units") and " FAIL " in line for line in lines)  # no systemd here
    assert any("fix: run the check on the terminal booted normally" in line for line in lines)
    assert lines[-1].startswith("FAILED: ")

    as_json = borne("provision", "check", "--config", config, "--json", *slow)
    report = json.loads(as_json.output)
    assert as_json.exit_code == 1 and report["ok"] is False
    results = {check["name"]: check["result"] for check in report["checks"]}
    assert results["settings"] == results["disk"] == results["certificate"] == results["broker"] == "pass"
    assert results["model"] == results["microphone"] == "skip"

    only_passing = ("--skip", "clock", "--skip", "display", "--skip", "units")
    ok = borne("provision", "check", "--config", config, "--json", *slow, *only_passing)
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True


def test_a_crashing_check_fails_its_line_and_the_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provisioning import checks

    def broken(_ctx: CheckContext) -> CheckResult:
        raise RuntimeError("sysfs exploded")

    monkeypatch.setitem(checks.CHECKS, "display", broken)
    skips = ("settings", "disk", "clock", "certificate", "model", "microphone", "broker")
    results = {r.name: r for r in run_checks(CheckContext(systemd_root=tmp_path / "absent"), skip=skips)}
    assert results["display"].outcome == Outcome.FAIL
    assert "RuntimeError: sysfs exploded" in results["display"].detail
    assert results["units"].outcome == Outcome.FAIL and "not running under systemd" in results["units"].detail
