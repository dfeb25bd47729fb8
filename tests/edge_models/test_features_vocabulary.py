"""Whisper's features and token text, computed without faster-whisper's package, equal what it computes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_models.audio import read_wav
from edge_models.features import log_mel, mel_filters
from edge_models.vocabulary import Vocabulary
from tests.edge_models.conftest import speech_clips


def test_log_mel_equals_faster_whispers_features() -> None:
    from faster_whisper.feature_extractor import FeatureExtractor

    reference = FeatureExtractor()
    np.testing.assert_allclose(mel_filters(), reference.mel_filters, atol=1e-7)
    rng = np.random.default_rng(3)
    clip = read_wav(speech_clips()[0]["path"])
    for audio in (clip, clip[:12_345], (rng.standard_normal(30 * 16000) * 0.1).astype(np.float32)):
        ours, theirs = log_mel(audio), reference(audio)
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_token_text_equals_the_full_tokenizers(whisper_bundle: Path) -> None:
    import tokenizers
    from faster_whisper.tokenizer import Tokenizer

    full = tokenizers.Tokenizer.from_file(str(whisper_bundle / "tokenizer.json"))
    reference = Tokenizer(full, True, task="transcribe", language="fr")
    vocabulary = Vocabulary.load(whisper_bundle)
    assert vocabulary.sot_sequence("fr", timestamps=False) == [*reference.sot_sequence, reference.no_timestamps]
    assert vocabulary.sot_sequence("fr", timestamps=True) == list(reference.sot_sequence)
    text = " L'hôpital m'a renvoyée à la CAF — « 12,50 € », ça coûte cher ! Œuvre naïve ½ 日本"
    ids = full.encode(text).ids
    assert vocabulary.decode(ids) == text
    assert vocabulary.decode([*ids, vocabulary.eot, vocabulary.special("<|0.00|>")]) == text  # no special text
    size = len(json.loads((whisper_bundle / "vocabulary.json").read_text(encoding="utf-8")))
    rng = random.Random(5)  # any id sequence, cut UTF-8 sequences included, decodes the same way
    for _ in range(500):
        sample = [rng.randrange(size) for _ in range(9)]
        assert vocabulary.decode(sample) == reference.decode(sample)


def test_a_broken_vocabulary_names_the_file_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "vocabulary.json").write_text('{"not": "a list"}')
    with pytest.raises(RuntimeError, match=r"vocabulary.json: not a Whisper vocabulary.*borne models install"):
        Vocabulary.load(tmp_path)
    (tmp_path / "vocabulary.json").write_text("[truncated")
    with pytest.raises(RuntimeError, match=r"vocabulary.json: unreadable"):
        Vocabulary.load(tmp_path)
    with pytest.raises(ValueError, match=r"no <\|xx\|> token"):
        Vocabulary(["<|endoftext|>", "<|fr|>"]).special("<|xx|>")


def test_transcribing_loads_neither_faster_whisper_nor_its_tokenizer(whisper_bundle: Path) -> None:
    """What keeps the kiosk's memory down: only CTranslate2's model, never faster-whisper's package."""
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from edge_models.asr import WhisperTranscriber\n"
        "from edge_models.options import VoiceOptions\n"
        f"bundle = Path({str(whisper_bundle)!r})\n"
        "t = WhisperTranscriber(bundle, VoiceOptions(models_dir=bundle.parent, model_name=bundle.name))\n"
        "t.transcribe(np.zeros(16000, dtype=np.float32))\n"
        "print(sorted(m for m in ('faster_whisper', 'tokenizers', 'av', 'huggingface_hub') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_freed_heap_memory_goes_back_to_the_system() -> None:
    """Freed buffers below glibc's mmap threshold stay resident until trimmed: what CTranslate2's do."""
    code = (
        "from edge_models.asr import release_freed_memory\n"
        "def anon():\n"
        "    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('RssAnon'))\n"
        "blocks = [bytes(bytearray(64 * 1024)) for _ in range(1600)]  # 100 MB of heap blocks\n"
        "last = blocks.pop()  # kept: the heap's top cannot shrink past it\n"
        "del blocks\n"
        "before = anon()\n"
        "release_freed_memory()\n"
        "print(before - anon())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(out.strip()) > 50_000  # KiB handed back
