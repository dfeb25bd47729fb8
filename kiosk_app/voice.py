"""The kiosk's side of a voice session: run it off the UI thread, moderate what it says, hand it back.

The speech pipeline (edge_models) hears and transcribes; this module moderates the live text and the
final text before anything is shown, and turns the final text into the `Comment` the flow reviews.
Events reach the flow through `post`, which runs a callable on the UI thread (Kivy's `Clock` in the
app, a direct call in tests): the flow itself is never touched from another thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from edge_models.moderation import moderate
from edge_models.options import VoiceOptions
from edge_models.pipeline import FinalText, MicStatus, PartialText, Quiet, VoiceEvent, VoiceSession
from kiosk_app.comments import moderated_comment
from sync_agent.contract import Comment

logger = logging.getLogger(__name__)

Post = Callable[[Callable[[], object]], object]
SessionFactory = Callable[[Callable[[VoiceEvent], None]], VoiceSession]


def speech_language(visit_language: str, options: VoiceOptions) -> str:
    """The language a visit's speech is transcribed and moderated in: the visit's own if the terminal hears
    it (`[voice] languages`), else the voice default (`[voice] language`), which the offer screen says."""
    return visit_language if visit_language in options.languages else options.language


class VoiceListener:
    """One listening step of the flow: `start()`, live text through `on_partial`, then `on_final` once."""

    def __init__(
        self,
        make_session: SessionFactory,
        *,
        asr_model: str,
        language: str,
        post: Post,
        on_partial: Callable[[str], object],
        on_final: Callable[[Comment | None], object],
        on_microphone: Callable[[MicStatus], object] = lambda status: None,
        on_quiet: Callable[[Quiet], object] = lambda quiet: None,
        on_nothing_heard: Callable[[], object] | None = None,
    ) -> None:
        """`on_nothing_heard`: the session ran and heard nothing usable (else `on_final(None)`, as for a
        session that failed)."""
        self._make_session = make_session
        self._asr_model = asr_model
        self._language = language
        self._post = post
        self._on_partial = on_partial
        self._on_final = on_final
        self._on_microphone = on_microphone
        self._on_quiet = on_quiet
        self._on_nothing_heard = on_nothing_heard
        self._session: VoiceSession | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._session = self._make_session(self._event)
        except Exception:
            logger.exception("could not start a voice session; the session goes on without a comment")
            self._post(lambda: self._on_final(None))
            return
        self._thread = threading.Thread(target=self._run, name="voice-session", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The citizen tapped "done": what was already heard is still transcribed and reviewed."""
        if self._session is not None:
            self._session.stop()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _event(self, event: VoiceEvent) -> None:
        if isinstance(event, PartialText):
            shown = moderate(event.text, self._language).text  # the citizen sees what would be sent
            self._post(lambda: self._on_partial(shown))
        elif isinstance(event, MicStatus):
            self._post(lambda: self._on_microphone(event))
        elif isinstance(event, Quiet):
            self._post(lambda: self._on_quiet(event))

    def _run(self) -> None:
        assert self._session is not None  # noqa: S101 — set by start()
        comment: Comment | None = None
        ran = False
        try:
            final: FinalText = self._session.run()
            comment = moderated_comment(
                final.text, language=self._language, asr_model=self._asr_model, confidence=final.confidence
            )
            ran = True
        except Exception:
            logger.exception("voice session failed; the session goes on without a comment")
        nothing_heard = self._on_nothing_heard
        if ran and comment is None and nothing_heard is not None:
            self._post(nothing_heard)
        else:
            self._post(lambda: self._on_final(comment))
