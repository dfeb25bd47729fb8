"""The technician's guide as one test: fleet CA and broker certificate, the platform's own CA and the ingest
consumer's certificate, terminal init, CSR signed into the fleet list, broker configuration generated from that list
and run by a real mosquitto, certificate installed, model installed from a "USB stick", `borne provision check`
passing its broker line, and the platform reading the terminal's Status on its own listener."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from provisioning.local_broker import free_port, start_mosquitto, wait_listening
from sync_agent.contract import Status, topic
from tests.provisioning.helpers import DEVICE, SITE, borne, init_args, make_bundle


def test_blank_terminal_to_enrolled_and_checked(tmp_path: Path) -> None:
    fleet, root = tmp_path / "fleet", tmp_path / "terminal"
    assert borne("provision", "fleet", "ca", "init", "--out", fleet / "ca").exit_code == 0
    server = ["provision", "fleet", "server-cert", "--ca-dir", fleet / "ca", "--out", fleet / "broker-tls"]
    assert borne(*server, "--name", "127.0.0.1", "--name", "localhost").exit_code == 0
    assert borne("provision", "fleet", "platform-ca", "init", "--out", fleet / "platform-ca").exit_code == 0
    platform = ["provision", "fleet", "platform-cert", "--name", "ingest", "--out", fleet / "platform"]
    assert borne(*platform, "--ca-dir", fleet / "platform-ca").exit_code == 0
    port, platform_port = free_port(), free_port()

    assert borne(*init_args(root, broker=f"mqtts://127.0.0.1:{port}")).exit_code == 0
    csr = root / "etc/borne/tls/device.csr"
    signed = borne(
        "provision",
        "fleet",
        "sign",
        "--ca-dir",
        fleet / "ca",
        "--out",
        fleet / "signed",
        "--fleet",
        fleet / "fleet.csv",
        csr,
    )
    assert signed.exit_code == 0, signed.output
    assert (fleet / "fleet.csv").read_text() == f"site_id,device_id\n{SITE},{DEVICE}\n"

    conf = fleet / "mosquitto"
    config_args = ["--ca", fleet / "ca/ca.crt", "--cert", fleet / "broker-tls/server.crt"]
    config_args += ["--key", fleet / "broker-tls/server.key", "--port", str(port), "--bind", "127.0.0.1"]
    config_args += ["--platform-ca", fleet / "platform-ca/ca.crt", "--platform-port", str(platform_port)]
    if os.geteuid() == 0:
        config_args += ["--user", "root"]
    generated = borne(
        "provision", "fleet", "broker-config", "--fleet", fleet / "fleet.csv", "--out", conf, *config_args
    )
    assert generated.exit_code == 0, generated.output

    installed = borne(
        "provision",
        "install-cert",
        "--cert",
        fleet / "signed" / f"{DEVICE}.crt",
        "--ca",
        fleet / "ca/ca.crt",
        "--root",
        root,
    )
    assert installed.exit_code == 0, installed.output
    make_bundle(tmp_path / "usb/whisper-base", signed_by=fleet / "ca")  # checked with the CA installed above
    assert (
        borne("provision", "models", "install", "--root", root, "--from", tmp_path / "usb/whisper-base").exit_code == 0
    )

    broker = start_mosquitto(conf / "mosquitto.conf", port)
    try:
        # model: the stick's bundle is a stand-in, not a real Whisper model; no microphone, screen or systemd here
        skips = [arg for name in ("model", "microphone", "display", "clock", "units") for arg in ("--skip", name)]
        result = borne("provision", "check", "--config", root / "etc/borne/borne.toml", "--json", *skips)
        wait_listening(broker, platform_port)
        status = _read_as_platform(fleet, platform_port, topic(SITE, DEVICE, "status"))
    finally:
        broker.terminate()
        broker.wait(10)
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["ok"], report
    outcomes = {check["name"]: check["result"] for check in report["checks"]}
    assert outcomes == {
        "settings": "pass",
        "disk": "pass",
        "clock": "skip",
        "certificate": "pass",
        "model": "skip",
        "microphone": "skip",
        "display": "skip",
        "broker": "pass",
        "units": "skip",
    }
    assert Status.model_validate_json(status).device_id == DEVICE


def _read_as_platform(fleet: Path, port: int, status_topic: str) -> bytes:
    """The retained Status the check left, read with the platform's certificate on the platform's listener."""
    got: list[bytes] = []
    arrived = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ingest", protocol=mqtt.MQTTv5)
    client.tls_set(
        ca_certs=str(fleet / "ca/ca.crt"),
        certfile=str(fleet / "platform/ingest.crt"),
        keyfile=str(fleet / "platform/ingest.key"),
    )
    client.on_connect = lambda c, *_: c.subscribe(status_topic, qos=1)
    client.on_message = lambda _c, _u, message: (got.append(bytes(message.payload)), arrived.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        assert arrived.wait(10), "the platform read no Status on its listener"
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0]
