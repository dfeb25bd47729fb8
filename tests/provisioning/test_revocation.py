"""`borne provision fleet revoke`: a stolen terminal is cut off by the broker, the others stay connected;
the broker's TLS accepts no CBC suite; certificates carry a KeyUsage."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from provisioning.broker import read_fleet
from provisioning.local_broker import free_port, start_mosquitto
from tests.provisioning.helpers import borne, tree

SITE = "fs-23-01"


def _terminal(tmp_path: Path, device: str) -> Path:
    """A terminal's key (as `provision init` makes it) and CSR naming its site; returns the CSR."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, device), x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, SITE)]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    folder = tmp_path / "terminals" / device
    folder.mkdir(parents=True)
    (folder / "device.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (folder / "device.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return folder / "device.csr"


def _fleet(tmp_path: Path, *devices: str) -> Path:
    ca = tmp_path / "ca"
    assert borne("provision", "fleet", "ca", "init", "--out", ca).exit_code == 0
    csrs = [_terminal(tmp_path, device) for device in devices]
    signed = borne(
        "provision",
        "fleet",
        "sign",
        "--ca-dir",
        ca,
        "--out",
        tmp_path / "signed",
        "--fleet",
        tmp_path / "fleet.csv",
        *csrs,
    )
    assert signed.exit_code == 0, signed.output
    return ca


def _serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_revoke_lists_the_terminals_certificates_in_the_crl_and_takes_them_off_the_fleet(tmp_path: Path) -> None:
    ca = _fleet(tmp_path, "borne-a", "borne-b")
    empty = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    assert (
        len(list(empty)) == 0
        and empty.next_update_utc == x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes()).not_valid_after_utc
    )  # a list that expires before the CA would lock every terminal out

    result = borne("provision", "fleet", "revoke", "borne-b", "--ca-dir", ca, "--fleet", tmp_path / "fleet.csv")
    assert result.exit_code == 0, result.output
    serial = _serial(tmp_path / "signed/borne-b.crt")
    assert f"revoked borne-b (serial {serial:x})" in result.output
    crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    assert crl.is_signature_valid(x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes()).public_key())
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(_serial(tmp_path / "signed/borne-a.crt")) is None
    assert [device.device_id for device in read_fleet(tmp_path / "fleet.csv")] == ["borne-a"]

    again = borne("provision", "fleet", "revoke", "borne-b", "--ca-dir", ca)
    assert again.exit_code == 0 and "already revoked: nothing new" in again.output
    assert len(list(x509.load_pem_x509_crl((ca / "crl.pem").read_bytes()))) == 1


def test_revoke_refuses_what_it_cannot_find_and_writes_nothing(tmp_path: Path) -> None:
    ca = _fleet(tmp_path, "borne-a")
    other = tmp_path / "other"
    assert borne("provision", "fleet", "ca", "init", "--out", other / "ca").exit_code == 0
    assert (
        borne("provision", "fleet", "sign", "--ca-dir", other / "ca", "--out", other, _terminal(other, "x")).exit_code
        == 0
    )
    before = tree(tmp_path / "ca")
    for args, message in (
        (["borne-zz"], "no certificate issued to borne-zz is on record"),
        (["--cert", other / "x.crt"], "was not signed by this CA"),
        (["bad/id"], "is not a device id"),
        ([], "nothing to revoke"),
    ):
        refused = borne("provision", "fleet", "revoke", *args, "--ca-dir", ca)
        assert refused.exit_code == 1 and message in refused.output, refused.output
    assert tree(tmp_path / "ca") == before


def test_a_certificate_signed_before_the_register_is_revoked_from_its_file(tmp_path: Path) -> None:
    ca = _fleet(tmp_path, "borne-a")
    (ca / "issued.csv").unlink()  # a CA directory made by an earlier version
    result = borne("provision", "fleet", "revoke", "--cert", tmp_path / "signed/borne-a.crt", "--ca-dir", ca)
    assert result.exit_code == 0, result.output
    crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(_serial(tmp_path / "signed/borne-a.crt")) is not None


def test_device_certificates_may_only_sign(tmp_path: Path) -> None:
    _fleet(tmp_path, "borne-a")
    usage = x509.load_pem_x509_certificate((tmp_path / "signed/borne-a.crt").read_bytes()).extensions
    key_usage = usage.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical and key_usage.value.digital_signature
    assert not (key_usage.value.key_cert_sign or key_usage.value.crl_sign or key_usage.value.key_encipherment)


def test_broker_config_refuses_a_crl_of_another_ca(tmp_path: Path) -> None:
    ca = _fleet(tmp_path, "borne-a")
    assert borne("provision", "fleet", "ca", "init", "--out", tmp_path / "other").exit_code == 0
    base = ["provision", "fleet", "broker-config", "--fleet", tmp_path / "fleet.csv", "--out", tmp_path / "conf"]
    assert (
        borne("provision", "fleet", "server-cert", "--ca-dir", ca, "--name", "b", "--out", tmp_path / "tls").exit_code
        == 0
    )
    base += ["--ca", ca / "ca.crt", "--cert", tmp_path / "tls/server.crt", "--key", tmp_path / "tls/server.key"]
    base += ["--plugin", "/usr/lib/x/dynsec.so", "--platform-ca", tmp_path / "other/ca.crt"]
    refused = borne(*base, "--crl", tmp_path / "other/crl.pem")
    assert refused.exit_code == 2 and "was not issued by the CA of --ca" in refused.output
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a list")
    assert "is not a readable revocation list" in borne(*base, "--crl", garbage).output
    assert not (tmp_path / "conf").exists()
    accepted = borne(*base, "--crl", ca / "crl.pem")
    assert accepted.exit_code == 0, accepted.output
    assert f"crlfile {(tmp_path / 'conf/tls/crl.pem').resolve()}" in (tmp_path / "conf/mosquitto.conf").read_text()
    assert (tmp_path / "conf/tls/crl.pem").read_bytes() == (ca / "crl.pem").read_bytes()


class _Broker:
    """mosquitto run with what `fleet broker-config` wrote (CRL included)."""

    def __init__(self, tmp_path: Path, ca: Path) -> None:
        self.tmp_path, self.ca, self.port = tmp_path, ca, free_port()
        self.platform_ca = tmp_path / "platform-ca/ca.crt"
        if not self.platform_ca.exists():
            made = borne("provision", "fleet", "platform-ca", "init", "--out", self.platform_ca.parent)
            assert made.exit_code == 0, made.output
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        tls = self.tmp_path / "broker-tls"
        if not tls.exists():
            made = borne("provision", "fleet", "server-cert", "--ca-dir", self.ca, "--name", "127.0.0.1", "--out", tls)
            assert made.exit_code == 0, made.output
        args = ["provision", "fleet", "broker-config", "--fleet", self.tmp_path / "fleet.csv"]
        args += ["--out", self.tmp_path / "conf", "--ca", self.ca / "ca.crt", "--crl", self.ca / "crl.pem"]
        args += ["--cert", tls / "server.crt", "--key", tls / "server.key", "--port", str(self.port)]
        args += ["--bind", "127.0.0.1", *(["--user", "root"] if os.geteuid() == 0 else [])]
        args += ["--platform-ca", self.platform_ca, "--platform-port", str(free_port())]
        written = borne(*args)
        assert written.exit_code == 0, written.output
        self.process = start_mosquitto(self.tmp_path / "conf/mosquitto.conf", self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    def connects(self, device: str) -> bool:
        """Whether the terminal's certificate gets an accepted MQTT connection."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv5)
        client.tls_set(
            ca_certs=str(self.ca / "ca.crt"),
            certfile=str(self.tmp_path / "signed" / f"{device}.crt"),
            keyfile=str(self.tmp_path / "terminals" / device / "device.key"),
        )
        accepted = threading.Event()
        client.on_connect = lambda _c, _u, _f, reason, _p: reason.is_failure or accepted.set()
        try:
            client.connect("127.0.0.1", self.port)
        except (ssl.SSLError, OSError):
            return False
        client.loop_start()
        try:
            return accepted.wait(3)
        finally:
            client.loop_stop()
            client.disconnect()


def test_a_revoked_terminal_is_refused_by_the_broker_and_the_others_are_not(tmp_path: Path) -> None:
    ca = _fleet(tmp_path, "borne-a", "borne-b")
    broker = _Broker(tmp_path, ca)
    broker.start()
    try:
        assert broker.connects("borne-a") and broker.connects("borne-b")
    finally:
        broker.stop()
    revoked = borne("provision", "fleet", "revoke", "borne-b", "--ca-dir", ca, "--fleet", tmp_path / "fleet.csv")
    assert revoked.exit_code == 0, revoked.output
    broker.start()
    try:
        assert broker.connects("borne-a")
        assert not broker.connects("borne-b")
    finally:
        broker.stop()


@pytest.mark.parametrize(
    ("ciphers", "accepted"), [("ECDHE-ECDSA-AES128-SHA256", False), ("ECDHE-ECDSA-AES128-GCM-SHA256", True)]
)
def test_the_broker_accepts_no_cbc_suite(tmp_path: Path, ciphers: str, accepted: bool) -> None:
    ca = _fleet(tmp_path, "borne-a")
    broker = _Broker(tmp_path, ca)
    broker.start()
    try:
        context = ssl.create_default_context(cafile=str(ca / "ca.crt"))
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(ciphers)
        context.load_cert_chain(tmp_path / "signed/borne-a.crt", tmp_path / "terminals/borne-a/device.key")
        with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw:
            try:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    negotiated = tls.cipher()
            except ssl.SSLError:
                negotiated = None
        assert (negotiated is not None) is accepted
    finally:
        broker.stop()


def test_the_operator_lists_the_certificates_to_renew(tmp_path: Path) -> None:
    ca = _fleet(tmp_path, "borne-a")  # 825 days
    csrs = {device: _terminal(tmp_path, device) for device in ("borne-b", "borne-c", "borne-d")}
    sign = ["provision", "fleet", "sign", "--ca-dir", ca, "--out", tmp_path / "signed", "--days", "20"]
    assert borne(*sign, *csrs.values()).exit_code == 0
    listed = borne("provision", "fleet", "expiring", "--ca-dir", ca, "--within", "30")
    assert listed.exit_code == 1
    assert [line.split()[0] for line in listed.output.splitlines()] == ["borne-b", "borne-c", "borne-d"]
    assert "expires in 19 days" in listed.output
    # Renewed (its CSR signed again) or revoked: no longer to do.
    renewed = borne("provision", "fleet", "sign", "--ca-dir", ca, "--out", tmp_path / "renewed", csrs["borne-b"])
    assert renewed.exit_code == 0
    assert borne("provision", "fleet", "revoke", "borne-c", "--ca-dir", ca).exit_code == 0
    listed = borne("provision", "fleet", "expiring", "--ca-dir", ca, "--within", "30")
    assert [line.split()[0] for line in listed.output.splitlines()] == ["borne-d"]
    assert borne("provision", "fleet", "expiring", "--ca-dir", ca, "--within", "10").exit_code == 0
    everything = borne("provision", "fleet", "expiring", "--ca-dir", ca, "--within", "900")
    # Soonest first: borne-a was signed before borne-b was renewed.
    assert [line.split()[0] for line in everything.output.splitlines()] == ["borne-d", "borne-a", "borne-b"]
