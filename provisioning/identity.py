"""A terminal's TLS identity: its key, its certificate, the fleet CA, and the checks that tie them together.

Used when a certificate is installed (`borne provision init --cert`, `install-cert`) and by the
self-test: the certificate must be for this device id, match the key, be signed by the fleet CA,
be a client certificate, and be valid now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from borne_common.ids import IDENTIFIER_PATTERN
from provisioning.errors import ProvisioningError

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class IdentityError(ProvisioningError):
    """A key, certificate or CA that cannot be used."""


class CertificateExpired(IdentityError):
    """The certificate is past its end of validity."""


@dataclass(frozen=True)
class Identity:
    """Validated PEM contents, ready to be installed."""

    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes
    certificate: x509.Certificate

    @property
    def common_name(self) -> str:
        return common_name(self.certificate.subject) or ""


def common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def read_pem(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError:
        raise IdentityError(
            f"cannot read the {what} {path} (permission denied)", "run the command as root (sudo)"
        ) from None
    except OSError as error:
        raise IdentityError(
            f"cannot read the {what} {path} ({error.strerror})", f"check the path of the {what}"
        ) from None


def load_key(pem: bytes, where: Path | str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise IdentityError(
            f"the key {where} is encrypted with a passphrase",
            "give the unencrypted key (the sync agent starts unattended)",
        ) from None
    except ValueError:
        raise IdentityError(f"{where} is not a PEM private key", "give the device's private key file") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise IdentityError(f"the key {where} is not an EC key", "use a key made by `borne provision init` (EC P-256)")
    return key


def load_certificate(pem: bytes, where: Path | str, what: str = "certificate") -> x509.Certificate:
    """The first certificate in `pem`; a file that also holds a private key is refused (it would be
    installed world-readable: a fleet CA's key next to its certificate once was)."""
    if b"PRIVATE KEY-----" in pem:
        raise IdentityError(
            f"{where} holds a private key as well as the {what}",
            f"give a file with the {what} only (-----BEGIN CERTIFICATE-----); keep private keys off the terminal, "
            "and if this was the fleet CA's key, treat it as exposed",
        )
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise IdentityError(
            f"{where} is not a PEM certificate", f"give the {what} file (PEM, -----BEGIN CERTIFICATE-----)"
        ) from None


def _public_bytes(public_key: object) -> bytes:
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        return b""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def verify_identity(
    *,
    key_pem: bytes,
    cert_pem: bytes,
    ca_pem: bytes,
    device_id: str,
    where: dict[str, str] | None = None,
    now: datetime | None = None,
) -> Identity:
    """Check that the certificate is this device's, matches the key and chains to the CA; raise `IdentityError`."""
    where = where or {}
    key_name = where.get("key", "the device key")
    cert_name = where.get("cert", "the certificate")
    ca_name = where.get("ca", "the fleet CA certificate")
    key = load_key(key_pem, key_name)
    certificate = load_certificate(cert_pem, cert_name)
    ca = load_certificate(ca_pem, ca_name, "fleet CA certificate")
    if _public_bytes(certificate.public_key()) != _public_bytes(key.public_key()):
        raise IdentityError(
            f"{cert_name} does not match {key_name}",
            "install the certificate the fleet signed for this terminal's CSR (or the key it was made with)",
        )
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise IdentityError(
            f"{cert_name} is not signed by the fleet CA in {ca_name} "
            f"(its issuer: {certificate.issuer.rfc4514_string()})",
            "have the CSR signed with `borne provision fleet sign` by the CA the broker trusts, and install that CA",
        ) from None
    name = common_name(certificate.subject)
    if name != device_id:
        raise IdentityError(
            f"{cert_name} is for {name!r}, not for this terminal {device_id!r}",
            "install the certificate signed for this terminal's own CSR",
        )
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = None
    if usages is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise IdentityError(
            f"{cert_name} is not a client certificate", "sign the CSR with `borne provision fleet sign`"
        )
    moment = now or datetime.now(UTC)
    if moment < certificate.not_valid_before_utc:
        raise IdentityError(
            f"{cert_name} is valid only from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
            f"and the clock says {moment:%Y-%m-%d %H:%M} UTC",
            "set the clock (NTP: `timedatectl set-ntp true`) and check again",
        )
    if moment > certificate.not_valid_after_utc:
        raise CertificateExpired(
            f"{cert_name} expired on {certificate.not_valid_after_utc:%Y-%m-%d}",
            "have a new certificate signed (`borne provision fleet sign`) and install it",
        )
    # What is installed is written again from what was checked, never copied: nothing else in the files
    # (a second certificate, text, another key) reaches the terminal.
    return Identity(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        pem_of(certificate),
        pem_of(ca),
        certificate,
    )


def pem_of(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def make_request(key: ec.EllipticCurvePrivateKey, device_id: str, site_id: str) -> bytes:
    """A CSR whose common name is the device id (its MQTT identity) and whose OU is its site."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, site_id),
            x509.NameAttribute(NameOID.COMMON_NAME, device_id),
        ]
    )
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return request.public_bytes(serialization.Encoding.PEM)


def new_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key, pem


def valid_identifier(value: str) -> bool:
    return bool(_IDENTIFIER.fullmatch(value))  # `$` alone would let a trailing newline through
