"""The sync agent against a real Mosquitto (TLS, client certificates, ACL) and a stand-in platform."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kiosk_app.flow import Identity
from kiosk_app.settings import KioskSection
from kiosk_app.simulate import simulate
from provisioning.broker import FleetDevice
from sync_agent.agent import SyncAgent
from sync_agent.contract import DeviceConfig, Status
from sync_agent.outbox import Outbox
from sync_agent.settings import SyncSettings
from tests.support.broker import Broker, TestPKI
from tests.support.platform import AckingPlatform

SITE, DEVICE, OTHER = "fs-23-01", "borne-a", "borne-b"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(tmp_path: Path, pki: TestPKI) -> Iterator[Broker]:
    running = Broker(tmp_path / "broker", pki, [FleetDevice(SITE, DEVICE), FleetDevice(SITE, OTHER)]).start()
    yield running
    running.stop()


def settings_for(tmp_path: Path, broker: Broker, device: str = DEVICE, **sync: object) -> SyncSettings:
    cert, key = broker.pki.client(device)
    return SyncSettings(
        device={
            "site_id": SITE,
            "device_id": device,
            "kiosk_state_path": tmp_path / "kiosk-state.json",
            "device_config_path": tmp_path / "device-config.json",
        },
        outbox={"path": tmp_path / f"{device}.db"},
        sync={
            "broker_host": broker.host,
            "broker_port": broker.port,
            "tls_ca": broker.pki.ca_file,
            "tls_cert": cert,
            "tls_key": key,
            "backoff_min_s": 0.05,
            "backoff_max_s": 0.5,
            **sync,
        },
    )


def fill(settings: SyncSettings, records: int, seed: int = 1) -> list[str]:
    with Outbox.open(settings.outbox.path) as box:
        simulate(
            KioskSection(),
            Identity(settings.device.site_id, settings.device.device_id, "0.1.0"),
            box,
            records=records,
            seed=seed,
            end=datetime.now().astimezone(),
        )
        return [str(record.record_id) for record in box.records()]


def drain(settings: SyncSettings, timeout: float = 60) -> tuple[bool, SyncAgent]:
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    try:
        with Outbox.open(settings.outbox.path) as box:
            agent = SyncAgent(settings, box)
            return agent.run(stop, once=True), agent
    finally:
        timer.cancel()


def states(settings: SyncSettings) -> dict[str, str | None]:
    with Outbox.open(settings.outbox.path) as box:
        return {str(record.record_id): box.state_of(record.record_id) for record in box.records()}


def test_drain_delivers_every_record_once_and_marks_it_acked(tmp_path: Path, broker: Broker) -> None:
    settings = settings_for(tmp_path, broker)
    written = fill(settings, 700)
    platform = AckingPlatform(broker)
    try:
        drained, agent = drain(settings)
    finally:
        platform.close()
    assert drained
    assert sorted(map(str, platform.stored)) == sorted(written)
    assert set(states(settings).values()) == {"acked"}
    assert agent.progress.acked == 700
    assert agent.progress.batches_sent >= 700 / settings.sync.batch_max_records


def test_batch_without_ack_is_sent_again_with_the_same_id(tmp_path: Path, broker: Broker) -> None:
    settings = settings_for(tmp_path, broker, ack_timeout_s=0.5, max_batches_in_flight=1)
    written = fill(settings, 30)
    seen: set[object] = set()

    def second_time_only(batch: object) -> bool:
        first = batch.batch_id not in seen  # type: ignore[attr-defined]
        seen.add(batch.batch_id)  # type: ignore[attr-defined]
        return not first

    platform = AckingPlatform(broker, ack_when=second_time_only)
    try:
        drained, agent = drain(settings)
    finally:
        platform.close()
    assert drained
    assert agent.progress.resent >= 1
    assert all(count == 2 for count in platform.batches.values())  # each batch id seen twice: same id re-sent
    assert sorted(map(str, platform.stored)) == sorted(written)


def test_each_resend_waits_twice_as_long(tmp_path: Path, broker: Broker) -> None:
    settings = settings_for(tmp_path, broker, ack_timeout_s=0.2, max_batches_in_flight=1)
    fill(settings, 3)
    platform = AckingPlatform(broker, ack_when=lambda batch: False)
    try:
        drained, _ = drain(settings, timeout=3.2)
    finally:
        platform.close()
    assert not drained
    [sends] = platform.batches.values()
    # Sent at 0, 0.2, 0.6, 1.4 and 3.0 s with doubling; a fixed 0.2 s timeout would have sent it 16 times.
    assert 3 <= sends <= 6


def test_rejected_records_are_set_aside_not_resent(tmp_path: Path, broker: Broker) -> None:
    settings = settings_for(tmp_path, broker)
    written = fill(settings, 20)
    refused = written[3]
    platform = AckingPlatform(broker, reject=lambda record_id: "bad" if str(record_id) == refused else None)
    try:
        drained, _ = drain(settings)
    finally:
        platform.close()
    assert drained
    result = states(settings)
    assert result[refused] == "rejected"
    assert [state for record_id, state in result.items() if record_id != refused] == ["acked"] * 19
    assert platform.received[next(r for r in platform.received if str(r) == refused)] == 1


def test_in_flight_batches_of_a_previous_run_are_sent_first_with_their_ids(tmp_path: Path, broker: Broker) -> None:
    settings = settings_for(tmp_path, broker)
    fill(settings, 10)
    with Outbox.open(settings.outbox.path) as box:
        interrupted = box.claim_batch(max_records=4, max_bytes=10**6, now=datetime.now(UTC))
    assert interrupted is not None
    platform = AckingPlatform(broker)
    try:
        drained, _ = drain(settings)
    finally:
        platform.close()
    assert drained
    assert platform.batches[interrupted.batch_id] == 1
    assert set(states(settings).values()) == {"acked"}


def test_certificate_from_another_ca_is_refused_and_nothing_is_lost(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    from provisioning.pki import create_ca

    rogue_cert, rogue_key = broker.pki.client("rogue-" + DEVICE, ca=create_ca("rogue"))
    settings = settings_for(tmp_path, broker)
    settings = settings.model_copy(
        update={"sync": settings.sync.model_copy(update={"tls_cert": rogue_cert, "tls_key": rogue_key})}
    )
    written = fill(settings, 5)
    with caplog.at_level(logging.WARNING, logger="sync_agent.agent"):
        drained, agent = drain(settings, timeout=2)
    assert not drained and agent.progress.acked == 0
    assert "link to broker" in caplog.text
    assert sorted(states(settings)) == sorted(written)
    assert set(states(settings).values()) <= {"pending", "in_flight"}


def test_device_cannot_publish_on_another_devices_topic(tmp_path: Path, broker: Broker) -> None:
    # borne-b's certificate, but configured as if it were borne-a: the ACL drops its batches.
    cert, key = broker.pki.client(OTHER)
    settings = settings_for(tmp_path, broker, ack_timeout_s=0.3)
    settings = settings.model_copy(update={"sync": settings.sync.model_copy(update={"tls_cert": cert, "tls_key": key})})
    fill(settings, 5)
    platform = AckingPlatform(broker)
    try:
        drained, agent = drain(settings, timeout=2)
    finally:
        platform.close()
    assert not drained
    assert platform.batches == {}
    assert agent.progress.acked == 0


def test_user_name_and_password_instead_of_a_certificate(
    tmp_path: Path, pki: TestPKI, caplog: pytest.LogCaptureFixture
) -> None:
    broker = Broker(
        tmp_path / "pw-broker", pki, [FleetDevice(SITE, DEVICE)], passwords={DEVICE: "s3cret", "ingest": "pl4tform"}
    ).start()
    try:
        (tmp_path / "password").write_text("s3cret\n")
        settings = settings_for(
            tmp_path, broker, tls_cert=None, tls_key=None, username=DEVICE, password_file=tmp_path / "password"
        )
        written = fill(settings, 40)
        platform = AckingPlatform(broker, password="pl4tform")
        try:
            drained, _ = drain(settings)
            (tmp_path / "password").write_text("wrong\n")
            fill(settings, 1, seed=9)
            with caplog.at_level(logging.ERROR, logger="sync_agent.agent"):
                refused, _ = drain(settings, timeout=1.5)
        finally:
            platform.close()
    finally:
        broker.stop()
    assert drained
    assert set(written) <= {str(record_id) for record_id in platform.stored}
    assert not refused
    assert f"refused device {DEVICE}" in caplog.text
    assert "check the user name ([sync] username) and the password in" in caplog.text


def test_missing_certificate_file_is_a_clear_error(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path, broker)
    settings = settings.model_copy(
        update={"sync": settings.sync.model_copy(update={"tls_cert": tmp_path / "absent.crt"})}
    )
    fill(settings, 1)
    with caplog.at_level(logging.ERROR, logger="sync_agent.agent"):
        drained, _ = drain(settings, timeout=1)
    assert not drained
    assert f"[sync] tls_cert = {tmp_path / 'absent.crt'}: file not found" in caplog.text


def test_status_is_retained_and_the_will_says_offline(tmp_path: Path, broker: Broker) -> None:
    settings = settings_for(tmp_path, broker)
    (tmp_path / "kiosk-state.json").write_text(
        json.dumps({"microphone": "ok", "model": "loading", "technician_pin_failures": 5})
    )
    fill(settings, 3)
    platform = AckingPlatform(broker)
    try:
        assert drain(settings)[0]
    finally:
        platform.close()
    status = read_retained(broker, f"borne/v1/{SITE}/{DEVICE}/status")
    assert status.state == "online" and status.backlog == 0
    assert (status.microphone, status.model, status.technician_pin_failures) == ("ok", "loading", 5)
    assert status.last_ack_at is not None and status.disk_free_bytes and status.versions["borne"]

    # A sync process killed without a clean disconnect: the broker publishes the last will.
    config = tmp_path / "borne.toml"
    write_toml(config, settings)
    process = subprocess.Popen([str(Path(sys.executable).with_name("borne")), "sync", "--config", str(config)])
    deadline = time.monotonic() + 20
    while read_retained(broker, f"borne/v1/{SITE}/{DEVICE}/status").sent_at == status.sent_at:
        assert time.monotonic() < deadline, "the daemon did not publish its status"
        time.sleep(0.2)
    process.kill()
    process.wait()
    deadline = time.monotonic() + settings.sync.keepalive_s * 2
    while read_retained(broker, f"borne/v1/{SITE}/{DEVICE}/status").state != "offline":
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_device_config_is_applied_when_valid_and_ignored_when_not(tmp_path: Path, broker: Broker) -> None:
    settings = settings_for(tmp_path, broker)
    fill(settings, 1)
    platform = AckingPlatform(broker)
    config_topic = f"borne/v1/{SITE}/{DEVICE}/config"
    try:
        good = DeviceConfig(config_version=3, question={"fr": "Content de votre visite ?"}, languages=["fr"])
        platform.publish(config_topic, good.to_json(), retain=True)
        assert drain(settings)[0]
        assert DeviceConfig.model_validate_json((tmp_path / "device-config.json").read_text()) == good
        platform.publish(config_topic, b'{"config_version": 4, "question": {"en": "no french"}}', retain=True)
        fill(settings, 1, seed=2)
        assert drain(settings)[0]
    finally:
        platform.close()
    assert DeviceConfig.model_validate_json((tmp_path / "device-config.json").read_text()) == good


def test_sync_once_command(tmp_path: Path, broker: Broker) -> None:
    settings = settings_for(tmp_path, broker)
    fill(settings, 50)
    config = tmp_path / "borne.toml"
    write_toml(config, settings)
    platform = AckingPlatform(broker)
    try:
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("borne")),
                "sync",
                "--once",
                "--timeout",
                "60",
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        platform.close()
    assert done.returncode == 0, done.stderr
    assert "acknowledged 50 record(s), rejected 0" in done.stdout and "0 left in the outbox" in done.stdout


def test_sync_once_gives_up_with_records_kept(tmp_path: Path, broker: Broker) -> None:
    settings = settings_for(tmp_path, broker)
    fill(settings, 5)
    config = tmp_path / "borne.toml"
    write_toml(config, settings)
    broker.stop()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("borne")), "sync", "--once", "--timeout", "1.5", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "5 record(s) not acknowledged yet; they stay in the outbox" in done.stderr


def write_toml(path: Path, settings: SyncSettings) -> None:
    s = settings.sync
    path.write_text(
        f"""
[device]
site_id = "{settings.device.site_id}"
device_id = "{settings.device.device_id}"
kiosk_state_path = "{settings.device.kiosk_state_path}"
device_config_path = "{settings.device.device_config_path}"

[outbox]
path = "{settings.outbox.path}"

[sync]
broker_host = "{s.broker_host}"
broker_port = {s.broker_port}
tls_ca = "{s.tls_ca}"
tls_cert = "{s.tls_cert}"
tls_key = "{s.tls_key}"
backoff_min_s = 0.05
backoff_max_s = 0.5
keepalive_s = 5
status_interval_s = 1
"""
    )


def read_retained(broker: Broker, topic: str) -> Status:
    cert, key = broker.pki.client("ingest")
    got: list[bytes] = []
    event = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"reader-{time.monotonic_ns()}", protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(broker.pki.ca_file), certfile=str(cert), keyfile=str(key))
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        got.append(message.payload)
        event.set()

    client.on_message = on_message
    client.connect(broker.host, broker.platform_port)
    client.loop_start()
    try:
        assert event.wait(10), f"no retained message on {topic}"
    finally:
        client.disconnect()
        client.loop_stop()
    return Status.model_validate_json(got[0])
