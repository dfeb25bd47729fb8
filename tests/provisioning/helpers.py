"""Helpers for the provisioning tests: run `borne`, snapshot a file tree, make a small model bundle."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner, Result

from borne_cli.main import cli
from edge_models.bundles import FORMAT, MANIFEST, BundleFile, Manifest
from provisioning.fleet import init_ca, sign_bundle
from tests.support.ct2_model import tiny_model_bin

SITE, DEPARTMENT, DEVICE = "fs-23-01", "23", "borne-a"


def borne(*args: str | Path, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], input=input, catch_exceptions=False)


def init_args(root: Path, *extra: str | Path, broker: str = "mqtts://mqtt.example.fr:8883") -> list[str | Path]:
    return [
        "provision",
        "init",
        "--site",
        SITE,
        "--department",
        DEPARTMENT,
        "--device-id",
        DEVICE,
        "--broker",
        broker,
        "--root",
        root,
        *extra,
    ]


def tree(root: Path) -> dict[str, tuple[int, str]]:
    """Every path below `root` with its mode and (for files) content hash: compared before/after a refusal."""
    if not root.exists():
        return {}
    snapshot = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        snapshot[str(path.relative_to(root))] = (stat.st_mode, digest)
    return snapshot


def make_bundle(directory: Path, *, with_manifest: bool = True, signed_by: Path | None = None) -> Manifest:
    """A small bundle with the files a Whisper bundle must have (not a real model: for install tests);
    Borne does not pin its model, so a stick install needs it signed by a fleet CA (`signed_by`, a CA
    directory, made if absent)."""
    directory.mkdir(parents=True)
    contents = {
        "model.bin": tiny_model_bin(),
        "config.json": b'{"alignment_heads": []}',
        "tokenizer.json": b"{}",
        "vocabulary.json": b'["a", "b"]',
    }
    files = []
    for name, data in contents.items():
        (directory / name).write_bytes(data)
        files.append(BundleFile(name, hashlib.sha256(data).hexdigest(), len(data)))
    manifest = Manifest("whisper-base", tuple(files), "test", FORMAT)
    if with_manifest:
        (directory / MANIFEST).write_text(manifest.to_json())
    if signed_by is not None and with_manifest:
        if not (signed_by / "ca.key").exists():
            init_ca(signed_by)
        sign_bundle(signed_by, directory)
    return manifest
