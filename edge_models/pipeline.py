"""A voice session: audio source → Silero VAD → segmenter → transcriber worker → guard → events.

Each phrase is transcribed on the worker thread as soon as a pause ends it, while the citizen keeps
talking, so the final text is ready shortly after the last phrase. A short phrase is transcribed
speculatively a moment into its pause (the segmenter's `Tentative`): its text is shown at once and
stands when the pause turns out to end the phrase; if the citizen goes on talking, that result is
discarded (or the job skipped if it has not run yet) and the whole phrase is transcribed.

No phrase is lost in between: a speculation confirmed by its phrase waits for its result whatever
comes next, and is decoded again from the phrase's own audio if that result is unusable. A phrase the
guard rejects as a possible fragment (low log-probability, loop) is decoded once more joined to the
next phrase; what is finally rejected is counted in `FinalText.dropped` and `lost_s` and lowers its
`confidence`. Events:

- `MicStatus` when the source's state changes (no device, disconnected, ready…);
- `PartialText` after each phrase or speculative result (the text so far), from the worker thread;
- `FinalText` once, when the session ends, from the thread that called `run()`.

Audio lives only in buffers the session owns (frame buffer, segmenter buffer, one array per phrase
in flight); they are zeroed as soon as they are used and when the session ends.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edge_models.asr import Job, PhraseResult, TranscriberWorker, WhisperTranscriber, release_freed_memory, require
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
    confidence: float = 0.0  # exp(mean log-probability of the kept phrases) × the share of phrase audio kept
    lost_s: float = 0.0  # seconds of phrase audio whose text the guard finally rejected


@dataclass(frozen=True)
class Quiet:
    """The session will end in `seconds_left` (whole seconds, counted down), for silence or at the time
    limit (`reason`: SILENCE or MAX_DURATION); None: speech came back, the countdown is off."""

    seconds_left: int | None
    reason: EndReason = EndReason.SILENCE


VoiceEvent = MicStatus | PartialText | Quiet | FinalText
Transcribe = Callable[["FloatArray"], PhraseResult]


def confidence(logprobs: list[float], kept_share: float) -> float:
    """exp of the mean average log-probability of the kept phrases, times the share of phrase audio
    whose text was kept: a comment with words lost to the guard is worth less (0 with no phrase kept)."""
    if not logprobs:
        return 0.0
    return math.exp(sum(logprobs) / len(logprobs)) * kept_share


# Rejections that may be a fragment decoded without its neighbour, not noise: tried again joined to the next phrase.
RETRYABLE = frozenset({"low_logprob", "compression_ratio", "repetition"})


@dataclass
class _Held:
    """A phrase the guard rejected, kept to be decoded again joined to the next phrase before it counts as lost."""

    index: int
    audio: FloatArray
    reason: str


@dataclass
class _Speculation:
    """A tentative job for phrase `job.index`. Once its phrase ended with the same speech it is
    `confirmed`, and the phrase's own audio waits in `audio` until the tentative's result is in."""

    job: Job
    speech_frames: int
    arrived: bool = False
    result: PhraseResult | None = None
    held: _Held | None = None  # the held phrase the tentative was decoded joined to
    audio: FloatArray | None = None


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
        self._worker: TranscriberWorker | None = None
        self._kept: dict[int, str] = {}
        self._speculation: _Speculation | None = None  # the phrase in its pause, not ended yet
        self._confirmed: dict[int, _Speculation] = {}  # ended phrases whose tentative result is still due
        self._held: _Held | None = None
        self._joined_to: dict[int, _Held] = {}  # id(job) → the held phrase that job was decoded joined to
        self._logprobs: list[float] = []
        self._done = 0
        self._dropped: dict[str, int] = {}
        self._kept_s = 0.0
        self._lost_s = 0.0
        self._errors = 0
        source.on_state = self._source_state

    @classmethod
    def of(
        cls,
        source: AudioSource,
        transcriber: WhisperTranscriber,
        options: VoiceOptions,
        on_event: Callable[[VoiceEvent], None] | None = None,
        vad: SileroVad | None = None,
        language: str = "",
    ) -> VoiceSession:
        """A session decoding `language` (by default the options') with `transcriber` (its speculative
        decodings never take the full window)."""
        transcriber.prompts(language)  # a language it was not set up for fails here, not on the first phrase
        return cls(
            source,
            functools.partial(transcriber.transcribe, language=language),
            options,
            on_event,
            vad,
            functools.partial(transcriber.transcribe_tentative, language=language),
        )

    def stop(self) -> None:
        """End the session now (the citizen tapped "done"); phrases already heard are transcribed."""
        self.source.stop()

    def _source_state(self, state: SourceState, detail: str) -> None:
        self._on_event(MicStatus(state, detail))

    # -- on the worker thread ---------------------------------------------------------------------

    def _decode(self, job: Job) -> PhraseResult:
        """Decode a job's phrase, joined to the phrase before it if the guard held that one back."""
        np: Any = require("numpy")
        with self._lock:
            held = self._held if self._held is not None and self._held.index < job.index else None
        decode = self._transcribe_tentative if job.tentative else self._transcribe
        if held is None:
            return decode(job.audio)
        joined = np.concatenate([held.audio, job.audio])
        try:
            result = decode(joined)
        finally:
            joined.fill(0.0)
        with self._lock:
            self._joined_to[id(job)] = held
        return result

    def _on_result(self, job: Job, result: PhraseResult | None, error: BaseException | None) -> None:
        redo: Job | None = None
        with self._lock:
            held = self._joined_to.pop(id(job), None)
            if not job.tentative:
                self._accept(job.index, result, job.audio, held)
            elif (confirmed := self._confirmed.get(job.index)) is not None and confirmed.job is job:
                del self._confirmed[job.index]
                assert confirmed.audio is not None  # noqa: S101 - set when it was confirmed
                if result is not None and not result.settled:
                    redo = Job(job.index, confirmed.audio)  # unusable: decode the phrase itself
                else:
                    self._accept(job.index, result, confirmed.audio, held)
                    confirmed.audio.fill(0.0)
            else:
                speculation = self._speculation
                if speculation is None or speculation.job is not job:
                    return  # speech resumed after this job started: its text is stale
                if result is not None and not result.settled:
                    self._speculation = None  # unusable: the phrase is transcribed in full when it ends
                    return
                speculation.arrived, speculation.result, speculation.held = True, result, held
            text = self._joined()
            done = self._done
        if redo is not None:
            assert self._worker is not None  # noqa: S101 - results only come from the running worker
            self._worker.submit(redo)
            return
        self._on_event(PartialText(text, done))

    # -- with the lock held -----------------------------------------------------------------------

    def _accept(self, index: int, result: PhraseResult | None, audio: FloatArray, held: _Held | None) -> None:
        """The final result for phrase `index` (whose audio is `audio`), decoded joined to `held` if set."""
        self._done += 1
        if held is not None and self._held is held:
            self._held = None
        if result is None:
            self._errors += 1
            self._lost(held)
            return
        verdict = self._verdict(result)
        if verdict.keep:
            self._kept[index] = result.text.strip()
            self._logprobs.append(result.avg_logprob)
            self._kept_s += result.duration_s
            if held is not None:
                held.audio.fill(0.0)
            return
        logger.debug("phrase %d rejected by the guard: %s", index, verdict.reason)
        self._lost(held)  # joined to its neighbour and still rejected
        if verdict.reason in RETRYABLE and self._held is None:
            self._held = _Held(index, audio.copy(), verdict.reason)  # try it again with the next phrase
        else:
            self._drop(verdict.reason, len(audio) / SAMPLE_RATE)

    def _lost(self, held: _Held | None) -> None:
        if held is not None:
            self._drop(held.reason, len(held.audio) / SAMPLE_RATE)
            held.audio.fill(0.0)

    def _drop(self, reason: str, seconds: float) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1
        self._lost_s += seconds

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

    # -- on the thread that runs the session --------------------------------------------------------

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
            speculation, self._speculation = self._speculation, None
            if speculation is not None:
                same = speculation.job.index == phrase.index and speculation.speech_frames == phrase.speech_frames
                if same and not speculation.arrived:
                    speculation.audio = phrase.audio  # final once its result arrives
                    self._confirmed[phrase.index] = speculation
                    return
                if same and speculation.result is not None:
                    self._accept(phrase.index, speculation.result, phrase.audio, speculation.held)
                    phrase.audio.fill(0.0)
                    return
                speculation.job.cancelled.set()
        worker.submit(Job(phrase.index, phrase.audio))

    def _abandon_speculation(self) -> None:
        with self._lock:
            if self._speculation is not None:
                self._speculation.job.cancelled.set()
                self._speculation = None

    def run(self) -> FinalText:
        np: Any = require("numpy")
        opt = self.options
        vad = self._vad or SileroVad()
        vad.reset()
        segmenter = Segmenter(opt.segmenter, opt.vad)
        worker = self._worker = TranscriberWorker(self._decode, self._on_result)
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

        announced: Quiet | None = None

        def count_down() -> None:
            """Announce each whole second of the last `countdown_s` before the session ends, for silence or at
            its time limit (whichever comes first), and the cancellation of a silence countdown."""
            nonlocal announced
            ends = [
                (left, reason)
                for left, reason in (
                    (segmenter.silence_left_s(), EndReason.SILENCE),
                    (segmenter.time_left_s(), EndReason.MAX_DURATION),
                )
                if left is not None and 0 < left <= opt.segmenter.countdown_s
            ]
            left, reason = min(ends) if ends else (None, EndReason.SILENCE)
            shown = Quiet(None if left is None else math.ceil(left), reason)
            if announced is None and shown.seconds_left is None:
                return  # nothing was announced yet
            if shown != announced:
                announced = shown
                self._on_event(shown)

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
                        count_down()
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
            release_freed_memory()  # the decoder's buffers, between visits
        with self._lock:
            self._lost(self._held)  # nothing came after it to join it to
            self._held = None
            heard = self._kept_s + self._lost_s
            final = FinalText(
                text=self._joined(),
                reason=end.reason,
                audio_s=consumed / SAMPLE_RATE,
                phrases=phrases,
                dropped=dict(self._dropped),
                errors=self._errors,
                latency_after_end_s=time.perf_counter() - last_fed,
                speech_end_s=speech_end_s,
                confidence=confidence(self._logprobs, self._kept_s / heard if heard else 0.0),
                lost_s=round(self._lost_s, 3),
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


__all__ = ["FinalText", "MicStatus", "PartialText", "Quiet", "VoiceEvent", "VoiceSession"]
