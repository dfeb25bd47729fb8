from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from borne_common.ids import is_platform_identity
from provisioning.broker import FleetDevice, dynamic_security, mosquitto_conf, read_fleet
from provisioning.pki import create_ca, issue, make_csr, sign_csr


def _rules(document: dict[str, Any], role: str) -> set[tuple[str, str]]:
    (found,) = [r for r in document["roles"] if r["rolename"] == role]
    assert all(rule["allow"] for rule in found["acls"])
    return {(rule["acltype"], rule["topic"]) for rule in found["acls"]}


def test_dynamic_security_confines_each_device_to_its_own_topics() -> None:
    document = json.loads(dynamic_security([FleetDevice("fs-1", "borne-a")], ["ingest"]))
    own = "borne/v1/fs-1/borne-a"
    assert _rules(document, "device-borne-a") == {
        ("publishClientSend", f"{own}/batch"),
        ("publishClientSend", f"{own}/status"),
        *(
            (kind, f"{own}/{topic}")
            for kind in ("subscribeLiteral", "publishClientReceive")
            for topic in ("status", "ack", "config")
        ),
    }
    assert ("subscribePattern", "$share/+/borne/v1/+/+/batch") in _rules(document, "platform")
    assert ("publishClientSend", "borne/v1/+/+/ack") in _rules(document, "platform")
    clients = {c["username"]: [r["rolename"] for r in c["roles"]] for c in document["clients"]}
    assert clients == {"ingest": ["platform"], "borne-a": ["device-borne-a"]}
    assert document["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    assert "password" not in json.dumps(document)


def test_platform_names_are_reserved() -> None:
    assert (
        is_platform_identity("ingest") and is_platform_identity("Ingest-2") and is_platform_identity("platform_fleet")
    )
    assert not is_platform_identity("borne-ingest") and not is_platform_identity("ingestion")
    with pytest.raises(ValueError, match="device ingest-9 is named like the platform"):
        dynamic_security([FleetDevice("fs-1", "ingest-9")], ["ingest"])
    with pytest.raises(ValueError, match="platform identity 'borne-a' must start with 'ingest' or 'platform'"):
        dynamic_security([FleetDevice("fs-1", "borne-b")], ["borne-a"])


def test_mosquitto_conf_requires_certificates_and_binds_client_ids(tmp_path: Path) -> None:
    conf = mosquitto_conf(
        port=8883,
        cafile=tmp_path / "ca",
        certfile=tmp_path / "c",
        keyfile=tmp_path / "k",
        dynsec_file=tmp_path / "dynamic-security.json",
        persistence_dir=None,
        plugin=Path("/usr/lib/x/mosquitto_dynamic_security.so"),
    )
    for line in (
        "allow_anonymous false",
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
        "listener 8883 0.0.0.0",
        "plugin /usr/lib/x/mosquitto_dynamic_security.so",
        f"plugin_opt_config_file {tmp_path / 'dynamic-security.json'}",
    ):
        assert line in conf.splitlines()
    assert "acl_file" not in conf


def test_read_fleet_refuses_bad_rows(tmp_path: Path) -> None:
    good = tmp_path / "fleet.csv"
    good.write_text("site_id,device_id\nfs-1,borne-a\nfs-2,borne-b\n")
    assert read_fleet(good) == [FleetDevice("fs-1", "borne-a"), FleetDevice("fs-2", "borne-b")]
    for content, message in [
        ("site,device\nfs-1,a\n", "expected a CSV header"),
        ("site_id,device_id\nfs-1,bad/id\n", "fleet.csv:2: 'bad/id' is not a valid identifier"),
        ("site_id,device_id\nfs-1,a\nfs-2,a\n", "device a appears twice"),
        (
            "site_id,device_id\nfs-1,a\nfs-2,ingest\n",
            "fleet.csv:3: device id 'ingest' is reserved to the central platform",
        ),
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
