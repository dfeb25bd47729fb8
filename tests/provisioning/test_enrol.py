"""`borne provision init` and `install-cert` under --root: files, modes, refusals that leave nothing behind."""

from __future__ import annotations

import grp
import os
import pwd
import stat
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from kiosk_app.settings import KioskSettings
from provisioning.enrol import EnrolRequest, enrol
from provisioning.fleet import init_ca, sign_requests
from provisioning.pki import create_ca, issue
from sync_agent.settings import SyncSettings
from tests.provisioning.helpers import DEPARTMENT, DEVICE, SITE, borne, init_args, tree


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_settings_the_processes_load_and_a_private_key_with_its_csr(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = borne(*init_args(root, broker="mqtts://mqtt.borne.example.fr:9883"))
    assert result.exit_code == 0, result.output
    config = root / "etc/borne/borne.toml"
    sync = SyncSettings.load(config)
    kiosk = KioskSettings.load(config)
    assert (sync.device.site_id, sync.device.device_id, sync.device.department) == (SITE, DEVICE, DEPARTMENT)
    assert (sync.sync.broker_host, sync.sync.broker_port) == ("mqtt.borne.example.fr", 9883)
    assert sync.sync.tls_key == root / "etc/borne/tls/device.key"
    assert sync.sync.tls_cert == root / "etc/borne/tls/device.crt"
    assert sync.outbox.path == root / "var/lib/borne/outbox.db"
    assert kiosk.outbox.path == sync.outbox.path
    assert kiosk.voice.models_dir == root / "var/lib/borne/models"
    key, csr_path = root / "etc/borne/tls/device.key", root / "etc/borne/tls/device.csr"
    assert mode(key) == 0o600 and mode(key.parent) == 0o700
    assert "group borne does not exist yet" in result.output or "not root" in result.output
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == DEVICE
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == SITE
    assert not (root / "etc/borne/tls/device.crt").exists()
    assert "fleet sign" in result.output
    # no temporary file left next to the real ones
    assert sorted(p.name for p in (root / "etc/borne/tls").iterdir()) == ["device.csr", "device.key"]


def test_device_paths_keep_the_terminals_own_paths_under_a_mounted_card(tmp_path: Path) -> None:
    result = borne(*init_args(tmp_path, "--device-paths"))
    assert result.exit_code == 0, result.output
    values = tomllib.loads((tmp_path / "etc/borne/borne.toml").read_text())
    assert values["sync"]["tls_key"] == "/etc/borne/tls/device.key"
    assert values["outbox"]["path"] == "/var/lib/borne/outbox.db"
    assert "--device-paths" not in result.output


def test_root_without_device_paths_says_which_paths_the_settings_name(tmp_path: Path) -> None:
    result = borne(*init_args(tmp_path))
    assert result.exit_code == 0, result.output
    values = tomllib.loads((tmp_path / "etc/borne/borne.toml").read_text())
    assert values["sync"]["tls_key"] == str(tmp_path / "etc/borne/tls/device.key")
    assert f"borne.toml names the files below {tmp_path}" in " ".join(result.output.split())
    assert "--force --device-paths" in result.output


def test_key_belongs_to_the_sync_user_when_it_exists(tmp_path: Path) -> None:
    request = EnrolRequest(
        SITE, DEPARTMENT, DEVICE, "mqtts://broker", root=tmp_path, service_group="nogroup", sync_user="nobody"
    )
    result = enrol(request)
    key = tmp_path / "etc/borne/tls/device.key"
    if os.geteuid() != 0:
        assert mode(key) == 0o600 and any("we are not root" in note for note in result.notes)
        return
    assert mode(key) == 0o600 and key.stat().st_uid == pwd.getpwnam("nobody").pw_uid
    assert mode(key.parent) == 0o750 and key.parent.stat().st_gid == grp.getgrnam("nogroup").gr_gid
    assert any("owner of the sync agent's user" in note for note in result.notes)


def test_key_is_shared_with_the_service_group_when_it_exists(tmp_path: Path) -> None:
    """Units installed by an older version: the group exists, the sync user not yet."""
    request = EnrolRequest(
        SITE, DEPARTMENT, DEVICE, "mqtts://broker", root=tmp_path, service_group="nogroup", sync_user="no-such-user"
    )
    result = enrol(request)
    key = tmp_path / "etc/borne/tls/device.key"
    if os.geteuid() != 0:  # only root may hand a file to a group: the key stays private to its owner
        assert mode(key) == 0o600 and any("we are not root" in note for note in result.notes)
        return
    assert mode(key) == 0o640
    assert key.stat().st_gid == grp.getgrnam("nogroup").gr_gid and key.stat().st_uid == 0
    assert mode(key.parent) == 0o750
    assert any("group nogroup" in note for note in result.notes)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--site", "fs/23", "site id 'fs/23' is invalid"),
        ("--site", "", "site id '' is invalid"),
        ("--department", "20", "department '20' is not a French département code"),
        ("--department", "975", "department '975'"),
        ("--device-id", "borne a", "device id 'borne a' is invalid"),
        ("--broker", "mqtt://broker:1883", "does not start with mqtts://"),
        ("--broker", "mqtts://broker:99999", "malformed"),
        ("--broker", "mqtts://user@broker/path", "must be just mqtts://HOST:PORT"),
    ],
)
def test_bad_identity_is_refused_and_nothing_is_written(tmp_path: Path, option: str, value: str, message: str) -> None:
    args = init_args(tmp_path / "root")
    args[args.index(option) + 1] = value
    result = borne(*args)
    assert result.exit_code == 1
    assert message in result.output and "Fix:" in result.output
    assert not (tmp_path / "root").exists()


def test_an_enrolled_terminal_is_not_replaced_without_force(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert borne(*init_args(root)).exit_code == 0
    before = tree(root)
    refused = borne(*init_args(root, broker="mqtts://other:8883"))
    assert refused.exit_code == 1
    assert "already enrolled: device borne-a at site fs-23-01" in refused.output and "--force" in refused.output
    assert tree(root) == before

    forced = borne(*init_args(root, "--force", broker="mqtts://other:8883"))
    assert forced.exit_code == 0, forced.output
    assert SyncSettings.load(root / "etc/borne/borne.toml").sync.broker_host == "other"
    key_after = tree(root)["etc/borne/tls/device.key"]
    assert key_after[1] != before["etc/borne/tls/device.key"][1]  # a new key...
    assert tree(root)["etc/borne/tls/device.csr"][1] != before["etc/borne/tls/device.csr"][1]  # ...and its CSR
    backups = list((root / "etc/borne").glob("borne.toml.replaced-*"))
    assert len(backups) == 1 and "mqtt.example.fr" in backups[0].read_text()
    # twice more, within the same second as likely as not: each run's backup is kept
    for host in ("third", "fourth"):
        assert borne(*init_args(root, "--force", broker=f"mqtts://{host}:8883")).exit_code == 0
    kept = sorted(path.read_text() for path in (root / "etc/borne").glob("borne.toml.replaced-*"))
    assert len(kept) == 3 and any('broker_host = "third"' in text for text in kept)


def test_malformed_enrolment_values_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for broker, message in (
        ("mqtts://bad host:8883", "'bad host' is not a host name"),
        ("mqtts://mqtt.example.fr:0", "port 0 is not a port"),
    ):
        result = borne(*init_args(root, broker=broker))
        assert result.exit_code == 1 and message in result.output, result.output
    newline = borne(*[("borne-a\n" if arg == DEVICE else arg) for arg in init_args(root)])
    assert newline.exit_code == 1 and "device id 'borne-a\\n' is invalid" in newline.output, newline.output
    assert not root.exists()


def test_given_certificate_is_installed_after_its_checks(tmp_path: Path) -> None:
    ca = create_ca("Fleet CA")
    device = issue(ca, DEVICE)
    files = tmp_path / "files"
    device.write(files / "device.crt", files / "device.key")
    (files / "ca.crt").write_bytes(ca.cert_pem)
    root = tmp_path / "root"
    result = borne(
        *init_args(root, "--cert", files / "device.crt", "--key", files / "device.key", "--ca", files / "ca.crt")
    )
    assert result.exit_code == 0, result.output
    tls = root / "etc/borne/tls"
    assert (tls / "device.crt").read_bytes() == device.cert_pem
    assert (tls / "device.key").read_bytes() == device.key_pem and mode(tls / "device.key") == 0o600
    assert (tls / "ca.crt").read_bytes() == ca.cert_pem and mode(tls / "ca.crt") == 0o644
    assert not (tls / "device.csr").exists()


@pytest.mark.parametrize("problem", ["other key", "other CA", "other device", "not a certificate"])
def test_certificate_that_does_not_fit_is_refused_and_nothing_is_written(tmp_path: Path, problem: str) -> None:
    ca = create_ca("Fleet CA")
    files = tmp_path / "files"
    issue(ca, DEVICE).write(files / "device.crt", files / "device.key")
    (files / "ca.crt").write_bytes(ca.cert_pem)
    if problem == "other key":
        issue(ca, DEVICE).write(files / "unused.crt", files / "device.key")
    elif problem == "other CA":
        issue(create_ca("Rogue CA"), DEVICE).write(files / "device.crt", files / "device.key")
    elif problem == "other device":
        issue(ca, "borne-b").write(files / "device.crt", files / "device.key")
    else:
        (files / "device.crt").write_text("hello")
    root = tmp_path / "root"
    result = borne(
        *init_args(root, "--cert", files / "device.crt", "--key", files / "device.key", "--ca", files / "ca.crt")
    )
    assert result.exit_code == 1
    expected = {
        "other key": f"device.crt does not match {files / 'device.key'}",
        "other CA": "is not signed by the fleet CA",
        "other device": "is for 'borne-b', not for this terminal 'borne-a'",
        "not a certificate": "is not a PEM certificate",
    }[problem]
    assert expected in result.output and "Fix:" in result.output
    assert not root.exists()


def test_refusal_on_an_enrolled_terminal_keeps_it_intact(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert borne(*init_args(root)).exit_code == 0
    before = tree(root)
    rogue = tmp_path / "rogue"
    issue(create_ca("Rogue"), DEVICE).write(rogue / "d.crt", rogue / "d.key")
    (rogue / "ca.crt").write_bytes(create_ca("Other").cert_pem)
    result = borne(
        *init_args(root, "--force", "--cert", rogue / "d.crt", "--key", rogue / "d.key", "--ca", rogue / "ca.crt")
    )
    assert result.exit_code == 1 and "not signed by the fleet CA" in result.output
    assert tree(root) == before


def test_csr_signed_by_the_fleet_is_installed_with_install_cert(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert borne(*init_args(root)).exit_code == 0
    init_ca(tmp_path / "ca")
    signed = sign_requests(tmp_path / "ca", [root / "etc/borne/tls/device.csr"], tmp_path / "out")
    other = sign_requests(tmp_path / "ca", [_foreign_csr(tmp_path)], tmp_path / "out-other")

    before = tree(root)
    wrong = borne(
        "provision", "install-cert", "--cert", other[0].certificate, "--ca", tmp_path / "ca/ca.crt", "--root", root
    )
    assert wrong.exit_code == 1 and "does not match" in wrong.output and "device.key" in wrong.output
    assert tree(root) == before

    result = borne(
        "provision", "install-cert", "--cert", signed[0].certificate, "--ca", tmp_path / "ca/ca.crt", "--root", root
    )
    assert result.exit_code == 0, result.output
    assert (root / "etc/borne/tls/device.crt").read_bytes() == signed[0].certificate.read_bytes()
    assert (root / "etc/borne/tls/ca.crt").read_bytes() == (tmp_path / "ca/ca.crt").read_bytes()


def test_install_cert_refuses_a_key_in_a_certificate_file_and_a_silent_ca_change(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert borne(*init_args(root)).exit_code == 0
    init_ca(tmp_path / "ca")
    (signed,) = sign_requests(tmp_path / "ca", [root / "etc/borne/tls/device.csr"], tmp_path / "out")
    ca_cert = (tmp_path / "ca/ca.crt").read_bytes()
    with_key = tmp_path / "ca-with-key.pem"
    with_key.write_bytes((tmp_path / "ca/ca.key").read_bytes() + ca_cert)  # the CA's key prepended
    before = tree(root)
    refused = borne("provision", "install-cert", "--cert", signed.certificate, "--ca", with_key, "--root", root)
    assert refused.exit_code == 1 and "holds a private key" in refused.output
    assert tree(root) == before

    padded = tmp_path / "padded.crt"
    padded.write_bytes(b"issued by the fleet\n" + signed.certificate.read_bytes() + ca_cert)  # text, a second cert
    assert (
        borne("provision", "install-cert", "--cert", padded, "--ca", tmp_path / "ca/ca.crt", "--root", root).exit_code
        == 0
    )
    installed = (root / "etc/borne/tls/device.crt").read_bytes()
    assert installed == signed.certificate.read_bytes() and installed.count(b"BEGIN CERTIFICATE") == 1

    init_ca(tmp_path / "other-ca")  # the same CSR signed by another CA: a valid chain, another trust anchor
    (resigned,) = sign_requests(tmp_path / "other-ca", [root / "etc/borne/tls/device.csr"], tmp_path / "out-other")
    args = ["provision", "install-cert", "--cert", resigned.certificate, "--ca", tmp_path / "other-ca/ca.crt"]
    changed = borne(*args, "--root", root)
    assert changed.exit_code == 1 and "another fleet CA" in changed.output and "--force" in changed.output
    assert (root / "etc/borne/tls/ca.crt").read_bytes() == ca_cert
    assert borne(*args, "--force", "--root", root).exit_code == 0
    assert (root / "etc/borne/tls/ca.crt").read_bytes() == (tmp_path / "other-ca/ca.crt").read_bytes()


def test_install_cert_before_init_says_to_enrol_first(tmp_path: Path) -> None:
    result = borne("provision", "install-cert", "--cert", tmp_path / "x.crt", "--root", tmp_path / "root")
    assert result.exit_code == 1 and "borne provision init" in result.output
    assert not (tmp_path / "root").exists()


def _foreign_csr(tmp_path: Path) -> Path:
    other_root = tmp_path / "other"
    assert borne(*init_args(other_root)).exit_code == 0  # same device id, another key
    return other_root / "etc/borne/tls/device.csr"


def test_a_tree_that_cannot_be_written_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "etc").write_text("a file where /etc should be a directory")
    before = tree(tmp_path)
    result = borne(*init_args(tmp_path))
    assert result.exit_code == 1
    assert "cannot write" in result.output and "Fix: run the command as root" in result.output
    assert tree(tmp_path) == before
