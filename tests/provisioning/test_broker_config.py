from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from provisioning.broker import FleetDevice, acl, mosquitto_conf, read_fleet
from provisioning.pki import create_ca, issue, make_csr, sign_csr


def test_acl_confines_each_device_to_its_own_topics() -> None:
    text = acl([FleetDevice("fs-1", "borne-a")], ["ingest"])
    block = text.split("user borne-a\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert block == [
        "topic write borne/v1/fs-1/borne-a/batch",
        "topic readwrite borne/v1/fs-1/borne-a/status",
        "topic read borne/v1/fs-1/borne-a/ack",
        "topic read borne/v1/fs-1/borne-a/config",
    ]
    assert "user ingest\ntopic read borne/v1/+/+/batch" in text
    assert "pattern" not in text  # identities are listed, never substituted


def test_mosquitto_conf_requires_certificates(tmp_path: Path) -> None:
    conf = mosquitto_conf(
        port=8883,
        cafile=tmp_path / "ca",
        certfile=tmp_path / "c",
        keyfile=tmp_path / "k",
        acl_file=tmp_path / "acl",
        persistence_dir=None,
    )
    for line in (
        "allow_anonymous false",
        "require_certificate true",
        "use_identity_as_username true",
        "listener 8883 0.0.0.0",
        f"acl_file {tmp_path / 'acl'}",
    ):
        assert line in conf.splitlines()


def test_read_fleet_refuses_bad_rows(tmp_path: Path) -> None:
    good = tmp_path / "fleet.csv"
    good.write_text("site_id,device_id\nfs-1,borne-a\nfs-2,borne-b\n")
    assert read_fleet(good) == [FleetDevice("fs-1", "borne-a"), FleetDevice("fs-2", "borne-b")]
    for content, message in [
        ("site,device\nfs-1,a\n", "expected a CSV header"),
        ("site_id,device_id\nfs-1,bad/id\n", "fleet.csv:2: 'bad/id' is not a valid identifier"),
        ("site_id,device_id\nfs-1,a\nfs-2,a\n", "device a appears twice"),
    ]:
        good.write_text(content)
        with pytest.raises(ValueError, match=message):
            read_fleet(good)


def test_certificates_chain_to_the_ca() -> None:
    ca = create_ca("Test CA")
    device = issue(ca, "borne-a")
    server = issue(ca, "broker", server_names=["broker.example", "127.0.0.1"])
    for leaf in (device, server):
        leaf.certificate.verify_directly_issued_by(ca.certificate)
    assert device.certificate.subject.rfc4514_string() == "CN=borne-a"
    names = server.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "broker.example" in names.get_values_for_type(x509.DNSName)


def test_a_tampered_csr_is_refused() -> None:
    ca = create_ca()
    _, csr = make_csr("borne-a")
    tampered = csr.replace(csr[100:104], b"AAAA") if csr[100:104] != b"AAAA" else csr.replace(csr[100:104], b"BBBB")
    with pytest.raises(ValueError):
        sign_csr(ca, tampered)


def test_keys_are_written_private(tmp_path: Path) -> None:
    issue(create_ca(), "borne-a").write(tmp_path / "d.crt", tmp_path / "d.key")
    assert (tmp_path / "d.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "d.crt").stat().st_mode & 0o777 == 0o644
