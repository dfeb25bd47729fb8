from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from borne_common.ids import is_platform_identity
from provisioning.broker import (
    FleetDevice,
    PlatformListener,
    dynamic_security,
    mosquitto_conf,
    platform_acl,
    read_fleet,
)
from provisioning.pki import create_ca, issue, make_csr, sign_csr


def _rules(document: dict[str, Any], role: str) -> set[tuple[str, str]]:
    (found,) = [r for r in document["roles"] if r["rolename"] == role]
    assert all(rule["allow"] for rule in found["acls"])
    return {(rule["acltype"], rule["topic"]) for rule in found["acls"]}


def test_dynamic_security_confines_each_device_to_its_own_topics() -> None:
    document = json.loads(dynamic_security([FleetDevice("fs-1", "borne-a")]))
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
    # The terminals' listener gives the platform nothing: its rights are on its own listener.
    assert [role["rolename"] for role in document["roles"]] == ["device-borne-a"]
    clients = {c["username"]: [r["rolename"] for r in c["roles"]] for c in document["clients"]}
    assert clients == {"borne-a": ["device-borne-a"]}
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
        dynamic_security([FleetDevice("fs-1", "ingest-9")])
    with pytest.raises(ValueError, match="platform identity 'borne-a' must start with 'ingest' or 'platform'"):
        platform_acl(["borne-a"])
    with pytest.raises(ValueError, match="no platform identity"):
        platform_acl([])


def test_the_platform_acl_gives_each_named_consumer_the_platform_rights() -> None:
    acl = platform_acl(["ingest", "ingest-2"])
    for identity in ("ingest", "ingest-2"):
        block = acl.split(f"user {identity}\n")[1].split("\n\n")[0].splitlines()
        assert block == [
            "topic read borne/v1/+/+/batch",
            "topic read borne/v1/+/+/status",
            "topic write borne/v1/+/+/ack",
            "topic write borne/v1/+/+/config",
        ]
    # No line before the first user: topics there would apply to anonymous clients, patterns to everyone.
    assert next(line for line in acl.splitlines() if line and not line.startswith("#")) == "user ingest"
    assert "pattern" not in acl


def test_mosquitto_conf_has_a_listener_per_ca_with_its_own_rights(tmp_path: Path) -> None:
    conf = mosquitto_conf(
        port=8883,
        cafile=tmp_path / "ca",
        certfile=tmp_path / "c",
        keyfile=tmp_path / "k",
        dynsec_file=tmp_path / "dynamic-security.json",
        platform=PlatformListener(port=8884, cafile=tmp_path / "platform-ca", acl_file=tmp_path / "platform.acl"),
        persistence_dir=None,
        plugin=Path("/usr/lib/x/mosquitto_dynamic_security.so"),
    )
    head, terminals = conf.split("\nlistener 8883 0.0.0.0\n")
    terminals, platform = terminals.split("\nlistener 8884 127.0.0.1\n")
    assert "per_listener_settings true" in head.splitlines()
    for security in ("allow_anonymous", "plugin", "acl_file", "cafile", "require_certificate"):
        # before the first listener, it would open a default listener on 1883
        assert not [line for line in head.splitlines() if line.startswith(security)]
    for section in (terminals, platform):
        for line in ("allow_anonymous false", "require_certificate true", "use_identity_as_username true"):
            assert line in section.splitlines()
    # A terminal's client id is its name; the platform's clients give theirs (ids are one namespace across listeners).
    assert "use_username_as_clientid true" in terminals.splitlines()
    assert "use_username_as_clientid true" not in platform.splitlines()
    assert f"cafile {tmp_path / 'ca'}" in terminals.splitlines()
    assert "plugin /usr/lib/x/mosquitto_dynamic_security.so" in terminals.splitlines()
    assert f"plugin_opt_config_file {tmp_path / 'dynamic-security.json'}" in terminals.splitlines()
    assert not [line for line in terminals.splitlines() if line.startswith("acl_file")]
    assert f"cafile {tmp_path / 'platform-ca'}" in platform.splitlines()
    assert f"acl_file {tmp_path / 'platform.acl'}" in platform.splitlines()
    assert not [line for line in platform.splitlines() if line.startswith("plugin")]
    with pytest.raises(ValueError, match="a port of its own"):
        mosquitto_conf(
            port=8883,
            cafile=tmp_path / "ca",
            certfile=tmp_path / "c",
            keyfile=tmp_path / "k",
            dynsec_file=tmp_path / "d.json",
            platform=PlatformListener(port=8883, cafile=tmp_path / "p", acl_file=tmp_path / "a"),
            persistence_dir=None,
            plugin=Path("/x.so"),
        )


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
