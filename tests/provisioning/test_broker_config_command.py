"""`borne provision fleet broker-config` writes a configuration a real mosquitto runs with."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from borne_cli.main import cli
from provisioning.local_broker import MOSQUITTO, LocalPKI, free_port


def test_generated_configuration_runs_and_enforces_the_acl(tmp_path: Path) -> None:
    pki = LocalPKI(tmp_path / "pki")
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("site_id,device_id\nfs-1,borne-a\nfs-1,borne-b\n")
    port = free_port()
    args = [
        "provision",
        "fleet",
        "broker-config",
        "--fleet",
        str(fleet),
        "--out",
        str(tmp_path / "conf"),
        "--ca",
        str(pki.ca_file),
        "--cert",
        str(pki.root / "server.crt"),
        "--key",
        str(pki.root / "server.key"),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--data-dir",
        str(tmp_path / "data"),
    ]
    if os.geteuid() == 0:
        args += ["--user", "root"]
    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "for 2 terminal(s)" in result.output
    broker = subprocess.Popen([MOSQUITTO, "-c", str(tmp_path / "conf" / "mosquitto.conf")], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, broker.stderr.read() if broker.poll() is not None else "no listen"
                time.sleep(0.05)
        got: list[str] = []
        subscribed = threading.Event()
        ingest = _client(pki, "ingest", port)
        ingest.on_subscribe = lambda *_: subscribed.set()
        ingest.on_message = lambda _c, _u, message: got.append(message.topic)
        ingest.subscribe("borne/v1/+/+/batch", qos=1)
        assert subscribed.wait(10)
        device = _client(pki, "borne-a", port)
        device.publish("borne/v1/fs-1/borne-b/batch", b"spoofed", qos=1).wait_for_publish(5)
        device.publish("borne/v1/fs-1/borne-a/batch", b"own", qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == ["borne/v1/fs-1/borne-a/batch"]
    finally:
        broker.terminate()
        broker.wait(10)


def test_bad_fleet_file_is_refused(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("site_id,device_id\nfs-1,bad/id\n")
    result = CliRunner().invoke(
        cli,
        [
            "provision",
            "fleet",
            "broker-config",
            "--fleet",
            str(fleet),
            "--out",
            str(tmp_path / "o"),
            "--ca",
            "ca",
            "--cert",
            "c",
            "--key",
            "k",
        ],
    )
    assert result.exit_code == 1
    assert "'bad/id' is not a valid identifier" in result.output
    assert not (tmp_path / "o").exists()


def test_before_any_terminal_the_configuration_admits_the_platform_only(tmp_path: Path) -> None:
    base = ["provision", "fleet", "broker-config", "--fleet", str(tmp_path / "fleet.csv"), "--out", str(tmp_path / "o")]
    base += ["--ca", "ca", "--cert", "c", "--key", "k", "--plugin", "/usr/lib/x/mosquitto_dynamic_security.so"]
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 0, result.output
    assert "no fleet list at" in result.output and "fleet sign" in result.output
    rights = json.loads((tmp_path / "o/dynamic-security.json").read_text())
    assert [client["username"] for client in rights["clients"]] == ["ingest"]
    for bad, message in ((["--bind", "bad host"], "is not an IP address"), (["--ingest", "borne-a"], "must start")):
        refused = CliRunner().invoke(cli, [*base, *bad])
        assert refused.exit_code != 0 and message in refused.output


def _client(pki: LocalPKI, identity: str, port: int) -> mqtt.Client:
    cert, key = pki.client(identity)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=identity, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(pki.ca_file), certfile=str(cert), keyfile=str(key))
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(10)
    return client
