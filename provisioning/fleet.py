"""The central side's minimal PKI: create the fleet CA once, sign the terminals' CSRs, keep the fleet list;
and the platform's own CA, which signs the ingest consumers' certificates only.

The CA key never leaves the operator's machine; a terminal sends only its CSR (common name: the
device id; organisational unit: its site id, as `borne provision init` writes it). The two CAs are
kept apart because the broker tells a platform certificate from a terminal's by the CA it chains to
(each has its own listener): every technician laptop doing `fleet sign` holds the fleet CA, only the
platform's operator holds the platform CA. A CA directory says which it is in its `role` file.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from borne_common.ids import is_platform_identity
from edge_models.bundles import MANIFEST, SIGNATURE, BundleError, check_claimed_model, read_manifest, verify_bundle
from provisioning.broker import FleetDevice, read_fleet
from provisioning.errors import ProvisioningError
from provisioning.files import write_atomically
from provisioning.identity import common_name, load_certificate, load_key, valid_identifier
from provisioning.pki import KeyAndCertificate, create_ca, issue, revocation_list, sign_csr

CA_KEY = "ca.key"
CA_CERT = "ca.crt"
CRL = "crl.pem"  # the revoked certificates, for the broker's `crlfile`
ISSUED = "issued.csv"  # every certificate the CA signed: serial,identity,not_after
REVOKED = "revoked.csv"  # serial,identity,revoked_at
ROLE = "role"  # "fleet" or "platform"; a CA directory without it (made before the platform CA existed) is the fleet's
FLEET, PLATFORM = "fleet", "platform"
DEFAULT_DAYS = 825


class FleetError(ProvisioningError):
    """A fleet operation refused; nothing was written."""


def init_ca(
    out_dir: Path, common_name: str = "Borne fleet CA", days: int = 3650, role: str = FLEET
) -> tuple[Path, Path]:
    """Create the fleet CA (or with `role` PLATFORM, the platform's CA) in `out_dir`: (key 0600,
    certificate 0644). Refuses to replace an existing CA."""
    key_path, cert_path = out_dir / CA_KEY, out_dir / CA_CERT
    present = [str(path) for path in (key_path, cert_path) if path.exists()]
    if present:
        raise FleetError(
            f"a CA already exists here ({', '.join(present)}); replacing it would orphan every terminal it signed",
            "keep using it, or choose another --out directory for a new fleet",
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise FleetError(f"{out_dir} is not a directory", "choose a directory for --out")
    ca = create_ca(common_name, days=days)
    if not out_dir.exists():
        out_dir.mkdir(parents=True, mode=0o700)
    write_atomically(key_path, ca.key_pem, 0o600)
    try:
        write_atomically(cert_path, ca.cert_pem, 0o644)
    except BaseException:
        key_path.unlink()  # a key without its certificate would block the next attempt
        raise
    write_atomically(out_dir / CRL, revocation_list(ca, []), 0o644)
    write_atomically(out_dir / ROLE, f"{role}\n".encode(), 0o644)
    return key_path, cert_path


def ca_role(ca_dir: Path) -> str:
    """FLEET or PLATFORM, as `init_ca` wrote it in the directory (FLEET when absent: an older fleet CA)."""
    try:
        role = (ca_dir / ROLE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return FLEET
    except (OSError, UnicodeDecodeError) as error:
        raise FleetError(f"cannot read {ca_dir / ROLE} ({error})", "restore the CA directory from its backup") from None
    if role not in (FLEET, PLATFORM):
        raise FleetError(f"{ca_dir / ROLE} says {role!r}", f"it must say {FLEET} or {PLATFORM}")
    return role


_WRONG_CA = {
    FLEET: (
        "{dir} is the platform's CA, which signs the ingest consumers' certificates only (a terminal signed by it "
        "would be refused by the terminals' listener)",
        "give the fleet CA's directory (`borne provision fleet ca init`) as --ca-dir",
    ),
    PLATFORM: (
        "{dir} is the fleet CA: a platform certificate it signs would be refused by the platform's listener, and "
        "every technician holding that CA could make one",
        "make the platform its own CA once with `borne provision fleet platform-ca init --out fleet/platform-ca` "
        "and give that directory as --ca-dir",
    ),
}


def load_ca(ca_dir: Path, role: str | None = FLEET) -> KeyAndCertificate:
    """The CA of `ca_dir` (as `init_ca` wrote it), with its key checked against its certificate, and,
    unless `role` is None, refused if it is not that CA (the fleet's or the platform's)."""
    if role is not None and ca_role(ca_dir) != role:
        problem, fix = _WRONG_CA[role]
        raise FleetError(problem.format(dir=ca_dir), fix)
    try:
        key_pem = (ca_dir / CA_KEY).read_bytes()
        cert_pem = (ca_dir / CA_CERT).read_bytes()
    except OSError as error:
        raise FleetError(
            f"cannot read the CA in {ca_dir} ({error.filename}: {error.strerror})",
            "give the directory made by `borne provision fleet ca init` as --ca-dir",
        ) from None
    key = load_key(key_pem, ca_dir / CA_KEY)
    certificate = load_certificate(cert_pem, ca_dir / CA_CERT)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, spki) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ):
        raise FleetError(f"{ca_dir / CA_KEY} does not belong to {ca_dir / CA_CERT}", "restore the CA's own key")
    return KeyAndCertificate(key_pem, cert_pem)


@dataclass(frozen=True)
class SigningRequest:
    path: Path
    pem: bytes
    device_id: str
    site_id: str | None


@dataclass(frozen=True)
class Signed:
    device_id: str
    site_id: str | None
    certificate: Path


def read_request(path: Path) -> SigningRequest:
    """A terminal's CSR, with its signature and its identifiers checked."""
    try:
        pem = path.read_bytes()
    except OSError as error:
        raise FleetError(
            f"cannot read {path} ({error.strerror})", "give the device.csr file copied from the terminal"
        ) from None
    try:
        request = x509.load_pem_x509_csr(pem)
    except ValueError:
        raise FleetError(
            f"{path} is not a certificate signing request (PEM)",
            "give the device.csr written by `borne provision init` on the terminal",
        ) from None
    if not request.is_signature_valid:
        raise FleetError(
            f"{path}: the CSR's signature is not valid (altered in transit?)", "copy it from the terminal again"
        )
    device_id = common_name(request.subject)
    if device_id is None or not valid_identifier(device_id):
        raise FleetError(
            f"{path}: common name {device_id!r} is not a valid device id (letters, digits, '-' or '_')",
            "make the CSR again on the terminal with `borne provision init --force --device-id ID`",
        )
    if is_platform_identity(device_id):
        raise FleetError(
            f"{path}: device id {device_id!r} is reserved to the central platform: signed, it would read every "
            "site's batches and write every terminal's acks",
            "make the CSR again on the terminal with `borne provision init --force --device-id ID` and another ID",
        )
    units = request.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    site_id = str(units[0].value) if units else None
    if site_id is not None and not valid_identifier(site_id):
        raise FleetError(f"{path}: site id {site_id!r} (OU) is not valid", "make the CSR again with a valid --site")
    return SigningRequest(path, pem, device_id, site_id)


def sign_requests(
    ca_dir: Path,
    csr_paths: list[Path],
    out_dir: Path,
    *,
    fleet_csv: Path | None = None,
    days: int = DEFAULT_DAYS,
) -> list[Signed]:
    """Sign every CSR into `out_dir/<device>.crt`; with `fleet_csv`, add the terminals to the fleet list.

    Every CSR (and the fleet list) is checked before the first certificate is written.
    """
    ca = load_ca(ca_dir)
    requests = [read_request(path) for path in csr_paths]
    seen: dict[str, Path] = {}
    for request in requests:
        if request.device_id in seen:
            raise FleetError(
                f"{seen[request.device_id]} and {request.path} are both for device {request.device_id}",
                "sign one CSR per terminal",
            )
        seen[request.device_id] = request.path
    fleet_text = _fleet_with(fleet_csv, requests) if fleet_csv is not None else None
    if out_dir.exists() and not out_dir.is_dir():
        raise FleetError(f"{out_dir} is not a directory", "choose a directory for --out")
    certificates = [(request, sign_csr(ca, request.pem, days=days)) for request in requests]
    out_dir.mkdir(parents=True, exist_ok=True)
    _record_issued(ca_dir, [cert_pem for _request, cert_pem in certificates])
    signed = []
    for request, cert_pem in certificates:
        target = out_dir / f"{request.device_id}.crt"
        write_atomically(target, cert_pem, 0o644)
        signed.append(Signed(request.device_id, request.site_id, target))
    if fleet_csv is not None and fleet_text is not None:
        write_atomically(fleet_csv, fleet_text.encode(), 0o644)
    return signed


def server_certificate(ca_dir: Path, names: list[str], out_dir: Path, days: int = DEFAULT_DAYS) -> tuple[Path, Path]:
    """The broker's TLS certificate for `names` (DNS names or IP addresses), signed by the CA of `ca_dir`
    (the fleet's, or the platform's for the platform listener): (certificate, key 0600). Refuses to
    replace an existing one."""
    if not names:
        raise FleetError(
            "no name given for the broker", "give the host name the terminals connect to, e.g. --name mqtt.example.fr"
        )
    cert_path, key_path = out_dir / "server.crt", out_dir / "server.key"
    present = [str(path) for path in (cert_path, key_path) if path.exists()]
    if present:
        raise FleetError(
            f"a server certificate already exists ({', '.join(present)})", "choose another --out directory"
        )
    # Either CA: the fleet CA's for the terminals' listener, the platform CA's for the platform's one
    # (then a fleet-CA holder cannot pose as the broker to the ingest consumers either).
    pair = issue(load_ca(ca_dir, role=None), names[0], server_names=names, days=days)
    _record_issued(ca_dir, [pair.cert_pem])
    return _write_pair(pair, cert_path, key_path)


def platform_certificate(ca_dir: Path, name: str, out_dir: Path, days: int = DEFAULT_DAYS) -> tuple[Path, Path]:
    """A client certificate for one of the platform's consumers (`ingest-1`…), signed by the platform's
    CA (`ca_dir`, made with role PLATFORM): (NAME.crt, NAME.key 0600). Only reserved names: a terminal
    can never be enrolled under them."""
    if not is_platform_identity(name) or not valid_identifier(name):
        raise FleetError(
            f"{name!r} is not a platform name",
            "use a name starting with 'ingest' or 'platform' (letters, digits, '-' or '_'), e.g. ingest-1",
        )
    cert_path, key_path = out_dir / f"{name}.crt", out_dir / f"{name}.key"
    present = [str(path) for path in (cert_path, key_path) if path.exists()]
    if present:
        raise FleetError(f"a certificate for {name} already exists ({', '.join(present)})", "choose another --out")
    pair = issue(load_ca(ca_dir, PLATFORM), name, days=days)
    _record_issued(ca_dir, [pair.cert_pem])
    return _write_pair(pair, cert_path, key_path)


def sign_bundle(ca_dir: Path, bundle_dir: Path) -> Path:
    """The CA's signature of the bundle's manifest.json, written to BUNDLE/manifest.sig (base64 DER ECDSA)."""
    ca = load_ca(ca_dir)
    try:
        manifest = read_manifest(bundle_dir)
        check_claimed_model(manifest, bundle_dir)
        verify_bundle(bundle_dir, full=True)
        data = (bundle_dir / MANIFEST).read_bytes()
    except BundleError as error:
        raise FleetError(error.problem, "sign a complete bundle, as `borne models install` writes it") from None
    key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FleetError(f"the CA key in {ca_dir} is not an EC key", "use a CA made by `fleet ca init`")
    target = bundle_dir / SIGNATURE
    write_atomically(target, base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))) + b"\n", 0o644)
    return target


# -- revocation -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revocation:
    identity: str
    serial: int


@dataclass(frozen=True)
class Revoked:
    revoked: list[Revocation]  # newly revoked (already revoked ones are not repeated)
    crl: Path
    removed_from_fleet: list[str]


def _read_rows(path: Path, columns: list[str]) -> list[dict[str, str]]:
    if not path.exists():
        return []
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FleetError(f"cannot read {path} ({error})", f"restore {path} from the CA's backup") from None
    if rows and set(columns) - set(rows[0]):
        raise FleetError(f"{path} lacks the columns {','.join(columns)}", f"restore {path} from the CA's backup")
    return rows


def _write_rows(path: Path, columns: list[str], rows: Iterable[dict[str, str]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, out.getvalue().encode(), 0o644)


_ISSUED_COLUMNS = ["serial", "identity", "not_after"]
_REVOKED_COLUMNS = ["serial", "identity", "revoked_at"]


def _record_issued(ca_dir: Path, cert_pems: Sequence[bytes]) -> None:
    """Add certificates to the CA's register, so that `revoke` finds them by name."""
    rows = _read_rows(ca_dir / ISSUED, _ISSUED_COLUMNS)
    for pem in cert_pems:
        certificate = x509.load_pem_x509_certificate(pem)
        rows.append(
            {
                "serial": format(certificate.serial_number, "x"),
                "identity": common_name(certificate.subject) or "",
                "not_after": certificate.not_valid_after_utc.isoformat(),
            }
        )
    _write_rows(ca_dir / ISSUED, _ISSUED_COLUMNS, rows)


def _certificate_of_ca(path: Path, ca: KeyAndCertificate) -> x509.Certificate:
    try:
        certificate = load_certificate(path.read_bytes(), path)
    except OSError as error:
        raise FleetError(f"cannot read {path} ({error.strerror})", "give the terminal's .crt file") from None
    try:
        certificate.verify_directly_issued_by(ca.certificate)
    except (ValueError, TypeError, InvalidSignature):
        raise FleetError(f"{path} was not signed by this CA", "give a certificate this --ca-dir signed") from None
    return certificate


def revoke(
    ca_dir: Path,
    identities: Sequence[str],
    *,
    cert_files: Sequence[Path] = (),
    fleet_csv: Path | None = None,
    now: datetime | None = None,
) -> Revoked:
    """Revoke every certificate the CA issued to `identities` (found in its register) and the
    `cert_files`; write the CA's CRL again, and take the terminals off `fleet_csv`. Works on the
    platform's CA too (a consumer's certificate, for the platform listener's list).

    Everything is checked before anything is written."""
    ca = load_ca(ca_dir, role=None)
    issued = _read_rows(ca_dir / ISSUED, _ISSUED_COLUMNS)
    wanted: list[Revocation] = []
    for identity in identities:
        if not valid_identifier(identity):
            raise FleetError(f"{identity!r} is not a device id", "give the terminal's device id, e.g. borne-23-001-a")
        found = [Revocation(identity, int(row["serial"], 16)) for row in issued if row["identity"] == identity]
        if not found:
            raise FleetError(
                f"no certificate issued to {identity} is on record in {ca_dir / ISSUED} (certificates signed "
                "before the register existed are not in it)",
                f"give the terminal's certificate with --cert, e.g. --cert fleet/signed/{identity}.crt",
            )
        wanted += found
    for path in cert_files:
        certificate = _certificate_of_ca(path, ca)
        wanted.append(Revocation(common_name(certificate.subject) or "", certificate.serial_number))
    if not wanted:
        raise FleetError("nothing to revoke", "name the terminal(s) to cut off, or give --cert FILE")
    devices = _fleet_without(fleet_csv, {r.identity for r in wanted}) if fleet_csv is not None else None
    rows = _read_rows(ca_dir / REVOKED, _REVOKED_COLUMNS)
    known = {int(row["serial"], 16) for row in rows}
    when = (now or datetime.now(UTC)).replace(microsecond=0)
    new = []
    for revocation in wanted:
        if revocation.serial not in known:
            known.add(revocation.serial)
            new.append(revocation)
            rows.append(
                {
                    "serial": format(revocation.serial, "x"),
                    "identity": revocation.identity,
                    "revoked_at": when.isoformat(),
                }
            )
    crl = revocation_list(ca, [(int(row["serial"], 16), datetime.fromisoformat(row["revoked_at"])) for row in rows])
    _write_rows(ca_dir / REVOKED, _REVOKED_COLUMNS, rows)
    write_atomically(ca_dir / CRL, crl, 0o644)
    removed: list[str] = []
    if fleet_csv is not None and devices is not None:
        kept, removed = devices
        write_atomically(fleet_csv, _fleet_text(kept).encode(), 0o644)
    return Revoked(new, ca_dir / CRL, removed)


@dataclass(frozen=True)
class Expiring:
    identity: str
    serial: int
    not_after: datetime


def expiring(ca_dir: Path, within_days: int, *, now: datetime | None = None) -> list[Expiring]:
    """The certificates of the CA's register, not revoked, that expire within `within_days` (or already
    have), soonest first: what the operator must renew (`fleet sign` again on the terminal's CSR)."""
    load_ca(ca_dir, role=None)
    revoked = {int(row["serial"], 16) for row in _read_rows(ca_dir / REVOKED, _REVOKED_COLUMNS)}
    limit = (now or datetime.now(UTC)) + timedelta(days=within_days)
    found = []
    for row in _read_rows(ca_dir / ISSUED, _ISSUED_COLUMNS):
        serial = int(row["serial"], 16)
        not_after = datetime.fromisoformat(row["not_after"])
        if serial not in revoked and not_after <= limit:
            found.append(Expiring(row["identity"], serial, not_after))
    # A terminal renewed since holds a later certificate under the same name: only its latest counts.
    latest: dict[str, datetime] = {}
    for row in _read_rows(ca_dir / ISSUED, _ISSUED_COLUMNS):
        if int(row["serial"], 16) not in revoked:
            when = datetime.fromisoformat(row["not_after"])
            latest[row["identity"]] = max(when, latest.get(row["identity"], when))
    return sorted((item for item in found if latest[item.identity] == item.not_after), key=lambda item: item.not_after)


def _fleet_without(fleet_csv: Path, identities: set[str]) -> tuple[list[FleetDevice], list[str]]:
    devices = _listed(fleet_csv)
    kept = [device for device in devices if device.device_id not in identities]
    return kept, [device.device_id for device in devices if device.device_id in identities]


def _write_pair(pair: KeyAndCertificate, cert_path: Path, key_path: Path) -> tuple[Path, Path]:
    """The key (0600) then the certificate; no key is left without its certificate."""
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(key_path, pair.key_pem, 0o600)
    try:
        write_atomically(cert_path, pair.cert_pem, 0o644)
    except BaseException:
        key_path.unlink()
        raise
    return cert_path, key_path


def _fleet_with(fleet_csv: Path, requests: list[SigningRequest]) -> str:
    """The fleet CSV with the requests' terminals added (a terminal already listed at the same site is kept)."""
    devices = _listed(fleet_csv)
    known = {device.device_id: device.site_id for device in devices}
    for request in requests:
        if request.site_id is None:
            raise FleetError(
                f"{request.path} names no site (no OU in the CSR), so it cannot be added to {fleet_csv}",
                "make the CSR with `borne provision init` (it writes the site), or sign without --fleet",
            )
        listed = known.get(request.device_id)
        if listed is not None and listed != request.site_id:
            raise FleetError(
                f"device {request.device_id} is listed at site {listed} in {fleet_csv}, the CSR says {request.site_id}",
                "correct the fleet list or the terminal's site before signing",
            )
        if listed is None:
            devices.append(FleetDevice(request.site_id, request.device_id))
            known[request.device_id] = request.site_id
    return _fleet_text(devices)


def _listed(fleet_csv: Path) -> list[FleetDevice]:
    """The terminals of the fleet CSV (none when it does not exist yet)."""
    try:
        return read_fleet(fleet_csv) if fleet_csv.exists() else []
    except ValueError as error:
        raise FleetError(str(error), f"fix {fleet_csv} (columns site_id,device_id)") from None


def _fleet_text(devices: list[FleetDevice]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["site_id", "device_id"])
    for device in devices:
        writer.writerow([device.site_id, device.device_id])
    return out.getvalue()


__all__ = [
    "CA_CERT",
    "CA_KEY",
    "CRL",
    "FLEET",
    "ISSUED",
    "PLATFORM",
    "REVOKED",
    "ROLE",
    "Expiring",
    "FleetError",
    "Revocation",
    "Revoked",
    "Signed",
    "ca_role",
    "expiring",
    "init_ca",
    "load_ca",
    "platform_certificate",
    "read_request",
    "revoke",
    "server_certificate",
    "sign_bundle",
    "sign_requests",
]
