"""Whisper transcription of one phrase at a time (CTranslate2's Whisper model), and its worker thread.

The fast path encodes a mel window cut to the phrase length (plus a margin) instead of Whisper's
fixed 30 s window, then decodes with CTranslate2's `generate` bounded by `max_length`. A phrase whose
result looks degenerate (repetition, high compression ratio, very low log-probability) is decoded
again with a repetition penalty, then on a wider window (`fallback_window_s`, 20 s). A phrase of 4 s
or more decoded to few words a second (`min_words_per_s`) is decoded again with timestamps: without
them Whisper sometimes ends its text at a pause inside the phrase and drops what follows.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
import os
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_models.bundles import verify_bundle
from edge_models.guard import normalize_phrase, repeated_ngram
from edge_models.options import SAMPLE_RATE, VoiceOptions
from edge_models.vocabulary import Vocabulary

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]

logger = logging.getLogger(__name__)

VOICE_EXTRA_HINT = "install the voice extra: pip install 'borne[voice]'"
FULL_WINDOW_FRAMES = 3000  # 30 s of 10 ms mel frames
MAX_TARGET_POSITIONS = 448
LOST_END_MIN_S = 4.0  # shorter phrases vary too much in words per second to judge
LOST_END_GAIN = 1.2  # the decoding with timestamps replaces the first only with this many times its words


def require(module: str) -> Any:
    """Import a heavy optional module, or raise an error that says what to install."""
    import importlib

    if module.split(".")[0] == "onnxruntime":
        # onnxruntime's bundled telemetry writes a session file into TMPDIR at import time and
        # would try to send events; the kiosk writes nothing and sends nothing it does not choose.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(f"the voice pipeline requires the {module} package; {VOICE_EXTRA_HINT}") from exc


def release_freed_memory() -> None:
    """Hand the C heap's free pages back to the system (glibc's `malloc_trim`).

    CTranslate2 frees its buffers to glibc, which keeps them in the heap for reuse: after loading the
    model (about 40 MB of read buffers) and after each session (the encoder's and beam search's buffers)
    the process would stay that much bigger until the next allocation of the same size. A no-op where the
    C library has no `malloc_trim` (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def choose_compute_type(cpu_flags: Iterable[str], ram_mb: int, supported: Iterable[str]) -> str:
    """Pick a CTranslate2 compute type from the CPU's features and RAM.

    int8 wherever the backend supports it (x86 with AVX2 or ARM with NEON run int8 GEMM fast, and
    it quarters the weights' memory); otherwise float32. `supported` is what CTranslate2 reports.
    """
    flags = {f.lower() for f in cpu_flags}
    kinds = set(supported)
    fast_int8 = bool(flags & {"avx2", "avx512f", "neon", "asimd"})
    if "int8" in kinds and (fast_int8 or ram_mb < 2048):
        return "int8"
    if "int8_float32" in kinds and ram_mb < 2048:
        return "int8_float32"
    return "float32"


def resolve_compute_type(compute_type: str) -> str:
    """The setting's compute type, or for "auto" the one `choose_compute_type` picks on this machine."""
    if compute_type != "auto":
        return compute_type
    ctranslate2 = require("ctranslate2")
    return choose_compute_type(read_cpu_flags(), read_ram_mb(), ctranslate2.get_supported_compute_types("cpu"))


def read_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """CPU feature flags from /proc/cpuinfo ('flags' on x86, 'Features' on ARM)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in {"flags", "features"}:
            flags.update(value.split())
    return flags


def read_ram_mb() -> int:
    """Physical RAM in MiB (0 if unknown)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024))
    except (ValueError, OSError):
        return 0


def compression_ratio(text: str) -> float:
    """gzip compression ratio of the text (high for repetitive loops), as Whisper computes it."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass(frozen=True)
class PhraseResult:
    """What Whisper made of one phrase, with the scores the hallucination guard reads."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    duration_s: float
    processing_s: float
    wide_window: bool  # decoded again on the wider fallback window (the cut one gave a degenerate text)
    settled: bool = True  # False: a speculative decoding still degenerate on the cut window (not to be used)


class WhisperTranscriber:
    """A Whisper model from a verified bundle directory, loaded once; `transcribe` is thread-safe."""

    def __init__(self, bundle_dir: Path, options: VoiceOptions, *, verify: bool = True) -> None:
        if verify:
            verify_bundle(bundle_dir, full=True)
        ctranslate2 = require("ctranslate2")
        compute_type = resolve_compute_type(options.compute_type)
        self.options = options
        self.bundle_dir = bundle_dir
        self.compute_type = compute_type
        # CTranslate2's model alone: faster-whisper's WhisperModel would also load the full tokenizer and
        # the audio-file decoder, about 60 MB the pipeline never uses (features.py, vocabulary.py).
        self.model = ctranslate2.models.Whisper(
            str(bundle_dir), device="cpu", compute_type=compute_type, intra_threads=options.threads, inter_threads=1
        )
        self.vocabulary = Vocabulary.load(bundle_dir)
        # Prompts per language (without and with timestamps), made now: a language the model lacks is an
        # error at load, not during a visit.
        self._prompts = {
            language: (
                self.vocabulary.sot_sequence(language, timestamps=False),
                self.vocabulary.sot_sequence(language, timestamps=True),
            )
            for language in dict.fromkeys((options.language, *options.languages))
        }
        self._lock = threading.Lock()
        release_freed_memory()
        logger.info("Whisper loaded from %s (%s, %d threads)", bundle_dir, compute_type, options.threads)

    # -- the pipeline's path ------------------------------------------------------------------------

    def transcribe(self, audio: FloatArray, language: str = "") -> PhraseResult:
        """Transcribe one phrase (16 kHz mono float32, at most 30 s) spoken in `language` (one of the options'
        `languages`; by default their `language`)."""
        return self._transcribe(audio, wide_fallback=True, language=language)

    def transcribe_tentative(self, audio: FloatArray, language: str = "") -> PhraseResult:
        """A speculative transcription: never the wide fallback window, whose cost (time and tens of MB of
        memory) only the real phrase may spend; a result still degenerate comes back `settled=False`."""
        return self._transcribe(audio, wide_fallback=False, language=language)

    def prompts(self, language: str = "") -> tuple[list[int], list[int]]:
        """The start of the decoder's prompt for `language`, without then with timestamps."""
        try:
            return self._prompts[language or self.options.language]
        except KeyError:
            raise ValueError(
                f"the transcriber was not set up for language {language!r}: add it to [voice] languages"
            ) from None

    def _transcribe(self, audio: FloatArray, *, wide_fallback: bool, language: str = "") -> PhraseResult:
        started = time.perf_counter()
        prompt, timestamps_prompt = self.prompts(language)
        np = require("numpy")
        from edge_models.features import log_mel  # numpy at import: loaded with the voice extra, not with this module

        audio = np.asarray(audio, dtype=np.float32)[: 30 * SAMPLE_RATE]
        duration = len(audio) / SAMPLE_RATE
        with self._lock:
            features = log_mel(audio)
            content = min(features.shape[-1], FULL_WINDOW_FRAMES)
            margin = int(self.options.window_margin_s * 100)
            floor = int(self.options.min_window_s * 100)
            frames = min(FULL_WINDOW_FRAMES, max(floor, content + margin))
            frames += frames % 2  # the encoder's convolution has stride 2
            # Cut window first; if the text loops or is truncated, the same window with a repetition
            # penalty (cheap); only then a wider window (`fallback_window_s`: costly in time and memory).
            wide = min(FULL_WINDOW_FRAMES, int(self.options.fallback_window_s * 100))
            attempts = [(frames, 1.0), (frames, self.options.retry_repetition_penalty), (wide, 1.0)]
            if frames >= wide or not wide_fallback:
                attempts = attempts[:2]
            encoded: dict[int, Any] = {}
            degenerate = True
            for n, (window, penalty) in enumerate(attempts):
                if window not in encoded:
                    encoded[window] = self._encode(features, content, window)
                result = self._generate(encoded[window], prompt, duration, penalty)
                degenerate = self._degenerate(result)
                if not degenerate:
                    break
                logger.debug("phrase decoding attempt %d degenerate; retrying", n + 1)
            wide_window = window > frames
            if not degenerate and self._may_have_lost_its_end(result[0], duration):
                # Without timestamps Whisper sometimes ends the text at a pause inside the phrase and
                # drops the speech after it; with timestamps it goes on segment by segment.
                again = self._generate(encoded[window], timestamps_prompt, duration, 1.0)
                if not self._degenerate(again) and len(again[0].split()) >= LOST_END_GAIN * len(result[0].split()):
                    result = again
        return PhraseResult(
            text=result[0],
            avg_logprob=result[1],
            no_speech_prob=result[2],
            compression_ratio=compression_ratio(result[0]),
            duration_s=duration,
            processing_s=time.perf_counter() - started,
            wide_window=wide_window,
            settled=wide_fallback or not degenerate,
        )

    def _may_have_lost_its_end(self, text: str, duration: float) -> bool:
        rate = self.options.min_words_per_s
        return duration >= LOST_END_MIN_S and rate > 0 and len(text.split()) < rate * duration

    def _degenerate(self, result: tuple[str, float, float, bool]) -> bool:
        text, avg_logprob, _no_speech, truncated = result
        guard = self.options.guard
        return (
            truncated
            or compression_ratio(text) > guard.max_compression_ratio
            or avg_logprob < guard.min_avg_logprob
            or repeated_ngram(normalize_phrase(text).split(), guard.max_repeats)
        )

    def _encode(self, features: FloatArray, content: int, frames: int) -> Any:
        """Whisper's encoder on the first `content` mel frames, zero-padded to a `frames` window."""
        np = require("numpy")
        ctranslate2 = require("ctranslate2")
        window = features[:, :content]
        if frames > content:
            window = np.pad(window, ((0, 0), (0, frames - content)))
        batch = np.ascontiguousarray(window[None], dtype=np.float32)
        return self.model.encode(ctranslate2.StorageView.from_array(batch))

    def _generate(
        self, encoder_output: Any, prompt: list[int], duration: float, repetition_penalty: float = 1.0
    ) -> tuple[str, float, float, bool]:
        # CTranslate2's Whisper decoder emits at most about max_length / 2 new tokens (measured:
        # max_length 20 gives 10 tokens), which is how faster-whisper's 448 yields Whisper's 224.
        budget = math.ceil(duration * self.options.max_tokens_per_s) + 8
        max_length = min(MAX_TARGET_POSITIONS, 2 * budget + 2)
        result = self.model.generate(
            encoder_output,
            [prompt],
            beam_size=self.options.beam_size,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            repetition_penalty=repetition_penalty,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        tokens = result.sequences_ids[0]
        text = self.vocabulary.decode(tokens).strip()  # timestamp tokens, if any, are not text
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        truncated = len(tokens) >= max_length // 2 - 1
        return text, float(avg_logprob), float(result.no_speech_prob), truncated


@functools.lru_cache(maxsize=2)
def load_transcriber(bundle_dir: Path, options: VoiceOptions) -> WhisperTranscriber:
    """Load (once per bundle and options) a transcriber; verifies the bundle's hashes first."""
    return WhisperTranscriber(bundle_dir, options)


@dataclass(frozen=True)
class Job:
    """One phrase to transcribe; `audio` is owned by the job until the worker has run it or skipped it."""

    index: int
    audio: FloatArray
    tentative: bool = False  # a speculative transcription that may be cancelled before it runs
    cancelled: threading.Event = field(default_factory=threading.Event)


class TranscriberWorker:
    """Runs `decode` on jobs in order on one background thread, calling `on_result` per job.

    A job cancelled before its turn is skipped without a call. The job's audio is zeroed once its
    result has been handed to `on_result` (or the job skipped), so no audio outlives its use.
    """

    def __init__(
        self,
        decode: Callable[[Job], PhraseResult],
        on_result: Callable[[Job, PhraseResult | None, BaseException | None], None],
    ) -> None:
        self._decode = decode
        self._on_result = on_result
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="borne-asr", daemon=True)
        self._pending = 0
        self._cond = threading.Condition()
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._cond:
            self._pending += 1
        self._jobs.put(job)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every submitted job is done; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            result: PhraseResult | None = None
            error: BaseException | None = None
            try:
                if not job.cancelled.is_set():
                    try:
                        result = self._decode(job)
                    except Exception as exc:  # reported to the session; the worker keeps running
                        logger.exception("transcription of phrase %d failed", job.index)
                        error = exc
                    self._on_result(job, result, error)
            finally:
                job.audio.fill(0.0)
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()


__all__ = [
    "VOICE_EXTRA_HINT",
    "Job",
    "PhraseResult",
    "TranscriberWorker",
    "WhisperTranscriber",
    "choose_compute_type",
    "compression_ratio",
    "load_transcriber",
    "read_cpu_flags",
    "read_ram_mb",
    "release_freed_memory",
    "require",
    "resolve_compute_type",
]
