"""Groups 32 ms frames into phrases from their speech probabilities, and decides when a session ends.

A phrase ends after `pause_s` of silence (shorter pauses happen inside sentences), or, once it is
longer than `long_phrase_s`, after `short_pause_s`; it is cut at `max_phrase_s`. So that its text is
not late by the pause, a phrase shorter than `long_phrase_s` is also handed out early as a `Tentative`
after `speculate_after_s` of silence; the `Phrase` that follows says whether it still covers the same
speech (`speech_frames`), in which case the tentative's transcription stands.

Pure logic on numpy buffers the segmenter owns: a phrase is copied out to its consumer, and the
segmenter's own buffer is zeroed after each phrase and by `wipe()`.
"""

from __future__ import annotations

import collections
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge_models.asr import require
from edge_models.options import FRAME_SAMPLES, SAMPLE_RATE, SegmenterOptions, VadOptions

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


class EndReason(enum.StrEnum):
    """Why a session stopped listening."""

    SILENCE = "silence"  # the citizen stopped talking for session_silence_s
    NO_SPEECH = "no_speech"  # nothing said within initial_silence_s
    MAX_DURATION = "max_duration"
    END_OF_INPUT = "end_of_input"  # the source ended (file) or the session was stopped


@dataclass(frozen=True)
class Phrase:
    """Audio of one phrase (16 kHz float32), now owned by the receiver, who must zero it after use."""

    index: int
    audio: npt.NDArray[np.float32]
    start_s: float
    end_s: float
    speech_s: float
    speech_frames: int


@dataclass(frozen=True)
class Tentative:
    """The phrase heard so far, zero-padded as its `Phrase` would be; owned (and zeroed) by the receiver.

    It stands for phrase `index` if that phrase ends with the same `speech_frames`.
    """

    index: int
    audio: npt.NDArray[np.float32]
    speech_frames: int


@dataclass(frozen=True)
class SessionEnd:
    reason: EndReason


Event = Phrase | Tentative | SessionEnd


class Segmenter:
    """Feed `(frame, probability)` pairs; get `Phrase` and `SessionEnd` events back."""

    def __init__(self, options: SegmenterOptions, vad: VadOptions) -> None:
        self.opt = options
        self.vad = vad
        self._np: Any = require("numpy")
        pad_frames = round(options.pad_s / FRAME_S)
        self._pad_frames = pad_frames
        self._max_frames = max(1, round(options.max_phrase_s / FRAME_S))
        self._speculate_frames = round(options.speculate_after_s / FRAME_S) if options.speculate_after_s else 0
        capacity = (self._max_frames + 2 * pad_frames + 2) * FRAME_SAMPLES
        self._buf = self._np.zeros(capacity, dtype=self._np.float32)
        self._preroll: collections.deque[npt.NDArray[np.float32]] = collections.deque(maxlen=pad_frames)
        self._reset_state()
        self.frames_seen = 0
        self.phrases = 0
        self.last_speech_frame = -1
        self.ended: SessionEnd | None = None

    def _reset_state(self) -> None:
        self._in_speech = False
        self._in_phrase = False
        self._used = 0  # samples written in _buf
        self._last_speech_end = 0  # samples in _buf up to the end of the last speech frame
        self._speech_frames = 0
        self._silence_run = 0
        self._phrase_start_frame = 0

    def _pause_limit(self) -> int:
        long = self._used >= self.opt.long_phrase_s * SAMPLE_RATE
        pause = min(self.opt.pause_s, self.opt.short_pause_s) if long else self.opt.pause_s
        return max(1, round(pause / FRAME_S))

    def push(self, frame: npt.NDArray[np.float32], probability: float) -> list[Event]:
        """Process one frame; returns the events it completes (usually none)."""
        if self.ended is not None:
            return []
        events: list[Event] = []
        index = self.frames_seen
        self.frames_seen += 1
        threshold = self.vad.neg_threshold if self._in_speech else self.vad.threshold
        speech = probability >= threshold
        self._in_speech = speech
        if not self._in_phrase:
            if speech:
                self._start_phrase(index)
                self._write(frame)
                self._mark_speech(index)
            else:
                self._preroll.append(frame.copy())
        else:
            self._write(frame)
            # In a long phrase, a dip below the start threshold already counts towards a (short) pause.
            long = self._used >= self.opt.long_phrase_s * SAMPLE_RATE
            if speech and not (long and probability < self.vad.threshold):
                self._mark_speech(index)
            else:
                self._silence_run += 1
                if self._silence_run >= self._pause_limit():
                    events.extend(self._end_phrase())
                elif self._silence_run == self._speculate_frames and not long:
                    events.extend(self._tentative())  # a long phrase ends on its short pause anyway
            if self._in_phrase and self._used >= self._max_frames * FRAME_SAMPLES:
                events.extend(self._end_phrase(cut=True))
                if speech:  # still talking: the next phrase starts right away
                    self._start_phrase(self.frames_seen)
        end = self._check_session_end()
        if end is not None:
            events.extend(self._end_phrase())
            events.append(end)
        return events

    def silence_left_s(self) -> float | None:
        """Seconds of silence still to come before the session ends for silence; None while someone
        speaks, before any speech, or once the session has ended."""
        if self.ended is not None or self.last_speech_frame < 0 or (self._in_phrase and self._silence_run == 0):
            return None
        silent = (self.frames_seen - 1 - self.last_speech_frame) * FRAME_S
        return max(0.0, self.opt.session_silence_s - silent)

    def time_left_s(self) -> float | None:
        """Seconds before the session reaches `max_session_s`; None once it has ended."""
        if self.ended is not None:
            return None
        return max(0.0, self.opt.max_session_s - self.frames_seen * FRAME_S)

    def flush(self) -> list[Event]:
        """The input ended: emit the phrase in progress and end the session."""
        if self.ended is not None:
            return []
        events: list[Event] = list(self._end_phrase())
        self.ended = SessionEnd(EndReason.END_OF_INPUT)
        events.append(self.ended)
        return events

    def wipe(self) -> None:
        """Overwrite every buffered sample (end of session)."""
        self._buf.fill(0.0)
        for frame in self._preroll:
            frame.fill(0.0)
        self._preroll.clear()
        self._reset_state()

    # -- internals ------------------------------------------------------------------------------

    def _start_phrase(self, index: int) -> None:
        self._in_phrase = True
        self._used = 0
        self._speech_frames = 0
        self._silence_run = 0
        self._phrase_start_frame = index - len(self._preroll)
        for old in self._preroll:
            self._write(old)
            old.fill(0.0)
        self._preroll.clear()

    def _write(self, frame: npt.NDArray[np.float32]) -> None:
        n = len(frame)
        if self._used + n > len(self._buf):  # cannot happen with the cut above; never overflow
            return
        self._buf[self._used : self._used + n] = frame
        self._used += n

    def _mark_speech(self, index: int) -> None:
        self._speech_frames += 1
        self._silence_run = 0
        self._last_speech_end = self._used
        self.last_speech_frame = index

    def _tentative(self) -> list[Event]:
        if self._speech_frames * FRAME_S < self.opt.min_speech_s:
            return []
        padded_end = self._last_speech_end + self._pad_frames * FRAME_SAMPLES
        heard = min(self._used, padded_end)
        audio = self._np.zeros(padded_end, dtype=self._np.float32)
        audio[:heard] = self._buf[:heard]
        return [Tentative(self.phrases, audio, self._speech_frames)]

    def _end_phrase(self, cut: bool = False) -> list[Event]:
        if not self._in_phrase:
            return []
        end = self._used if cut else min(self._used, self._last_speech_end + self._pad_frames * FRAME_SAMPLES)
        events: list[Event] = []
        speech_s = self._speech_frames * FRAME_S
        if speech_s >= self.opt.min_speech_s and end > 0:
            audio = self._buf[:end].copy()
            start_s = self._phrase_start_frame * FRAME_S
            events.append(
                Phrase(self.phrases, audio, start_s, start_s + end / SAMPLE_RATE, speech_s, self._speech_frames)
            )
            self.phrases += 1
        self._buf[: self._used].fill(0.0)
        self._in_phrase = False
        self._used = 0
        self._last_speech_end = 0
        self._speech_frames = 0
        self._silence_run = 0
        return events

    def _check_session_end(self) -> SessionEnd | None:
        elapsed = self.frames_seen * FRAME_S
        reason: EndReason | None = None
        if elapsed >= self.opt.max_session_s:
            reason = EndReason.MAX_DURATION
        elif self.last_speech_frame < 0:
            if elapsed >= self.opt.initial_silence_s:
                reason = EndReason.NO_SPEECH
        elif not self._in_phrase or self._silence_run > 0:
            silent = (self.frames_seen - 1 - self.last_speech_frame) * FRAME_S
            if silent >= self.opt.session_silence_s:
                reason = EndReason.SILENCE
        if reason is None:
            return None
        self.ended = SessionEnd(reason)
        return self.ended


__all__ = ["FRAME_S", "EndReason", "Event", "Phrase", "Segmenter", "SessionEnd", "Tentative"]
