"""`borne provision init` and `install-cert`: a terminal's identity, settings file, key and certificate.

Everything is validated before anything is written; files are written to temporary names next to
their targets and renamed into place at the end, the settings file last (its presence is what
"enrolled" means), so a refusal or an error leaves the tree as it was.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from borne_common.ids import DEPARTMENT_PATTERN, is_platform_identity
from borne_common.settings import SettingsError, read_toml
from kiosk_app.settings import KioskSettings
from provisioning.errors import ProvisioningError
from provisioning.identity import (
    Identity,
    IdentityError,
    load_certificate,
    make_request,
    new_key,
    pem_of,
    read_pem,
    valid_identifier,
    verify_identity,
)
from provisioning.layout import SYSTEM_ROOT, DeviceLayout, created_directories, running_as_root
from sync_agent.settings import SyncSettings

SERVICE_GROUP = "borne"
SYNC_USER = "borne-sync"  # the only user that reads the TLS key (provisioning/systemd/borne.sysusers.conf)
DEFAULT_BROKER_PORT = 8883
_DEPARTMENT = re.compile(DEPARTMENT_PATTERN)
# A DNS name (labels of letters, digits and hyphens) or an IPv4 or bracket-less IPv6 address.
_HOST = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
    r"|[0-9A-Fa-f:.]+"
)


class EnrolError(ProvisioningError):
    """Enrolment refused; nothing was written."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int


def parse_broker_url(url: str) -> BrokerAddress:
    """`mqtts://host[:port]` (port 8883 when omitted); terminals only speak MQTT over TLS."""
    fix = "give the central broker as mqtts://HOST:PORT, e.g. mqtts://mqtt.borne.example.fr:8883"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise EnrolError(f"broker URL {url!r} is malformed ({error})", fix) from None
    if parts.scheme != "mqtts":
        raise EnrolError(f"broker URL {url!r} does not start with mqtts:// (terminals connect over TLS only)", fix)
    if not parts.hostname or parts.username or parts.password or parts.path not in ("", "/") or parts.query:
        raise EnrolError(f"broker URL {url!r} must be just mqtts://HOST:PORT (no user, path or query)", fix)
    if not _HOST.fullmatch(parts.hostname):
        raise EnrolError(f"broker URL {url!r}: {parts.hostname!r} is not a host name or an IP address", fix)
    if port == 0:
        raise EnrolError(f"broker URL {url!r}: port 0 is not a port", fix)
    return BrokerAddress(parts.hostname, port or DEFAULT_BROKER_PORT)


def check_site_id(value: str) -> str:
    if not valid_identifier(value):
        raise EnrolError(
            f"site id {value!r} is invalid",
            "use letters, digits, '-' or '_' (at most 64, starting with a letter or digit), e.g. fs-75-012",
        )
    return value


def check_device_id(value: str) -> str:
    if not valid_identifier(value):
        raise EnrolError(
            f"device id {value!r} is invalid",
            "use letters, digits, '-' or '_' (at most 64, starting with a letter or digit), e.g. borne-75-012-a",
        )
    if is_platform_identity(value):
        raise EnrolError(
            f"device id {value!r} is reserved to the central platform (names starting with 'ingest' or 'platform')",
            "choose another device id, e.g. borne-75-012-a",
        )
    return value


def check_department(value: str) -> str:
    if not _DEPARTMENT.fullmatch(value):
        raise EnrolError(
            f"department {value!r} is not a French département code",
            "use two digits '01' to '95' (not '20'), '2A', '2B', or '971' to '974', '976'",
        )
    return value


@dataclass(frozen=True)
class CertificateFiles:
    """A certificate, its key and the fleet CA, given on the command line."""

    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True)
class EnrolRequest:
    site_id: str
    department: str
    device_id: str
    broker_url: str
    root: Path = SYSTEM_ROOT
    certificate: CertificateFiles | None = None
    ca: Path | None = None  # the fleet CA alone, installed beside a new key and CSR
    force: bool = False
    device_paths: bool = False  # write the terminal's own paths (/etc/borne/...) even under another root
    service_group: str = SERVICE_GROUP
    sync_user: str = SYNC_USER


@dataclass
class EnrolResult:
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    csr: Path | None = None


def enrolled_as(layout: DeviceLayout) -> str | None:
    """A description of the enrolment already present under `layout`, or None."""
    present = [path for path in (layout.config, layout.key, layout.certificate) if path.exists()]
    if not present:
        return None
    try:
        device = read_toml(layout.config, required=False).get("device", {})
        who = f"device {device.get('device_id', '?')} at site {device.get('site_id', '?')}"
    except SettingsError:
        who = "a device with an unreadable settings file"
    return f"{who} ({', '.join(str(path) for path in present)})"


def settings_toml(request: EnrolRequest, broker: BrokerAddress, layout: DeviceLayout) -> str:
    """The settings file: identity, outbox, broker and the TLS files; every path as the processes will see it."""
    paths = DeviceLayout(SYSTEM_ROOT) if request.device_paths else layout
    sections: dict[str, dict[str, str | int]] = {
        "device": {
            "site_id": request.site_id,
            "device_id": request.device_id,
            "department": request.department,
            "kiosk_state_path": str(paths.kiosk_state),
            "device_config_path": str(paths.device_config),
        },
        "outbox": {"path": str(paths.outbox)},
        "sync": {
            "broker_host": broker.host,
            "broker_port": broker.port,
            "tls_ca": str(paths.ca),
            "tls_cert": str(paths.certificate),
            "tls_key": str(paths.key),
        },
        "voice": {"models_dir": str(paths.models_dir)},
    }
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Written by `borne provision init` on {stamp}. Every key: docs/settings.md.",
        "# Values may be overridden by BORNE_<SECTION>__<KEY> environment variables.",
    ]
    for name, values in sections.items():
        lines += ["", f"[{name}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: str | int) -> str:
    # A JSON string with ensure_ascii is a valid TOML basic string.
    return str(value) if isinstance(value, int) else json.dumps(value)


class _Staging:
    """Files written under temporary names and renamed into place together."""

    def __init__(self) -> None:
        self._files: list[tuple[Path, Path]] = []

    def add(self, target: Path, data: bytes, mode: int, group: int | None = None, owner: int = 0) -> None:
        temporary = target.with_name(f".{target.name}.{os.getpid()}.new")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o600)
        self._files.append((temporary, target))
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if group is not None:
            os.chown(temporary, owner, group)
        temporary.chmod(mode)

    def temporary(self, target: Path) -> Path:
        return next(temporary for temporary, final in self._files if final == target)

    def commit(self) -> list[Path]:
        for temporary, target in self._files:
            temporary.replace(target)
        done = [target for _, target in self._files]
        self._files = []
        return done

    def discard(self) -> None:
        for temporary, _ in self._files:
            temporary.unlink(missing_ok=True)
        self._files = []


def service_group_id(name: str) -> int | None:
    """The group the services run as, when it exists and we may hand files to it (we are root)."""
    if not running_as_root():
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def sync_user_id(name: str) -> int | None:
    """The sync agent's user, when it exists and we may hand files to it (we are root)."""
    if not running_as_root():
        return None
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def _key_ownership_note(key: Path, group: int | None, group_name: str, sync_user: int | None = None) -> str:
    if group is not None and sync_user is not None:
        return f"{key}: mode 0600, owner of the sync agent's user (the sync agent reads it, nobody else)"
    if group is not None:
        return f"{key}: mode 0640, owner root, group {group_name} (the borne services read it, nobody else)"
    who = "we are not root" if not running_as_root() else f"the group {group_name} does not exist yet"
    return (
        f"{key}: mode 0600, ownership left as is because {who}; `borne provision install-units` creates "
        f"the {group_name} group and hands the key to it (0640) so that the services can read it"
    )


def _load_given_identity(files: CertificateFiles, device_id: str) -> Identity:
    return verify_identity(
        key_pem=read_pem(files.key, "device key"),
        cert_pem=read_pem(files.cert, "device certificate"),
        ca_pem=read_pem(files.ca, "fleet CA certificate"),
        device_id=device_id,
        where={"key": str(files.key), "cert": str(files.cert), "ca": str(files.ca)},
    )


def enrol(request: EnrolRequest) -> EnrolResult:
    """Write the settings file and the TLS identity below `request.root`; raise `EnrolError` on refusal."""
    check_site_id(request.site_id)
    check_department(request.department)
    check_device_id(request.device_id)
    broker = parse_broker_url(request.broker_url)
    layout = DeviceLayout(request.root)
    existing = enrolled_as(layout)
    if existing and not request.force:
        raise EnrolError(
            f"this terminal is already enrolled: {existing}",
            "pass --force to replace its identity (a new key means the fleet must sign a new certificate)",
        )
    identity: Identity | None = None
    ca_pem: bytes | None = None
    try:
        if request.certificate is not None:
            identity = _load_given_identity(request.certificate, request.device_id)
        elif request.ca is not None:
            what = "fleet CA certificate"
            ca_pem = pem_of(load_certificate(read_pem(request.ca, what), request.ca, what))
    except IdentityError as error:
        raise EnrolError(error.problem, error.fix) from None
    config_text = settings_toml(request, broker, layout)

    group = service_group_id(request.service_group)
    sync_user = sync_user_id(request.sync_user) if group is not None else None
    result = EnrolResult()
    staging = _Staging()
    backup: Path | None = None
    with created_directories(layout.tls_dir) as created:
        if layout.tls_dir in created:
            layout.tls_dir.chmod(0o750 if group is not None else 0o700)
            if group is not None:
                os.chown(layout.tls_dir, 0, group)
        try:
            # The sync agent's user alone reads the key; before that user exists, the services' group.
            key_mode = 0o640 if group is not None and sync_user is None else 0o600
            key_owner = sync_user or 0
            if identity is not None:
                staging.add(layout.key, identity.key_pem, key_mode, group, key_owner)
                staging.add(layout.certificate, identity.cert_pem, 0o644)
                staging.add(layout.ca, identity.ca_pem, 0o644)
            else:
                key, key_pem = new_key()
                staging.add(layout.key, key_pem, key_mode, group, key_owner)
                staging.add(layout.csr, make_request(key, request.device_id, request.site_id), 0o644)
                if ca_pem is not None:
                    staging.add(layout.ca, ca_pem, 0o644)
                result.csr = layout.csr
            staging.add(layout.config, config_text.encode(), 0o644)
            _check_loads(staging.temporary(layout.config))
            if existing and layout.config.exists():
                backup = _free_backup_name(layout.config)
                os.link(layout.config, backup)
            result.written = staging.commit()
            # What belonged to a replaced key: a certificate that would no longer match, a CSR for it.
            stale = layout.certificate if identity is None else layout.csr
            if existing and stale.exists():
                stale.unlink()
                result.removed.append(stale)
            if backup is not None:
                result.notes.append(f"the previous settings file is kept as {backup}")
        except BaseException:
            staging.discard()
            if backup is not None:
                backup.unlink(missing_ok=True)
            raise
    result.notes.append(_key_ownership_note(layout.key, group, request.service_group, sync_user))
    if layout.root != Path(SYSTEM_ROOT) and not request.device_paths:
        result.notes.append(
            f"borne.toml names the files below {layout.root} (as this machine sees them); for a card or an image "
            "that boots on its own, run it again with --force --device-paths so it names /etc/borne/… instead"
        )
    return result


def _free_backup_name(config: Path) -> Path:
    """`borne.toml.replaced-<UTC time>`, with a counter when one was made in the same second."""
    stem = f"{config.name}.replaced-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    candidate, number = config.with_name(stem), 1
    while candidate.exists():
        number += 1
        candidate = config.with_name(f"{stem}-{number}")
    return candidate


def _installed_ca(path: Path) -> bytes | None:
    try:
        return pem_of(load_certificate(path.read_bytes(), path))
    except (OSError, IdentityError):
        return None  # unreadable or not a certificate: replacing it loses no trust


def _check_loads(config: Path) -> None:
    """The file must load with the real loaders of both device processes (a bug here must not reach a terminal)."""
    try:
        SyncSettings.load(config)
        KioskSettings.load(config)
    except SettingsError as error:
        raise EnrolError(f"the settings file would not load: {error}", "report this as a bug") from None


def install_certificate(root: Path, cert: Path, ca: Path | None, *, force: bool = False) -> EnrolResult:
    """Install the certificate the fleet signed for this terminal's CSR (and the fleet CA: replacing an
    installed, different CA needs `force`, since the terminal then trusts whatever that CA signs)."""
    layout = DeviceLayout(root)
    if not layout.config.exists() or not layout.key.exists():
        raise EnrolError(
            f"this terminal has no settings file or key under {layout.config.parent}",
            "run `borne provision init` first; it makes the key and the CSR to sign",
        )
    try:
        device_id = SyncSettings.load(layout.config).device.device_id
    except SettingsError as error:
        raise EnrolError(f"cannot read {layout.config}: {error}", "fix the settings file or run init --force") from None
    ca_path = ca or layout.ca
    if not ca_path.exists():
        raise EnrolError(f"no fleet CA certificate at {ca_path}", "give it with --ca FILE")
    files = CertificateFiles(cert=cert, key=layout.key, ca=ca_path)
    try:
        identity = _load_given_identity(files, device_id)
    except IdentityError as error:
        raise EnrolError(error.problem, error.fix) from None
    if ca is not None and layout.ca.exists() and not force:
        installed = _installed_ca(layout.ca)
        if installed is not None and installed != identity.ca_pem:
            raise EnrolError(
                f"{ca} is another fleet CA than the one installed in {layout.ca}: the terminal would trust "
                "whatever that CA signs, its broker included",
                "check that this is the fleet's CA; to replace it on purpose, pass --force",
            )
    result = EnrolResult()
    staging = _Staging()
    try:
        staging.add(layout.certificate, identity.cert_pem, 0o644)
        if ca is not None:
            staging.add(layout.ca, identity.ca_pem, 0o644)
        result.written = staging.commit()
    except BaseException:
        staging.discard()
        raise
    return result


__all__ = [
    "BrokerAddress",
    "CertificateFiles",
    "EnrolError",
    "EnrolRequest",
    "EnrolResult",
    "check_department",
    "check_device_id",
    "check_site_id",
    "enrol",
    "enrolled_as",
    "install_certificate",
    "parse_broker_url",
    "service_group_id",
    "settings_toml",
]
