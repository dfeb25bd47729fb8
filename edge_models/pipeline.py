"""A voice session: audio source → Silero VAD → segmenter → transcriber worker → guard → events.

Each phrase is transcribed on the worker thread as soon as a pause ends it, while the citizen keeps
talking, so the final text is ready shortly after the last phrase. A short phrase is transcribed
speculatively a moment into its pause (the segmenter's `Tentative`): its text is shown at once and
stands when the pause turns out to end the phrase; if the citizen goes on talking, that result is
discarded (or the job skipped if it has not run yet) and the whole phrase is transcribed. Events:

- `MicStatus` when the source's state changes (no device, disconnected, ready…);
- `PartialText` after each phrase or speculative result (the text so far), from the worker thread;
- `FinalText` once, when the session ends, from the thread that called `run()`.

Audio lives only in buffers the session owns (frame buffer, segmenter buffer, one array per phrase
in flight); they are zeroed as soon as they are used and when the session ends.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edge_models.asr import Job, PhraseResult, TranscriberWorker, require
from edge_models.audio import AudioSource, SourceState
from edge_models.guard import HallucinationGuard, Verdict
from edge_models.options import FRAME_SAMPLES, SAMPLE_RATE, VoiceOptions
from edge_models.segmenter import FRAME_S, EndReason, Phrase, Segmenter, SessionEnd, Tentative
from edge_models.vad import SileroVad

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MicStatus:
    state: SourceState
    detail: str


@dataclass(frozen=True)
class PartialText:
    text: str  # kept phrases so far, in order, with the speculative text of the phrase in its pause
    phrases: int  # phrases transcribed so far (kept or dropped)


@dataclass(frozen=True)
class FinalText:
    text: str  # after the hallucination guard, before moderation
    reason: EndReason
    audio_s: float  # audio the session consumed
    phrases: int
    dropped: dict[str, int] = field(default_factory=dict)  # guard reason -> count
    errors: int = 0
    latency_after_end_s: float | None = None  # last audio block fed → final text
    speech_end_s: float | None = None  # audio time at the end of the last speech frame (None: no speech)
    confidence: float = 0.0  # exp of the mean average log-probability of the kept phrases (0 with none)


VoiceEvent = MicStatus | PartialText | FinalText
Transcribe = Callable[["FloatArray"], PhraseResult]


@dataclass
class _Speculation:
    """A tentative job for one phrase index; `confirmed` once the phrase ended with the same speech."""

    job: Job
    speech_frames: int
    confirmed: bool = False
    arrived: bool = False
    result: PhraseResult | None = None


class VoiceSession:
    """One listening session; `run()` blocks until it ends, `stop()` ends it from another thread."""

    def __init__(
        self,
        source: AudioSource,
        transcribe: Transcribe,
        options: VoiceOptions,
        on_event: Callable[[VoiceEvent], None] | None = None,
        vad: SileroVad | None = None,
        transcribe_tentative: Transcribe | None = None,
    ) -> None:
        """`transcribe_tentative` decodes speculative phrases (`WhisperTranscriber.transcribe_tentative`
        spares them the full-window retry); `transcribe` by default."""
        self.source = source
        self.options = options
        self._transcribe = transcribe
        self._transcribe_tentative = transcribe_tentative or transcribe
        self._on_event = on_event or (lambda _event: None)
        self._vad = vad
        self._guard = HallucinationGuard(options.guard)
        self._lock = threading.Lock()
        self._kept: dict[int, str] = {}
        self._speculation: _Speculation | None = None  # at most one phrase is in its pause at a time
        self._logprobs: list[float] = []
        self._done = 0
        self._dropped: dict[str, int] = {}
        self._errors = 0
        source.on_state = self._source_state

    def stop(self) -> None:
        """End the session now (the citizen tapped "done"); phrases already heard are transcribed."""
        self.source.stop()

    def _source_state(self, state: SourceState, detail: str) -> None:
        self._on_event(MicStatus(state, detail))

    def _on_result(self, job: Job, result: PhraseResult | None, error: BaseException | None) -> None:
        with self._lock:
            speculation = self._speculation
            if job.tentative:
                if speculation is None or speculation.job is not job:
                    return  # speech resumed after this job started: its text is stale
                if result is not None and not result.settled:
                    self._speculation = None  # unusable: the phrase is transcribed in full when it ends
                    return
                speculation.arrived, speculation.result = True, result
                if speculation.confirmed:
                    self._speculation = None
                    self._accept(job.index, result)
            else:
                self._accept(job.index, result)
            text = self._joined()
            done = self._done
        self._on_event(PartialText(text, done))

    def _accept(self, index: int, result: PhraseResult | None) -> None:
        """The final result for phrase `index` (called with the lock held)."""
        self._done += 1
        if result is None:
            self._errors += 1
            return
        verdict = self._verdict(result)
        if verdict.keep:
            self._kept[index] = result.text.strip()
            self._logprobs.append(result.avg_logprob)
        else:
            self._dropped[verdict.reason] = self._dropped.get(verdict.reason, 0) + 1
            logger.debug("phrase %d dropped by the guard: %s", index, verdict.reason)

    def _verdict(self, result: PhraseResult) -> Verdict:
        return self._guard.check(
            result.text,
            avg_logprob=result.avg_logprob,
            no_speech_prob=result.no_speech_prob,
            compression_ratio=result.compression_ratio,
        )

    def _joined(self) -> str:
        parts = [self._kept[i] for i in sorted(self._kept) if self._kept[i]]
        speculation = self._speculation
        shown = speculation.result if speculation is not None and speculation.arrived else None
        if shown is not None and self._verdict(shown).keep:
            parts.append(shown.text.strip())
        return " ".join(part for part in parts if part)

    def _speculate(self, tentative: Tentative, worker: TranscriberWorker) -> None:
        job = Job(tentative.index, tentative.audio, tentative=True)
        with self._lock:
            if self._speculation is not None:
                self._speculation.job.cancelled.set()
            self._speculation = _Speculation(job, tentative.speech_frames)
        worker.submit(job)

    def _phrase(self, phrase: Phrase, worker: TranscriberWorker) -> None:
        """A phrase ended: confirm its speculation if it covers the same speech, else transcribe it."""
        with self._lock:
            speculation = self._speculation
            if speculation is not None and speculation.job.index == phrase.index:
                if speculation.speech_frames == phrase.speech_frames:
                    phrase.audio.fill(0.0)
                    if speculation.arrived:
                        self._speculation = None
                        self._accept(phrase.index, speculation.result)
                    else:
                        speculation.confirmed = True  # its result is final when it arrives
                    return
                speculation.job.cancelled.set()
                self._speculation = None
        worker.submit(Job(phrase.index, phrase.audio))

    def _abandon_speculation(self) -> None:
        with self._lock:
            if self._speculation is not None and not self._speculation.confirmed:
                self._speculation.job.cancelled.set()
                self._speculation = None

    def run(self) -> FinalText:
        np: Any = require("numpy")
        opt = self.options
        vad = self._vad or SileroVad()
        vad.reset()
        segmenter = Segmenter(opt.segmenter, opt.vad)
        worker = TranscriberWorker(self._transcribe, self._on_result, transcribe_tentative=self._transcribe_tentative)
        frame = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        filled = 0
        consumed = 0
        end: SessionEnd | None = None
        phrases = 0

        def handle(events: list[Phrase | Tentative | SessionEnd]) -> SessionEnd | None:
            nonlocal phrases
            for event in events:
                if isinstance(event, Tentative):
                    self._speculate(event, worker)
                elif isinstance(event, Phrase):
                    phrases += 1
                    self._phrase(event, worker)
                else:
                    return event
            return None

        blocks = self.source.blocks()
        try:
            for block in blocks:
                offset = 0
                while offset < len(block):
                    take = min(FRAME_SAMPLES - filled, len(block) - offset)
                    frame[filled : filled + take] = block[offset : offset + take]
                    filled += take
                    offset += take
                    if filled == FRAME_SAMPLES:
                        consumed += FRAME_SAMPLES
                        filled = 0
                        end = handle(segmenter.push(frame, vad(frame)))
                        if end is not None:
                            break
                if end is not None:
                    self.source.stop()
                    break
            if end is None:
                if filled:
                    frame[filled:] = 0.0
                    consumed += filled
                    handle(segmenter.push(frame, vad(frame)))
                end = handle(segmenter.flush()) or SessionEnd(EndReason.END_OF_INPUT)
            last_fed = self.source.last_block_at or time.perf_counter()
            speech_end_s = (segmenter.last_speech_frame + 1) * FRAME_S if segmenter.last_speech_frame >= 0 else None
            self._abandon_speculation()  # every phrase has ended: one still unconfirmed was too short to keep
            worker.wait_idle()
        finally:
            close = getattr(blocks, "close", None)
            if callable(close):  # releases the microphone now, not when the generator is collected
                close()
            worker.close()
            frame.fill(0.0)
            segmenter.wipe()
            vad.reset()
            wipe = getattr(self.source, "wipe", None)
            if callable(wipe):
                wipe()
        with self._lock:
            final = FinalText(
                text=self._joined(),
                reason=end.reason,
                audio_s=consumed / SAMPLE_RATE,
                phrases=phrases,
                dropped=dict(self._dropped),
                errors=self._errors,
                latency_after_end_s=time.perf_counter() - last_fed,
                speech_end_s=speech_end_s,
                confidence=math.exp(sum(self._logprobs) / len(self._logprobs)) if self._logprobs else 0.0,
            )
            self._kept.clear()
            self._logprobs.clear()
            self._speculation = None
        logger.info(
            "voice session ended (%s): %.1f s of audio, %d phrases, dropped %s",
            final.reason.value,
            final.audio_s,
            final.phrases,
            final.dropped,
        )
        self._on_event(final)
        return final


__all__ = ["FinalText", "MicStatus", "PartialText", "VoiceEvent", "VoiceSession"]
