"""The listening step: a real voice session (real model, real French clip) through moderation into the flow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edge_models.asr import PhraseResult
from edge_models.audio import SyntheticSource, WavFileSource
from edge_models.moderation import moderate
from edge_models.options import VoiceOptions
from edge_models.pipeline import VoiceEvent, VoiceSession
from kiosk_app.flow import Flow, State
from kiosk_app.voice import VoiceListener
from tests.conftest import speech_clips
from tests.kiosk_app import listening_flow


def listen(flow: Flow, make_session: Callable[[Callable[[VoiceEvent], None]], VoiceSession]) -> list[str]:
    """One listening step wired to `flow` as the kiosk wires it, run to its end; the live texts shown."""
    partials: list[str] = []

    def on_partial(text: str) -> None:
        partials.append(text)
        flow.voice_partial(text)

    listener = VoiceListener(
        make_session,
        asr_model="whisper-base",
        language="fr",
        post=lambda call: call(),
        on_partial=on_partial,
        on_final=flow.voice_final,
        on_nothing_heard=flow.voice_nothing_heard,
    )
    listener.start()
    listener.join(timeout=120)
    return partials


def test_real_speech_reaches_review_moderated_and_is_sent(transcriber: Any, voice_options: Any, vad: Any) -> None:
    flow, clock, records = listening_flow()
    clip = next(c for c in speech_clips() if c["file"].endswith("fleurs_fr_000.wav"))
    partials = listen(
        flow,
        lambda on_event: VoiceSession(
            WavFileSource(clip["path"]), transcriber.transcribe, voice_options, on_event=on_event, vad=vad
        ),
    )
    assert partials, "live text should appear while the citizen speaks"
    assert flow.state == State.REVIEW
    comment = flow.session.comment
    assert comment is not None
    assert "montagneux" in comment.text.lower() or "incendie" in comment.text.lower()
    assert comment.text == " ".join(moderate(partials[-1]).text.split())
    assert 0 < comment.confidence <= 1 and comment.asr_model == "whisper-base"
    clock.advance(1)
    assert flow.send()
    assert records[0].comment == comment


class _ScriptedTranscriber:
    """Says a sentence full of personal data, whatever it hears."""

    def __call__(self, audio: Any) -> PhraseResult:
        return PhraseResult(
            text="Je m'appelle Martine Dupont, rappelez-moi au 06 12 34 56 78, bande de connards.",
            avg_logprob=-0.2,
            no_speech_prob=0.01,
            compression_ratio=1.2,
            duration_s=float(len(audio)) / 16000,
            processing_s=0.01,
            wide_window=False,
        )


def test_personal_data_never_reaches_the_screen_or_the_record(voice_options: Any, vad: Any) -> None:
    flow, clock, records = listening_flow()
    clip = speech_clips()[0]
    partials = listen(
        flow,
        lambda on_event: VoiceSession(
            WavFileSource(clip["path"]), _ScriptedTranscriber(), voice_options, on_event=on_event, vad=vad
        ),
    )
    shown = [*partials, flow.session.comment.text if flow.session.comment else ""]
    for text in shown:
        for secret in ("Martine", "Dupont", "06 12 34 56 78", "connards"):
            assert secret not in text
    clock.advance(1)
    assert flow.send()
    stored = records[0].model_dump_json()
    assert "Dupont" not in stored and "06 12" not in stored
    assert records[0].comment is not None and records[0].comment.redactions["telephone"] >= 1


def test_a_failing_session_ends_without_a_comment() -> None:
    flow, _, records = listening_flow()

    def broken(on_event: Callable[[VoiceEvent], None]) -> VoiceSession:
        raise RuntimeError("microphone exploded")

    listen(flow, broken)
    assert flow.state == State.THANKS
    assert records[0].comment is None


def test_a_session_that_heard_nothing_goes_to_the_nothing_heard_review() -> None:
    flow, _, records = listening_flow()

    def silent(on_event: Callable[[VoiceEvent], None]) -> VoiceSession:
        source = SyntheticSource(np.zeros(16000, dtype=np.float32))
        return VoiceSession(source, lambda audio: None, VoiceOptions(), on_event=on_event, vad=_Silence())  # type: ignore[arg-type,return-value]

    listen(flow, silent)
    assert flow.state == State.REVIEW and flow.session.nothing_heard and records == []


class _Silence:
    def reset(self) -> None:
        pass

    def __call__(self, frame: np.ndarray) -> float:
        return 0.0


def test_speech_is_heard_in_the_visits_language_when_the_terminal_hears_it() -> None:
    from edge_models.options import VoiceOptions
    from kiosk_app.voice import speech_language

    options = VoiceOptions(languages=("fr", "en"))
    assert speech_language("en", options) == "en"
    assert speech_language("es", options) == "fr"  # not heard: the default, and the offer screen says so
    assert speech_language("es", options.model_copy(update={"language": "en"})) == "en"
