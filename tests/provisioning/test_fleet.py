"""`borne provision fleet ca init` and `fleet sign`: the central side's PKI and fleet list."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.broker import FleetDevice, read_fleet
from provisioning.identity import verify_identity
from tests.provisioning.helpers import DEVICE, SITE, borne, init_args, tree


def _csr(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


def _enrolled_csr(tmp_path: Path, device: str = DEVICE) -> Path:
    root = tmp_path / f"terminal-{device}"
    args = init_args(root)
    args[args.index("--device-id") + 1] = device
    assert borne(*args).exit_code == 0
    return root / "etc/borne/tls/device.csr"


def test_ca_init_writes_a_private_key_and_refuses_to_replace_it(tmp_path: Path) -> None:
    result = borne("provision", "fleet", "ca", "init", "--out", tmp_path / "ca")
    assert result.exit_code == 0, result.output
    key, cert = tmp_path / "ca/ca.key", tmp_path / "ca/ca.crt"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(cert.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    before = tree(tmp_path)
    again = borne("provision", "fleet", "ca", "init", "--out", tmp_path / "ca")
    assert again.exit_code == 1 and "a CA already exists here" in again.output
    assert tree(tmp_path) == before


def test_sign_makes_client_certificates_that_fit_the_terminals_keys(tmp_path: Path) -> None:
    assert borne("provision", "fleet", "ca", "init", "--out", tmp_path / "ca").exit_code == 0
    csrs = [_enrolled_csr(tmp_path, "borne-a"), _enrolled_csr(tmp_path, "borne-b")]
    result = borne("provision", "fleet", "sign", "--ca-dir", tmp_path / "ca", "--out", tmp_path / "signed", *csrs)
    assert result.exit_code == 0, result.output
    assert "signed borne-a (site fs-23-01)" in result.output
    for device, csr in zip(("borne-a", "borne-b"), csrs, strict=True):
        cert_pem = (tmp_path / "signed" / f"{device}.crt").read_bytes()
        identity = verify_identity(
            key_pem=(csr.parent / "device.key").read_bytes(),
            cert_pem=cert_pem,
            ca_pem=(tmp_path / "ca/ca.crt").read_bytes(),
            device_id=device,
        )
        usages = identity.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert ExtendedKeyUsageOID.CLIENT_AUTH in usages


def test_sign_adds_the_terminals_to_the_fleet_list_broker_config_reads(tmp_path: Path) -> None:
    assert borne("provision", "fleet", "ca", "init", "--out", tmp_path / "ca").exit_code == 0
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("site_id,device_id\nfs-01-01,borne-z\n")
    csr = _enrolled_csr(tmp_path)
    args = ["provision", "fleet", "sign", "--ca-dir", tmp_path / "ca", "--out", tmp_path / "out", "--fleet", fleet]
    assert borne(*args, csr).exit_code == 0
    assert borne(*args, csr).exit_code == 0  # signing again (renewal) does not list it twice
    assert read_fleet(fleet) == [FleetDevice("fs-01-01", "borne-z"), FleetDevice(SITE, DEVICE)]

    fleet.write_text("site_id,device_id\nfs-99-99,borne-a\n")
    before = tree(tmp_path)
    conflict = borne(*args, csr)
    assert conflict.exit_code == 1 and "listed at site fs-99-99" in conflict.output
    assert tree(tmp_path) == before


def test_sign_refuses_bad_requests_before_writing_anything(tmp_path: Path) -> None:
    assert borne("provision", "fleet", "ca", "init", "--out", tmp_path / "ca").exit_code == 0
    good = _enrolled_csr(tmp_path)
    bad_name = tmp_path / "bad-name.csr"
    bad_name.write_bytes(_csr("borne/../a"))
    tampered = tmp_path / "tampered.csr"
    der = bytearray(x509.load_pem_x509_csr(_csr("borne-t")).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    body = base64.encodebytes(bytes(der)).decode()
    tampered.write_text(f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n")
    not_csr = tmp_path / "notes.txt"
    not_csr.write_text("hello")
    base = ["provision", "fleet", "sign", "--ca-dir", tmp_path / "ca", "--out", tmp_path / "out"]
    for bad, message in [
        (bad_name, "is not a valid device id"),
        (tampered, "signature is not valid"),
        (not_csr, "is not a certificate signing request"),
        (good, "are both for device borne-a"),
    ]:
        before = tree(tmp_path)
        result = borne(*base, good, bad)
        assert result.exit_code == 1, result.output
        assert message in result.output and "Fix:" in result.output
        assert tree(tmp_path) == before  # the good CSR was not signed either
    missing_ca = borne("provision", "fleet", "sign", "--ca-dir", tmp_path / "nowhere", good)
    assert missing_ca.exit_code == 1 and "fleet ca init" in missing_ca.output


def test_server_certificate_for_the_broker(tmp_path: Path) -> None:
    assert borne("provision", "fleet", "ca", "init", "--out", tmp_path / "ca").exit_code == 0
    args = ["provision", "fleet", "server-cert", "--ca-dir", tmp_path / "ca", "--out", tmp_path / "tls"]
    result = borne(*args, "--name", "mqtt.example.fr", "--name", "10.0.0.5")
    assert result.exit_code == 0, result.output
    certificate = x509.load_pem_x509_certificate((tmp_path / "tls/server.crt").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mqtt.example.fr"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert stat.S_IMODE((tmp_path / "tls/server.key").stat().st_mode) == 0o600
    before = tree(tmp_path)
    again = borne(*args, "--name", "mqtt.example.fr")
    assert again.exit_code == 1 and "already exists" in again.output
    assert tree(tmp_path) == before


def test_platform_names_are_refused_for_terminals_and_issued_to_consumers(tmp_path: Path) -> None:
    assert borne("provision", "fleet", "ca", "init", "--out", tmp_path / "ca").exit_code == 0
    csr = tmp_path / "ingest.csr"
    csr.write_bytes(_csr("ingest"))
    before = tree(tmp_path)
    signed = borne("provision", "fleet", "sign", "--ca-dir", tmp_path / "ca", "--out", tmp_path / "signed", csr)
    assert signed.exit_code == 1 and "reserved to the central platform" in signed.output
    assert tree(tmp_path) == before
    init = borne(*[("Ingest-2" if arg == DEVICE else arg) for arg in init_args(tmp_path / "root")])
    assert init.exit_code == 1 and "reserved to the central platform" in init.output
    assert not (tmp_path / "root").exists()

    # The platform's certificates come from the platform's own CA, never from the fleet CA.
    with_fleet_ca = ["provision", "fleet", "platform-cert", "--ca-dir", tmp_path / "ca", "--out", tmp_path / "platform"]
    refused = borne(*with_fleet_ca, "--name", "ingest-1")
    assert refused.exit_code == 1 and "is the fleet CA" in refused.output and "platform-ca init" in refused.output
    assert not (tmp_path / "platform").exists()
    made = borne("provision", "fleet", "platform-ca", "init", "--out", tmp_path / "platform-ca")
    assert made.exit_code == 0, made.output
    assert (tmp_path / "platform-ca/role").read_text() == "platform\n"
    args = ["provision", "fleet", "platform-cert", "--ca-dir", tmp_path / "platform-ca", "--out", tmp_path / "platform"]
    assert borne(*args, "--name", "borne-a").exit_code == 1
    result = borne(*args, "--name", "ingest-1")
    assert result.exit_code == 0, result.output
    # The consumer's client id to set: the name and 12 random hex digits (the platform listener takes it as given).
    assert re.search(r'client_id = "ingest-1-[0-9a-f]{12}"', result.output), result.output
    certificate = x509.load_pem_x509_certificate((tmp_path / "platform/ingest-1.crt").read_bytes())
    assert certificate.subject.rfc4514_string() == "CN=ingest-1"
    platform_ca = x509.load_pem_x509_certificate((tmp_path / "platform-ca/ca.crt").read_bytes())
    certificate.verify_directly_issued_by(platform_ca)
    # And the platform CA signs no terminal.
    device_csr = tmp_path / "borne-a.csr"
    device_csr.write_bytes(_csr("borne-a"))
    wrong = borne(
        "provision", "fleet", "sign", "--ca-dir", tmp_path / "platform-ca", "--out", tmp_path / "s", device_csr
    )
    assert wrong.exit_code == 1 and "is the platform's CA" in wrong.output
    assert not (tmp_path / "s").exists()
    assert stat.S_IMODE((tmp_path / "platform/ingest-1.key").stat().st_mode) == 0o600
    assert "already exists" in borne(*args, "--name", "ingest-1").output
