"""No phrase is lost between the segmenter, the speculation and the guard (scripted VAD, fake decoder)."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from edge_models.asr import PhraseResult
from edge_models.audio import SyntheticSource
from edge_models.options import VoiceOptions
from edge_models.pipeline import PartialText, Quiet, VoiceEvent, VoiceSession, confidence
from edge_models.segmenter import EndReason
from tests.edge_models.test_pipeline_speech import SPECULATIVE, ScriptedVad, heard_frames, scripted_audio

NO_SPECULATION = VoiceOptions.model_validate({"segmenter": {"speculate_after_s": 0, "pause_s": 0.5, "pad_s": 0.5}})


def result(text: str, audio: np.ndarray, logprob: float = -0.2, settled: bool = True) -> PhraseResult:
    return PhraseResult(text, logprob, 0.01, 1.1, len(audio) / 16000, 0.0, False, settled=settled)


def first_frame(audio: np.ndarray) -> int:
    """The frame a phrase's audio starts at (`scripted_audio` numbers its frames from 1)."""
    return round(float(audio[0]) * 10000) - 1


def wait_for(script: ScriptedVad, frame: int) -> None:
    while script.frame < frame:
        threading.Event().wait(0.002)


def test_a_confirmed_speculation_that_comes_back_unusable_is_decoded_again_in_full() -> None:
    probs = [0.9] * 30 + [0.0] * 60
    script = ScriptedVad(probs)
    full: list[int] = []

    def tentative(audio: np.ndarray) -> PhraseResult:
        wait_for(script, 30 + 16 + 2)  # the pause has ended the phrase: the speculation is confirmed
        return result("boucle boucle boucle", audio, logprob=-2.0, settled=False)

    def transcribe(audio: np.ndarray) -> PhraseResult:
        full.append(heard_frames(audio))
        return result("le vrai texte", audio)

    source = SyntheticSource(scripted_audio(len(probs)))
    final = VoiceSession(source, transcribe, SPECULATIVE, vad=script, transcribe_tentative=tentative).run()  # type: ignore[arg-type]
    assert final.text == "le vrai texte"
    assert full == [30 + 16]  # the phrase's own audio, with its whole pause, not the zero-padded tentative


def test_a_confirmed_speculation_still_running_survives_the_next_phrases_speculation() -> None:
    probs = [0.9] * 30 + [0.0] * 20 + [0.9] * 30 + [0.0] * 60
    script = ScriptedVad(probs)
    second_tentative_at = 30 + 20 + 30 + 5

    calls: list[int] = []

    def tentative(audio: np.ndarray) -> PhraseResult:
        calls.append(first_frame(audio))
        if first_frame(audio) == 0:  # phrase 0: finish only once phrase 1 is being speculated on
            wait_for(script, second_tentative_at + 2)
            return result("un", audio)
        return result("deux", audio)

    def transcribe(audio: np.ndarray) -> PhraseResult:
        return result("un" if first_frame(audio) == 0 else "deux", audio)

    events: list[VoiceEvent] = []
    source = SyntheticSource(scripted_audio(len(probs)))
    final = VoiceSession(
        source,
        transcribe,
        SPECULATIVE,
        on_event=events.append,
        vad=script,
        transcribe_tentative=tentative,  # type: ignore[arg-type]
    ).run()
    assert final.text == "un deux" and final.phrases == 2
    assert final.dropped == {} and final.errors == 0
    assert calls[0] == 0 and len(calls) == 2  # each phrase decoded once, speculatively


def test_a_rejected_phrase_is_decoded_again_joined_to_the_next_one() -> None:
    probs = [0.9] * 30 + [0.0] * 20 + [0.9] * 30 + [0.0] * 60
    lengths: list[int] = []

    def transcribe(audio: np.ndarray) -> PhraseResult:
        lengths.append(len(audio))
        if len(lengths) == 1:
            return result("je ne sais pas", audio, logprob=-1.5)  # a fragment decoded alone: garbage
        return result("et conseiller général. L'accident", audio)

    events: list[VoiceEvent] = []
    source = SyntheticSource(scripted_audio(len(probs)))
    final = VoiceSession(source, transcribe, NO_SPECULATION, on_event=events.append, vad=ScriptedVad(probs)).run()  # type: ignore[arg-type]
    assert final.text == "et conseiller général. L'accident"
    assert final.dropped == {} and final.lost_s == 0.0
    phrase0 = (30 + 16) * 512
    assert lengths[0] == phrase0 and lengths[1] > phrase0  # phrase 0 again, followed by phrase 1
    assert "je ne sais pas" not in " ".join(e.text for e in events if isinstance(e, PartialText))


def test_a_rejected_last_phrase_is_counted_as_lost_and_lowers_the_confidence() -> None:
    probs = [0.9] * 30 + [0.0] * 20 + [0.9] * 30 + [0.0] * 60

    def transcribe(audio: np.ndarray) -> PhraseResult:
        if first_frame(audio) == 0:
            return result("bonjour", audio, logprob=-0.1)
        return result("n'importe quoi", audio, logprob=-1.6)

    source = SyntheticSource(scripted_audio(len(probs)))
    final = VoiceSession(source, transcribe, NO_SPECULATION, vad=ScriptedVad(probs)).run()  # type: ignore[arg-type]
    assert final.text == "bonjour"
    assert final.dropped == {"low_logprob": 1}
    kept = (30 + 16) * 512 / 16000
    assert final.lost_s > 0.5
    assert math.isclose(final.confidence, math.exp(-0.1) * kept / (kept + final.lost_s), rel_tol=1e-6)


def test_a_rejected_phrase_joined_and_rejected_again_is_lost_once() -> None:
    probs = [0.9] * 30 + [0.0] * 20 + [0.9] * 30 + [0.0] * 20 + [0.9] * 30 + [0.0] * 60
    calls: list[int] = []

    def transcribe(audio: np.ndarray) -> PhraseResult:
        calls.append(first_frame(audio))
        if len(calls) < 3:
            return result("bla bla", audio, logprob=-1.6)
        return result("fin", audio)

    source = SyntheticSource(scripted_audio(len(probs)))
    final = VoiceSession(source, transcribe, NO_SPECULATION, vad=ScriptedVad(probs)).run()  # type: ignore[arg-type]
    assert final.text == "fin"
    assert final.dropped == {"low_logprob": 1}  # phrase 0, once; phrase 1 was recovered joined to phrase 2
    assert calls[0] == 0 and calls[1] == 0  # phrase 1 was decoded joined after phrase 0
    assert calls[2] > 30  # phrase 2 joined after phrase 1 alone (phrase 0 is lost)


def test_noise_the_guard_rejects_is_not_joined_to_speech() -> None:
    probs = [0.9] * 30 + [0.0] * 20 + [0.9] * 30 + [0.0] * 60
    lengths: list[int] = []

    def transcribe(audio: np.ndarray) -> PhraseResult:
        lengths.append(len(audio))
        if len(lengths) == 1:
            return PhraseResult("Merci d'avoir regardé", -0.3, 0.01, 1.0, 1.0, 0.0, False)
        return result("bonjour", audio)

    source = SyntheticSource(scripted_audio(len(probs)))
    final = VoiceSession(source, transcribe, NO_SPECULATION, vad=ScriptedVad(probs)).run()  # type: ignore[arg-type]
    assert final.text == "bonjour" and final.dropped == {"phantom_phrase": 1}
    assert lengths[1] < lengths[0] + 30 * 512  # phrase 1 alone


def test_confidence_is_the_mean_probability_times_the_share_kept() -> None:
    assert confidence([], 1.0) == 0.0
    assert math.isclose(confidence([-0.2, -0.4], 1.0), math.exp(-0.3))
    assert math.isclose(confidence([-0.2, -0.4], 0.5), math.exp(-0.3) / 2)


def test_a_stale_speculation_returning_late_does_not_unseat_the_confirmed_one() -> None:
    # phrase 0: speech, a short pause (speculation A), speech again, then the pause that ends it
    # (speculation B, confirmed); A is still running when B is confirmed and returns after that.
    probs = [0.9] * 30 + [0.0] * 8 + [0.9] * 20 + [0.0] * 60
    script = ScriptedVad(probs, pause_at=30 + 6)  # the segmenter waits until A has started
    end_of_phrase = 30 + 8 + 20 + 16
    calls: list[int] = []

    def tentative(audio: np.ndarray) -> PhraseResult:
        calls.append(heard_frames(audio))
        if len(calls) == 1:  # A: stale once speech resumed; comes back after B was confirmed
            script.gate.set()
            wait_for(script, end_of_phrase + 4)
            return result("ancien", audio)
        return result("un deux", audio)

    def transcribe(audio: np.ndarray) -> PhraseResult:
        return result("un deux", audio)

    source = SyntheticSource(scripted_audio(len(probs)))
    final = VoiceSession(source, transcribe, SPECULATIVE, vad=script, transcribe_tentative=tentative).run()  # type: ignore[arg-type]
    assert final.text == "un deux" and final.phrases == 1
    assert calls == [30 + 5, 30 + 8 + 20 + 5]


def test_the_end_for_silence_is_counted_down_and_called_off_when_speech_comes_back() -> None:
    """1 s of speech, 4 s of silence, 1 s of speech, then silence until the session ends (6 s)."""
    frames_per_s = 16000 / 512
    probs = [0.9] * 31 + [0.0] * 125 + [0.9] * 31 + [0.0] * 220
    events: list[VoiceEvent] = []
    source = SyntheticSource(scripted_audio(len(probs)))
    session = VoiceSession(
        source, lambda audio: result("oui", audio), NO_SPECULATION, events.append, ScriptedVad(probs)
    )
    final = session.run()
    quiet = [event.seconds_left for event in events if isinstance(event, Quiet)]
    # the 4 s pause: the countdown starts after 3 s (3 left, then 2) and is called off when speech
    # comes back; after the last word, 3, 2, 1 and the session ends for silence, with both parts.
    assert quiet == [3, 2, None, 3, 2, 1]
    assert final.reason == EndReason.SILENCE and final.text == "oui oui"
    assert final.audio_s == pytest.approx((31 + 125 + 31) / frames_per_s + 6.0, abs=0.1)


def test_the_time_limit_is_counted_down_too() -> None:
    """Someone still talking at `max_session_s` is told a few seconds ahead, and the countdown is not
    called off by speech (the limit comes anyway)."""
    options = NO_SPECULATION.model_copy(
        update={"segmenter": NO_SPECULATION.segmenter.model_copy(update={"max_session_s": 8.0})}
    )
    probs = [0.9] * 40 + [0.0] * 10 + [0.9] * 400  # talking on and on, one short breath
    events: list[VoiceEvent] = []
    source = SyntheticSource(scripted_audio(len(probs)))
    final = VoiceSession(source, lambda audio: result("oui", audio), options, events.append, ScriptedVad(probs)).run()
    quiet = [(event.seconds_left, event.reason) for event in events if isinstance(event, Quiet)]
    assert quiet == [(3, EndReason.MAX_DURATION), (2, EndReason.MAX_DURATION), (1, EndReason.MAX_DURATION)]
    assert final.reason == EndReason.MAX_DURATION
