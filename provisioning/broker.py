"""Mosquitto configuration for the central side: two TLS listeners, client certificates, rights.

The terminals' listener trusts only the fleet CA (every technician's `fleet sign` holds it); the
platform's listener, on its own port, trusts only the platform CA (kept by the platform's operator).
Mosquitto 2.0 can check neither an OU nor an extended key usage, so the CA a certificate chains to is
the only thing that tells a platform certificate from a device one; with `per_listener_settings true`
each listener has its own rights, and the platform's rights exist on the platform listener only. A
certificate named like the platform but signed with the fleet CA connects to the terminals' listener
only, where its name has no right at all.

A certificate's common name is its MQTT identity (`use_identity_as_username`). On the terminals'
listener it is also the client id (`use_username_as_clientid`): no terminal takes another's session.
Client ids are one namespace across Mosquitto's listeners, so the platform's clients choose theirs
(`[ingest] client_id`): one no fleet-CA holder can guess, or a certificate forged with the fleet CA and
named like the consumer would take the consumer's session from the terminals' listener. On the
terminals' listener the dynamic-security plugin lets a device publish only its own batch and status
topics and subscribe to and read only its own status (`borne provision check` reads its Status back),
ack and config topics. On the platform's listener an ACL file
lets the platform's identities (`ingest…`, `platform…`, which no terminal may take) read every batch
and status, shared subscriptions included, and write every ack and configuration. (Mosquitto 2.0 loads
the dynamic-security plugin once: two listeners cannot each have their own file of it.)
"""

from __future__ import annotations

import csv
import grp
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from borne_common.ids import IDENTIFIER_PATTERN, is_platform_identity
from provisioning.files import write_atomically
from sync_agent.contract import topic

PLATFORM_ROLE = "platform"

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


@dataclass(frozen=True)
class FleetDevice:
    site_id: str
    device_id: str


def read_fleet(path: Path) -> list[FleetDevice]:
    """The fleet list: a CSV file with the columns `site_id,device_id` (a header line)."""
    devices = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"site_id", "device_id"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected a CSV header with the columns site_id,device_id")
        for line, row in enumerate(reader, start=2):
            device = FleetDevice(row["site_id"].strip(), row["device_id"].strip())
            for value in (device.site_id, device.device_id):
                if not _IDENTIFIER.fullmatch(value):
                    raise ValueError(f"{path}:{line}: {value!r} is not a valid identifier (letters, digits, - or _)")
            if is_platform_identity(device.device_id):
                raise ValueError(
                    f"{path}:{line}: device id {device.device_id!r} is reserved to the central platform "
                    "(names starting with 'ingest' or 'platform'): enrol that terminal under another id"
                )
            devices.append(device)
    seen: set[str] = set()
    for device in devices:
        if device.device_id in seen:
            raise ValueError(f"{path}: device {device.device_id} appears twice")
        seen.add(device.device_id)
    return devices


def _check_platform_identities(platform_identities: Sequence[str]) -> None:
    for identity in platform_identities:
        if not is_platform_identity(identity) or not _IDENTIFIER.fullmatch(identity):
            raise ValueError(
                f"platform identity {identity!r} must start with 'ingest' or 'platform' "
                "(names no terminal may take; see `borne provision init --device-id`)"
            )


def dynamic_security(devices: Iterable[FleetDevice]) -> str:
    """The dynamic-security plugin's file for the terminals' listener: one role per terminal (its own
    topics), and nothing for anyone else, a name like the platform's included.

    Unlike an `acl_file`, the plugin checks subscriptions (Mosquitto 2.0 grants any subscription under
    an ACL file and filters at delivery, so a terminal could join ingest's share group and swallow its
    share of the batches). What is not listed is denied: publish, receive and subscribe. The file holds
    no secret: identities come from client certificates (or the broker's `password_file`).
    """
    devices = list(devices)
    for device in devices:
        if is_platform_identity(device.device_id):
            raise ValueError(
                f"device {device.device_id} is named like the platform (names starting with 'ingest' or "
                "'platform' are reserved): remove it from the fleet list and enrol the terminal again under "
                "another id"
            )

    def rule(kind: str, topic_filter: str) -> dict[str, object]:
        return {"acltype": kind, "topic": topic_filter, "priority": 0, "allow": True}

    roles: list[dict[str, object]] = []
    clients: list[dict[str, object]] = []
    for device in devices:
        own = {kind: topic(device.site_id, device.device_id, kind) for kind in ("batch", "status", "ack", "config")}
        rules = [
            rule("publishClientSend", own["batch"]),
            rule("publishClientSend", own["status"]),
            *(rule("subscribeLiteral", own[kind]) for kind in ("status", "ack", "config")),
            *(rule("publishClientReceive", own[kind]) for kind in ("status", "ack", "config")),
        ]
        role = f"device-{device.device_id}"
        roles.append({"rolename": role, "acls": rules})
        clients.append({"username": device.device_id, "textName": device.site_id, "roles": [{"rolename": role}]})
    document = {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": roles,
    }
    return json.dumps(document, indent=1) + "\n"


def platform_acl(platform_identities: Sequence[str]) -> str:
    """The ACL file of the platform's listener: each platform identity reads every batch and status
    (shared subscriptions included: the ACL is checked on delivery) and writes every ack and
    configuration. Only clients with a platform-CA certificate reach this listener; an identity not
    named here (another certificate of that CA) has no right."""
    _check_platform_identities(platform_identities)
    if not platform_identities:
        raise ValueError("no platform identity: name the ingest consumers' certificates (e.g. ingest)")
    every = "borne/v1/+/+/"
    lines = ["# Generated by `borne provision fleet broker-config`: the platform listener's rights.", ""]
    for identity in platform_identities:
        lines += [
            f"user {identity}",
            f"topic read {every}batch",
            f"topic read {every}status",
            f"topic write {every}ack",
            f"topic write {every}config",
            "",
        ]
    return "\n".join(lines)


# TLS 1.2 suites with forward secrecy and authenticated encryption only (no CBC, no RSA key exchange);
# the fleet's keys are EC P-256, RSA ones are accepted for a broker certificate from elsewhere.
TLS12_CIPHERS = ":".join(
    f"ECDHE-{kind}-{suite}"
    for kind in ("ECDSA", "RSA")
    for suite in ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "CHACHA20-POLY1305")
)


@dataclass(frozen=True)
class BrokerTls:
    """The broker's copies of its TLS files, in a directory the broker's own user can read."""

    cafile: Path
    certfile: Path
    keyfile: Path
    crlfile: Path | None
    platform_cafile: Path
    platform_crlfile: Path | None
    platform_certfile: Path | None = None
    platform_keyfile: Path | None = None


def copy_tls_files(
    tls_dir: Path,
    *,
    ca: Path,
    cert: Path,
    key: Path,
    crl: Path | None,
    platform_ca: Path,
    platform_crl: Path | None = None,
    platform_cert: Path | None = None,
    platform_key: Path | None = None,
    group: str | None,
) -> BrokerTls:
    """Copy the broker's TLS files into `tls_dir`: Mosquitto reads them after it has dropped to its own
    user, which can read neither an offline CA directory (0700) nor a root-only key. Certificates and
    the lists are world-readable; the key is 0640 for `group` (mosquitto's), or 0600 without one.
    Each file is parsed first, so a wrong path or a key in the place of a certificate stops here, and
    a platform CA that is the fleet CA (which would give the platform's rights back to every holder of
    the fleet CA) is refused."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    def read(path: Path, option: str, parse: Callable[[bytes], object]) -> bytes:
        try:
            data = path.read_bytes()
            parse(data)
        except OSError as error:
            raise ValueError(f"cannot read {option} {path} ({error.strerror})") from None
        except ValueError:
            raise ValueError(f"{option} {path} is not what it should be (PEM {option[2:]})") from None
        return data

    contents = {
        "ca.crt": read(ca, "--ca", x509.load_pem_x509_certificate),
        "platform-ca.crt": read(platform_ca, "--platform-ca", x509.load_pem_x509_certificate),
        "server.crt": read(cert, "--cert", x509.load_pem_x509_certificate),
        "server.key": read(key, "--key", lambda data: serialization.load_pem_private_key(data, password=None)),
    }
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    fleet_ca_key, platform_ca_key = (
        x509.load_pem_x509_certificate(contents[name]).public_key().public_bytes(serialization.Encoding.DER, spki)
        for name in ("ca.crt", "platform-ca.crt")
    )
    if fleet_ca_key == platform_ca_key:
        raise ValueError(
            f"--platform-ca {platform_ca} is the fleet CA itself: every technician holding the fleet CA could "
            "then make a platform certificate; make the platform its own CA with `borne provision fleet "
            "platform-ca init` and give its ca.crt"
        )
    if (platform_cert is None) != (platform_key is None):
        raise ValueError("--platform-cert and --platform-key go together: give both, or neither")
    if platform_cert is not None and platform_key is not None:
        contents["platform-server.crt"] = read(platform_cert, "--platform-cert", x509.load_pem_x509_certificate)
        contents["platform-server.key"] = read(
            platform_key, "--platform-key", lambda data: serialization.load_pem_private_key(data, password=None)
        )
    if crl is not None:
        contents["crl.pem"] = read(crl, "--crl", x509.load_pem_x509_crl)
    if platform_crl is not None:
        contents["platform-crl.pem"] = read(platform_crl, "--platform-crl", x509.load_pem_x509_crl)
    gid = None
    if group is not None and os.geteuid() == 0:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            gid = None
    tls_dir.mkdir(parents=True, exist_ok=True)
    tls_dir.chmod(0o755)
    for name, data in contents.items():
        if not name.endswith(".key"):
            write_atomically(tls_dir / name, data, 0o644)
        elif gid is not None:
            write_atomically(tls_dir / name, data, 0o640, (0, gid))
        else:
            write_atomically(tls_dir / name, data, 0o600)
    return BrokerTls(
        tls_dir / "ca.crt",
        tls_dir / "server.crt",
        tls_dir / "server.key",
        tls_dir / "crl.pem" if crl else None,
        tls_dir / "platform-ca.crt",
        tls_dir / "platform-crl.pem" if platform_crl else None,
        tls_dir / "platform-server.crt" if platform_cert else None,
        tls_dir / "platform-server.key" if platform_key else None,
    )


def dynamic_security_plugin() -> Path:
    """Debian's path of the plugin (the package mosquitto ships it), by architecture."""
    found = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so")) + sorted(
        Path("/usr/lib").glob("mosquitto_dynamic_security.so")
    )
    if not found:
        raise FileNotFoundError(
            "mosquitto_dynamic_security.so not found under /usr/lib: install the Debian package mosquitto "
            "(2.0 or later), or give its path with --plugin"
        )
    return found[0]


DEFAULT_PLATFORM_PORT = 8884
DEFAULT_PLATFORM_BIND = "127.0.0.1"  # ingest on the broker's host; another address for a consumer elsewhere


@dataclass(frozen=True)
class PlatformListener:
    """The platform's listener: its own port, trusting only the platform CA, rights from an ACL file."""

    port: int
    cafile: Path
    acl_file: Path
    bind_address: str = DEFAULT_PLATFORM_BIND
    crlfile: Path | None = None
    password_file: Path | None = None
    certfile: Path | None = None  # its own server certificate (the platform CA's); None: the terminals' one
    keyfile: Path | None = None


def mosquitto_conf(
    *,
    port: int,
    cafile: Path,
    certfile: Path,
    keyfile: Path,
    dynsec_file: Path,
    platform: PlatformListener,
    persistence_dir: Path | None,
    bind_address: str = "0.0.0.0",  # noqa: S104 — a broker listens for the fleet
    run_as_user: str | None = None,
    log_file: Path | None = None,
    max_packet_bytes: int = 1024 * 1024,
    password_file: Path | None = None,
    plugin: Path | None = None,
    crlfile: Path | None = None,
) -> str:
    """The broker's configuration: the terminals' listener (`port`, fleet CA, dynamic-security rights)
    and the platform's (`platform.port`, platform CA, ACL file), each with its own security settings
    (`per_listener_settings true`: no security option may stand before the first listener, or Mosquitto
    opens a default listener on 1883 for it). On the terminals' listener each client's id is forced to its
    identity (`use_username_as_clientid`), so no certificate can take another's session; on the platform's,
    its clients give their own (`[ingest] client_id`). The platform's listener
    presents the terminals' server certificate unless it has its own (`platform.certfile`). With
    `password_file`, clients log in with a user name and password over TLS instead of presenting a
    certificate (the rights then name those users)."""

    def tls(
        cafile: Path,
        crlfile: Path | None,
        password_file: Path | None,
        server: tuple[Path, Path],
        *,
        forced_client_id: bool,
    ) -> list[str]:
        return [
            "protocol mqtt",
            "allow_anonymous false",
            f"cafile {cafile}",
            f"certfile {server[0]}",
            f"keyfile {server[1]}",
            *(
                ["require_certificate false", f"password_file {password_file}"]
                if password_file
                else ["require_certificate true", "use_identity_as_username true"]
            ),
            *([f"crlfile {crlfile}"] if crlfile else []),
            *(["use_username_as_clientid true"] if forced_client_id else []),
            "tls_version tlsv1.2",  # the lowest version accepted; TLS 1.3 is negotiated where both sides have it
            f"ciphers {TLS12_CIPHERS}",
        ]

    if platform.port == port:
        raise ValueError(f"the platform's listener needs a port of its own (both are {port})")
    lines = [
        "# Generated by `borne provision fleet broker-config`.",
        "per_listener_settings true",
        f"max_packet_size {max_packet_bytes}",
        "max_inflight_messages 100",
        "set_tcp_nodelay true",  # Acks are small and latency-bound: no Nagle delay
        "max_queued_messages 10000",
        "persistent_client_expiration 90d",
    ]
    if run_as_user:
        lines.append(f"user {run_as_user}")
    if persistence_dir is not None:
        lines += ["persistence true", f"persistence_location {persistence_dir}/", "autosave_interval 1"]
    else:
        lines.append("persistence false")
    lines += [
        f"log_dest file {log_file}" if log_file else "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type subscribe",
        "connection_messages true",
        "",
        "# The terminals: fleet-CA certificates, each device's own topics (dynamic-security plugin).",
        f"listener {port} {bind_address}",
        *tls(cafile, crlfile, password_file, (certfile, keyfile), forced_client_id=True),
        f"plugin {plugin or dynamic_security_plugin()}",
        f"plugin_opt_config_file {dynsec_file}",
        "",
        "# The platform: platform-CA certificates only; its rights exist on this listener alone.",
        f"listener {platform.port} {platform.bind_address}",
        *tls(
            platform.cafile,
            platform.crlfile,
            platform.password_file,
            (platform.certfile or certfile, platform.keyfile or keyfile),
            forced_client_id=False,  # the platform's clients pick unguessable ids (module docstring)
        ),
        f"acl_file {platform.acl_file}",
        "",
    ]
    return "\n".join(lines)
