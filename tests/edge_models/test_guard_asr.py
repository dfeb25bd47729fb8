"""Hallucination guard, compute-type choice, options, and the transcriber worker (no model needed)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

from edge_models.asr import (
    Job,
    PhraseResult,
    TranscriberWorker,
    choose_compute_type,
    compression_ratio,
    read_cpu_flags,
)
from edge_models.guard import HallucinationGuard, normalize_phrase, repeated_ngram
from edge_models.options import GuardOptions, SegmenterOptions, VadOptions, VoiceOptions

GOOD = {"avg_logprob": -0.3, "no_speech_prob": 0.05, "compression_ratio": 1.3}


@pytest.fixture
def guard() -> HallucinationGuard:
    return HallucinationGuard(GuardOptions())


def test_normal_speech_is_kept(guard: HallucinationGuard) -> None:
    verdict = guard.check("L'accueil était très bien, merci beaucoup.", **GOOD)
    assert verdict.keep and verdict.reason == "ok"


@pytest.mark.parametrize(
    "text",
    [
        "Sous-titres réalisés par la communauté d'Amara.org",
        "sous titres realises par la communaute d amara org",
        "Merci d'avoir regardé !",
        "  ...  ",
        "",
    ],
)
def test_phantom_phrases_are_dropped(guard: HallucinationGuard, text: str) -> None:
    assert not guard.check(text, **GOOD).keep


def test_merci_inside_a_real_comment_is_kept(guard: HallucinationGuard) -> None:
    assert guard.check("Merci d'avoir regardé mon dossier si vite", **GOOD).keep


@pytest.mark.parametrize(
    "scores, reason",
    [
        ({"avg_logprob": -0.9, "no_speech_prob": 0.8, "compression_ratio": 1.2}, "no_speech"),
        ({"avg_logprob": -1.5, "no_speech_prob": 0.1, "compression_ratio": 1.2}, "low_logprob"),
        ({"avg_logprob": -0.2, "no_speech_prob": 0.1, "compression_ratio": 3.1}, "compression_ratio"),
    ],
)
def test_scores_drop_phrases(guard: HallucinationGuard, scores: dict[str, float], reason: str) -> None:
    verdict = guard.check("Bonjour à tous", **scores)
    assert not verdict.keep and verdict.reason == reason


def test_confident_speech_with_high_no_speech_is_kept(guard: HallucinationGuard) -> None:
    assert guard.check("Très bon accueil", avg_logprob=-0.2, no_speech_prob=0.9, compression_ratio=1.0).keep


def test_repetition_loop_is_dropped(guard: HallucinationGuard) -> None:
    assert not guard.check("je vais je vais je vais je vais", **GOOD).keep
    assert guard.check("non non non, pas du tout", **GOOD).keep


def test_repeated_ngram() -> None:
    assert repeated_ngram(["a", "b", "c", "a", "b", "c", "a", "b", "c", "a", "b", "c"], 4)
    assert not repeated_ngram(["a", "b", "c", "a", "b", "c", "a", "b", "c"], 4)
    assert repeated_ngram(["x"] * 4, 4)


def test_normalize_phrase() -> None:
    assert normalize_phrase("Sous-titres réalisés par la communauté d'Amara.org") == (
        "sous titres realises par la communaute d amara org"
    )


def test_compression_ratio_grows_with_repetition() -> None:
    assert compression_ratio("") == 0.0
    assert compression_ratio("la la " * 50) > 2.4 > compression_ratio("Le service était rapide et aimable.")


@pytest.mark.parametrize(
    "flags, ram, supported, expected",
    [
        ({"avx2", "sse4_2"}, 8192, {"int8", "int8_float32", "float32"}, "int8"),
        ({"asimd", "fp"}, 4096, {"int8", "float32"}, "int8"),  # Raspberry Pi 4/5
        ({"sse2"}, 8192, {"int8", "float32"}, "float32"),  # old x86: int8 GEMM is slow there
        ({"sse2"}, 1024, {"int8", "float32"}, "int8"),  # … unless RAM is short
        ({"avx2"}, 8192, {"float32"}, "float32"),
    ],
)
def test_choose_compute_type(flags: set[str], ram: int, supported: set[str], expected: str) -> None:
    assert choose_compute_type(flags, ram, supported) == expected


def test_read_cpu_flags(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm crc32\n")
    assert read_cpu_flags(x86) == {"fpu", "sse2", "avx2"}
    assert "asimd" in read_cpu_flags(arm)
    assert read_cpu_flags(tmp_path / "missing") == set()


def test_options_are_frozen_strict_and_documented() -> None:
    opts = VoiceOptions()
    assert opts.language == "fr" and opts.threads >= 1
    with pytest.raises(ValidationError):
        VoiceOptions(unknown=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        opts.threads = 4  # type: ignore[misc]
    with pytest.raises(ValidationError, match="neg_threshold"):
        VadOptions(threshold=0.3, neg_threshold=0.5)
    model: type[BaseModel]
    for model in (VoiceOptions, VadOptions, SegmenterOptions, GuardOptions):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
    assert opts.model_dir == Path("/var/lib/borne/models/whisper-base")
    assert VoiceOptions.model_validate({"segmenter": {"pause_s": 0.8}}).segmenter.pause_s == 0.8


def test_only_languages_with_moderation_lists_can_be_heard() -> None:
    from edge_models.moderation.insults import LANGUAGES
    from edge_models.options import SPOKEN_LANGUAGES

    assert set(SPOKEN_LANGUAGES) == set(LANGUAGES)
    assert VoiceOptions(languages=("fr", "es")).languages == ("fr", "es")
    with pytest.raises(ValidationError, match=r"no speech support for de: languages are among fr, en, es"):
        VoiceOptions(languages=("fr", "de"))
    with pytest.raises(ValidationError, match=r"no speech support for it"):
        VoiceOptions(language="it")


def result(text: str) -> PhraseResult:
    return PhraseResult(text, -0.2, 0.0, 1.0, 1.0, 0.01, False)


def test_worker_runs_phrases_in_order_and_zeroes_their_audio() -> None:
    seen: list[tuple[int, str]] = []
    arrays = [np.full(1600, i + 1, dtype=np.float32) for i in range(3)]

    def transcribe(audio: np.ndarray) -> PhraseResult:
        return result(f"phrase {int(audio[0])}")

    worker = TranscriberWorker(
        lambda job: transcribe(job.audio), lambda j, r, e: seen.append((j.index, r.text if r else "ERR"))
    )
    for i, a in enumerate(arrays):
        worker.submit(Job(i, a))
    assert worker.wait_idle(timeout=10)
    worker.close()
    assert seen == [(0, "phrase 1"), (1, "phrase 2"), (2, "phrase 3")]
    assert not any(np.any(a) for a in arrays)


def test_worker_survives_a_failing_phrase() -> None:
    seen: list[tuple[int, BaseException | None]] = []
    lock = threading.Lock()

    def transcribe(audio: np.ndarray) -> PhraseResult:
        if audio[0] == 1:
            raise RuntimeError("decoder failed")
        return result("ok")

    def on_result(job: Job, r: PhraseResult | None, e: BaseException | None) -> None:
        with lock:
            seen.append((job.index, e))

    worker = TranscriberWorker(lambda job: transcribe(job.audio), on_result)
    worker.submit(Job(0, np.ones(10, np.float32)))
    worker.submit(Job(1, np.zeros(10, np.float32)))
    assert worker.wait_idle(timeout=10)
    worker.close()
    assert isinstance(seen[0][1], RuntimeError) and seen[1] == (1, None)


def test_worker_skips_a_job_cancelled_before_its_turn_and_still_zeroes_its_audio() -> None:
    started = threading.Event()
    release = threading.Event()
    seen: list[int] = []

    def transcribe(audio: np.ndarray) -> PhraseResult:
        started.set()
        release.wait(10)
        return result(f"phrase {int(audio[0])}")

    worker = TranscriberWorker(lambda job: transcribe(job.audio), lambda job, r, e: seen.append(job.index))
    first, stale, last = (np.full(10, i + 1, dtype=np.float32) for i in range(3))
    worker.submit(Job(0, first))
    assert started.wait(10)  # the worker is busy with job 0
    stale_job = Job(1, stale, tentative=True)
    worker.submit(stale_job)
    worker.submit(Job(2, last))
    stale_job.cancelled.set()
    release.set()
    assert worker.wait_idle(timeout=10)
    worker.close()
    assert seen == [0, 2]
    assert not np.any(stale)


def test_missing_heavy_dependency_says_what_to_install() -> None:
    from edge_models.asr import require

    with pytest.raises(RuntimeError, match=r"pip install 'borne\[voice\]'"):
        require("borne_no_such_backend")


def test_importing_the_voice_modules_loads_no_backend() -> None:
    import subprocess
    import sys

    code = (
        "import sys, edge_models.pipeline, edge_models.cli, edge_models.audio, edge_models.vad, edge_models.asr\n"
        "print(sorted(m for m in ('faster_whisper', 'ctranslate2', 'onnxruntime', 'sounddevice') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
