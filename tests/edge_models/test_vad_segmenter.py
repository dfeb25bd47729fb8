"""Streaming Silero VAD and the segmenter (phrases, pauses, session end)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edge_models.audio import read_wav, synth
from edge_models.options import SegmenterOptions, VadOptions
from edge_models.segmenter import FRAME_S, EndReason, Phrase, Segmenter, SessionEnd, Tentative
from edge_models.vad import SileroVad, silero_model_path
from tests.edge_models.conftest import speech_clips


def frames_of(audio: np.ndarray) -> list[np.ndarray]:
    n = len(audio) // 512 * 512
    return [audio[i : i + 512] for i in range(0, n, 512)]


def test_streaming_matches_faster_whisper_batch_model(vad: SileroVad) -> None:
    from faster_whisper.vad import SileroVADModel

    audio = read_wav(speech_clips()[0]["path"])
    audio = audio[: len(audio) // 512 * 512]
    vad.reset()
    streamed = np.array([vad(f) for f in frames_of(audio)])
    batch = SileroVADModel(str(silero_model_path()))(audio).reshape(-1)
    np.testing.assert_allclose(streamed, batch, atol=2e-3)
    assert (streamed > 0.5).mean() > 0.4  # a read sentence is mostly speech


def test_reset_gives_the_same_probabilities_again(vad: SileroVad) -> None:
    audio = read_wav(speech_clips()[1]["path"])[: 512 * 40]
    vad.reset()
    first = [vad(f) for f in frames_of(audio)]
    vad.reset()
    second = [vad(f) for f in frames_of(audio)]
    assert first == second


@pytest.mark.parametrize("kind", ["silence", "noise", "hum", "beep"])
def test_synthetic_non_speech_scores_low(vad: SileroVad, kind: str) -> None:
    vad.reset()
    probs = np.array([vad(f) for f in frames_of(synth(kind, 3.0))])
    assert (probs >= 0.5).mean() < 0.1


def test_wrong_frame_size_is_refused(vad: SileroVad) -> None:
    with pytest.raises(ValueError, match="512"):
        vad(np.zeros(480, dtype=np.float32))


# -- segmenter on hand-made probability sequences ------------------------------------------------


def run(probs: list[float], opts: SegmenterOptions | None = None, flush: bool = True) -> tuple[list[Any], Segmenter]:
    seg = Segmenter(opts or SegmenterOptions(), VadOptions())
    events: list[Any] = []
    for i, p in enumerate(probs):
        frame = np.full(512, (i + 1) / 10000, dtype=np.float32)  # frame i is recognisable
        events += seg.push(frame, p)
        if events and isinstance(events[-1], SessionEnd):
            return events, seg
    if flush:
        events += seg.flush()
    return events, seg


def frames(seconds: float) -> int:
    return round(seconds / FRAME_S)


def test_phrase_ends_on_a_pause_and_keeps_padding() -> None:
    opts = SegmenterOptions(pause_s=0.5, pad_s=0.2, min_speech_s=0.1)
    probs = [0.0] * 20 + [0.9] * 30 + [0.0] * frames(0.6) + [0.9] * 10
    events, _ = run(probs, opts)
    phrases = [e for e in events if isinstance(e, Phrase)]
    assert len(phrases) == 2
    first = phrases[0].audio.reshape(-1, 512)[:, 0]
    pad = frames(0.2)
    expected = (np.arange(20 - pad, 50 + pad) + 1) / 10000
    np.testing.assert_allclose(first, expected.astype(np.float32))
    assert phrases[0].speech_s == pytest.approx(30 * FRAME_S)
    assert events[-1] == SessionEnd(EndReason.END_OF_INPUT)


def test_hysteresis_keeps_a_phrase_through_dips_above_neg_threshold() -> None:
    probs = [0.9] * 10 + [0.4] * frames(1.0) + [0.9] * 10  # 0.4 is between neg (0.35) and threshold
    events, _ = run(probs, SegmenterOptions(pause_s=0.3))
    assert len([e for e in events if isinstance(e, Phrase)]) == 1


def test_short_blips_are_dropped() -> None:
    probs = [0.0] * 10 + [0.9] * 3 + [0.0] * 40
    events, _ = run(probs, SegmenterOptions(min_speech_s=0.25, pause_s=0.5))
    assert not [e for e in events if isinstance(e, Phrase)]


def test_long_speech_is_cut_at_max_phrase_length() -> None:
    probs = [0.9] * frames(7.0)
    events, _ = run(probs, SegmenterOptions(max_phrase_s=3.0, pad_s=0.0))
    phrases = [e for e in events if isinstance(e, Phrase)]
    assert len(phrases) == 3
    assert all(len(p.audio) <= frames(3.0) * 512 for p in phrases)
    joined = np.concatenate([p.audio for p in phrases]).reshape(-1, 512)[:, 0]
    np.testing.assert_allclose(joined, ((np.arange(len(probs)) + 1) / 10000).astype(np.float32))


def test_session_ends_after_silence_following_speech() -> None:
    opts = SegmenterOptions(session_silence_s=2.0, pause_s=0.5)
    probs = [0.9] * 20 + [0.0] * frames(10.0)
    events, seg = run(probs, opts, flush=False)
    assert events[-1] == SessionEnd(EndReason.SILENCE)
    assert len([e for e in events if isinstance(e, Phrase)]) == 1
    assert seg.frames_seen == 20 + frames(2.0) + 1
    assert seg.push(np.zeros(512, np.float32), 0.9) == []  # ended sessions stay ended


def test_session_ends_when_nobody_speaks() -> None:
    events, seg = run([0.0] * frames(20.0), SegmenterOptions(initial_silence_s=3.0), flush=False)
    assert events == [SessionEnd(EndReason.NO_SPEECH)]
    assert seg.frames_seen == frames(3.0)


def test_session_ends_at_max_duration_with_the_phrase_in_progress() -> None:
    events, _ = run([0.9] * frames(30.0), SegmenterOptions(max_session_s=5.0, max_phrase_s=10.0), flush=False)
    assert isinstance(events[0], Phrase)
    assert events[-1] == SessionEnd(EndReason.MAX_DURATION)


def test_wipe_zeroes_the_buffer_mid_phrase() -> None:
    seg = Segmenter(SegmenterOptions(), VadOptions())
    for _ in range(5):
        seg.push(np.zeros(512, np.float32), 0.0)
    for _ in range(20):
        seg.push(np.full(512, 0.5, np.float32), 0.9)
    assert np.any(seg._buf)
    seg.wipe()
    assert not np.any(seg._buf)
    assert seg.flush() == [SessionEnd(EndReason.END_OF_INPUT)]


def test_real_clip_gives_phrases_covering_the_speech(vad: SileroVad) -> None:
    clip = next(c for c in speech_clips() if c["file"].endswith("vm-forward.wav"))
    audio = read_wav(clip["path"])
    vad.reset()
    seg = Segmenter(SegmenterOptions(), VadOptions())
    events: list[Any] = []
    for f in frames_of(audio):
        events += seg.push(f.copy(), vad(f))
    events += seg.flush()
    phrases = [e for e in events if isinstance(e, Phrase)]
    assert 1 <= len(phrases) <= 3
    covered = sum(len(p.audio) for p in phrases) / 16000
    assert covered >= 0.6 * clip["duration_s"]


def test_a_long_phrase_ends_on_a_short_dip() -> None:
    opts = SegmenterOptions(pause_s=0.5, long_phrase_s=3.0, short_pause_s=0.1)
    dip = [0.4] * frames(0.13)  # between neg_threshold and threshold, shorter than pause_s
    early, _ = run([0.9] * frames(1.0) + dip + [0.9] * frames(1.0), opts)
    late, _ = run([0.9] * frames(3.5) + dip + [0.9] * frames(1.0), opts)
    assert len([e for e in early if isinstance(e, Phrase)]) == 1
    late_phrases = [e for e in late if isinstance(e, Phrase)]
    assert len(late_phrases) == 2
    assert late_phrases[0].speech_s == pytest.approx(frames(3.5) * FRAME_S, abs=FRAME_S)


def test_by_default_a_breath_cuts_a_phrase_only_after_8_seconds() -> None:
    breath = [0.0] * frames(0.25)  # between short_pause_s (0.2) and pause_s (0.5)
    opts = SegmenterOptions()
    assert (opts.long_phrase_s, opts.short_pause_s, opts.pause_s) == (8.0, 0.2, 0.5)
    sentence, _ = run([0.9] * frames(6.0) + breath + [0.9] * frames(1.0) + [0.0] * frames(1.0), opts)
    monologue, _ = run([0.9] * frames(9.0) + breath + [0.9] * frames(1.0) + [0.0] * frames(1.0), opts)
    assert len([e for e in sentence if isinstance(e, Phrase)]) == 1
    cut = [e for e in monologue if isinstance(e, Phrase)]
    assert len(cut) == 2 and cut[0].speech_s == pytest.approx(9.0, abs=2 * FRAME_S)
    assert not [e for e in monologue if isinstance(e, Tentative) and e.index == 0]  # no speculation past 8 s


# -- speculation: a short phrase is handed out early, a moment into its pause --------------------


def test_a_short_phrase_is_handed_out_as_tentative_with_the_same_audio_as_its_phrase() -> None:
    opts = SegmenterOptions(pause_s=0.5, pad_s=0.5, speculate_after_s=0.15, min_speech_s=0.1)
    events, _ = run([0.0] * 5 + [0.9] * 40 + [0.0] * frames(1.0), opts)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Tentative", "Phrase", "SessionEnd"]
    tentative, phrase = events[0], events[1]
    assert (tentative.index, tentative.speech_frames) == (phrase.index, phrase.speech_frames)
    assert len(tentative.audio) == len(phrase.audio)
    heard = np.flatnonzero(tentative.audio)[-1] + 1
    np.testing.assert_array_equal(tentative.audio[:heard], phrase.audio[:heard])
    assert not np.any(tentative.audio[heard:])  # zeros stand for the pause not yet heard


def test_speech_resuming_after_the_tentative_gives_a_phrase_with_more_speech() -> None:
    opts = SegmenterOptions(pause_s=0.5, speculate_after_s=0.15, min_speech_s=0.1)
    events, _ = run([0.9] * 30 + [0.0] * frames(0.3) + [0.9] * 20 + [0.0] * frames(1.0), opts)
    tentatives = [e for e in events if isinstance(e, Tentative)]
    phrases = [e for e in events if isinstance(e, Phrase)]
    assert len(phrases) == 1 and len(tentatives) == 2
    assert tentatives[0].speech_frames < phrases[0].speech_frames == tentatives[1].speech_frames


def test_no_tentative_for_a_long_phrase_or_with_speculation_off() -> None:
    long_phrase, _ = run([0.9] * frames(3.5) + [0.0] * frames(1.0), SegmenterOptions(long_phrase_s=3.0))
    off, _ = run([0.9] * 30 + [0.0] * frames(1.0), SegmenterOptions(speculate_after_s=0))
    assert not [e for e in long_phrase + off if isinstance(e, Tentative)]
    assert len([e for e in long_phrase + off if isinstance(e, Phrase)]) == 2


def test_no_tentative_for_too_little_speech() -> None:
    events, _ = run([0.9] * 3 + [0.0] * frames(1.0), SegmenterOptions(min_speech_s=0.25))
    assert not [e for e in events if isinstance(e, (Tentative, Phrase))]


def test_speculation_must_come_before_the_pause_that_ends_a_phrase() -> None:
    with pytest.raises(ValueError, match=r"speculate_after_s .* must be shorter than pause_s"):
        SegmenterOptions(pause_s=0.3, speculate_after_s=0.3)
