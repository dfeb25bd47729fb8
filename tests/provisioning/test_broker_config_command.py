"""`borne provision fleet broker-config` writes a configuration a real mosquitto runs with."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import ssl
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from borne_cli.main import cli
from provisioning.local_broker import LocalPKI, free_port, start_mosquitto, wait_listening


def test_generated_configuration_runs_and_enforces_the_acl(tmp_path: Path) -> None:
    pki = LocalPKI(tmp_path / "pki")
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("site_id,device_id\nfs-1,borne-a\nfs-1,borne-b\n")
    port, platform_port = free_port(), free_port()
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
        "--platform-ca",
        str(pki.platform_ca_file),
        "--platform-port",
        str(platform_port),
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
    broker = start_mosquitto(tmp_path / "conf" / "mosquitto.conf", port)
    try:
        wait_listening(broker, platform_port)
        got: list[str] = []
        subscribed = threading.Event()
        ingest = _client(pki, "ingest", platform_port)
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
            str(tmp_path / "ca"),
            "--platform-ca",
            str(tmp_path / "platform-ca"),
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
    pki = LocalPKI(tmp_path / "pki")
    base = ["provision", "fleet", "broker-config", "--fleet", str(tmp_path / "fleet.csv"), "--out", str(tmp_path / "o")]
    base += ["--ca", str(pki.ca_file), "--cert", str(pki.root / "server.crt"), "--key", str(pki.root / "server.key")]
    base += ["--platform-ca", str(pki.platform_ca_file), "--plugin", "/usr/lib/x/mosquitto_dynamic_security.so"]
    result = CliRunner().invoke(cli, base)
    assert result.exit_code == 0, result.output
    assert "no fleet list at" in result.output and "fleet sign" in result.output
    rights = json.loads((tmp_path / "o/dynamic-security.json").read_text())
    assert rights["clients"] == []
    assert "user ingest\n" in (tmp_path / "o/platform.acl").read_text()
    for bad, message in (
        (["--bind", "bad host"], "is not an IP address"),
        (["--platform-bind", "localhost"], "is not an IP address"),
        (["--ingest", "borne-a"], "must start"),
        (["--platform-port", "8883"], "needs a port of its own"),
    ):
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


def test_the_tls_files_are_checked_and_copied_where_the_broker_can_read_them(tmp_path: Path) -> None:
    pki = LocalPKI(tmp_path / "pki")
    base = ["provision", "fleet", "broker-config", "--fleet", str(tmp_path / "fleet.csv"), "--out", str(tmp_path / "o")]
    base += ["--plugin", "/usr/lib/x/mosquitto_dynamic_security.so"]
    files = {
        "--ca": pki.ca_file,
        "--platform-ca": pki.platform_ca_file,
        "--cert": pki.root / "server.crt",
        "--key": pki.root / "server.key",
    }
    for option, wrong, message in (
        ("--ca", pki.root / "server.key", "--ca {} is not what it should be (PEM ca)"),
        ("--key", pki.root / "absent.key", "cannot read --key {}"),
        ("--platform-ca", pki.ca_file, "--platform-ca {} is the fleet CA itself"),
    ):
        given = {**files, option: wrong}
        refused = CliRunner().invoke(cli, [*base, *(str(x) for pair in given.items() for x in pair)])
        assert refused.exit_code == 1 and message.format(wrong) in refused.output, refused.output
        assert not (tmp_path / "o/mosquitto.conf").exists()
    written = CliRunner().invoke(cli, [*base, *(str(x) for pair in files.items() for x in pair)])
    assert written.exit_code == 0, written.output
    conf = (tmp_path / "o/mosquitto.conf").read_text()
    tls = (tmp_path / "o/tls").resolve()
    assert f"cafile {tls}/ca.crt" in conf and f"keyfile {tls}/server.key" in conf
    assert f"cafile {tls}/platform-ca.crt" in conf
    assert (tls / "platform-ca.crt").read_bytes() == pki.platform_ca_file.read_bytes()
    assert (tls / "server.key").read_bytes() == (pki.root / "server.key").read_bytes()
    key_mode = (tls / "server.key").stat().st_mode & 0o777
    assert key_mode in (0o640, 0o600) and (tls / "ca.crt").stat().st_mode & 0o777 == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="mosquitto drops to its own user only when started as root")
def test_the_broker_running_as_its_own_user_starts_with_an_offline_ca_directory(tmp_path: Path) -> None:
    """The documented layout: the CA directory 0700 and the server key 0600 root; mosquitto reads its
    TLS files after switching to the mosquitto user."""
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.fail("no mosquitto user: install the Debian package mosquitto")
    fleet = tmp_path / "fleet"
    fleet.mkdir(mode=0o700)
    pki = LocalPKI(fleet / "ca")
    (fleet / "ca").chmod(0o700)
    port = free_port()
    (tmp_path / "fleet.csv").write_text("site_id,device_id\nfs-1,borne-a\n")
    etc = Path(tempfile.mkdtemp(prefix="borne-etc-mosquitto-"))  # like /etc/mosquitto: any user may enter it
    etc.chmod(0o755)
    conf, data = etc / "borne", etc / "data"
    args = ["provision", "fleet", "broker-config", "--fleet", str(tmp_path / "fleet.csv"), "--out", str(conf)]
    args += ["--ca", str(pki.ca_file), "--cert", str(pki.root / "server.crt"), "--key", str(pki.root / "server.key")]
    args += ["--platform-ca", str(pki.platform_ca_file), "--platform-port", str(free_port())]
    args += ["--port", str(port), "--bind", "127.0.0.1", "--user", "mosquitto", "--data-dir", str(data)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert data.stat().st_uid == pwd.getpwnam("mosquitto").pw_uid
    broker = start_mosquitto(conf / "mosquitto.conf", port)
    try:
        _client(pki, "borne-a", port).disconnect()
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(etc)


def test_the_platform_listener_can_present_a_certificate_of_the_platform_ca(tmp_path: Path) -> None:
    """Then the consumers check the broker with the platform CA: a fleet-CA holder cannot pose as it."""
    fleet = tmp_path / "fleet"
    for args in (
        ["ca", "init", "--out", fleet / "ca"],
        ["platform-ca", "init", "--out", fleet / "platform-ca"],
        ["server-cert", "--ca-dir", fleet / "ca", "--name", "127.0.0.1", "--out", fleet / "tls"],
        ["server-cert", "--ca-dir", fleet / "platform-ca", "--name", "127.0.0.1", "--out", fleet / "platform-tls"],
        ["platform-cert", "--ca-dir", fleet / "platform-ca", "--name", "ingest", "--out", fleet / "platform"],
    ):
        made = CliRunner().invoke(cli, ["provision", "fleet", *(str(arg) for arg in args)])
        assert made.exit_code == 0, made.output
    port, platform_port = free_port(), free_port()
    args = ["provision", "fleet", "broker-config", "--fleet", str(fleet / "fleet.csv"), "--out", str(tmp_path / "o")]
    args += ["--ca", str(fleet / "ca/ca.crt"), "--cert", str(fleet / "tls/server.crt")]
    args += ["--key", str(fleet / "tls/server.key"), "--platform-ca", str(fleet / "platform-ca/ca.crt")]
    args += ["--port", str(port), "--bind", "127.0.0.1", "--platform-port", str(platform_port)]
    args += ["--user", "root"] if os.geteuid() == 0 else []
    half = CliRunner().invoke(cli, [*args, "--platform-cert", str(fleet / "platform-tls/server.crt")])
    assert half.exit_code == 1 and "--platform-cert and --platform-key go together" in half.output
    platform_tls = ["--platform-cert", str(fleet / "platform-tls/server.crt")]
    platform_tls += ["--platform-key", str(fleet / "platform-tls/server.key")]
    written = CliRunner().invoke(cli, [*args, *platform_tls])
    assert written.exit_code == 0, written.output
    tls = (tmp_path / "o/tls").resolve()
    conf = (tmp_path / "o/mosquitto.conf").read_text()
    assert f"certfile {tls}/platform-server.crt" in conf.split(f"listener {platform_port}")[1]
    assert (tls / "platform-server.key").stat().st_mode & 0o077 in (0o040, 0)
    broker = start_mosquitto(tmp_path / "o/mosquitto.conf", port)
    try:
        wait_listening(broker, platform_port)

        def consumer(trusted_ca: Path) -> mqtt.Client:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ingest", protocol=mqtt.MQTTv5)
            client.tls_set(
                ca_certs=str(trusted_ca),
                certfile=str(fleet / "platform/ingest.crt"),
                keyfile=str(fleet / "platform/ingest.key"),
            )
            return client

        with pytest.raises(ssl.SSLCertVerificationError):  # the fleet CA did not sign this listener's certificate
            consumer(fleet / "ca/ca.crt").connect("127.0.0.1", platform_port)
        connected = threading.Event()
        good = consumer(fleet / "platform-ca/ca.crt")
        good.on_connect = lambda _c, _u, _f, reason, _p: connected.set() if not reason.is_failure else None
        good.connect("127.0.0.1", platform_port)
        good.loop_start()
        assert connected.wait(10)
        good.disconnect()
        good.loop_stop()
    finally:
        broker.terminate()
        broker.wait(10)
