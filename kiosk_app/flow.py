"""The kiosk's screen flow as a plain state machine: the only place that decides what comes next.

Attract -> Rating -> FollowUp(s) -> VoiceOffer -> Listening -> Review -> Thanks -> Attract; a face
tapped on the attract screen is the rating itself (one tap votes) and goes straight to what follows it.
Outside the opening hours (`[kiosk] opening_hours`, empty: always open) the attract screen gives way to
Closed, where the screen sleeps and no tap counts; a visit under way is never cut. Between visits
(attract or closed) `reconfigure` puts in new settings, e.g. a configuration sent by the platform.
Events are method calls (taps, voice results) and `tick()` for timeouts; time comes from an
injected clock, so every path is testable without waiting. The screens (kiosk_app/ui) only call
these methods and draw `flow.state`; this module never imports Kivy.

A session's record is handed to `on_record` exactly once, as soon as the session ends with a
rating: sent from review, declined voice, or walked away (flagged `abandoned`, the rating and
the answers given are kept; an unconfirmed comment is not).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from borne_common.opening_hours import is_open
from kiosk_app.comments import joined_comment
from kiosk_app.settings import KioskSection
from sync_agent.contract import Comment, Flag, FollowUp, Rating, RecordDraft, truncate_to_hour


class State(StrEnum):
    ATTRACT = "attract"
    RATING = "rating"
    FOLLOW_UP = "follow_up"
    VOICE_OFFER = "voice_offer"
    LISTENING = "listening"
    REVIEW = "review"
    THANKS = "thanks"
    CLOSED = "closed"


IDLE = (State.ATTRACT, State.CLOSED)
"""Between visits: where new settings may be put in."""


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going back."""

    def now(self) -> datetime:
        """Local wall time with its UTC offset."""


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now().astimezone()


class ManualClock:
    """A clock moved forward by hand: simulated visits, tests, scripted screens."""

    def __init__(self, start: datetime, monotonic: float = 0.0) -> None:
        self.wall = start
        self.mono = monotonic

    def monotonic(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Identity:
    site_id: str
    device_id: str
    app_version: str


@dataclass
class Session:
    """What the citizen has given so far in the current visit."""

    language: str
    rating: Rating | None = None
    period: datetime | None = None
    answers: dict[str, str] = field(default_factory=dict)
    follow_ups: list[FollowUp] = field(default_factory=list)
    follow_up_index: int = 0
    partial_text: str = ""
    comment: Comment | None = None
    earlier: Comment | None = None  # while adding to a comment: what was said before (kept whatever happens)
    nothing_heard: bool = False  # the review says so and offers to try again
    flags: list[Flag] = field(default_factory=list)

    @property
    def current_follow_up(self) -> FollowUp | None:
        if self.follow_up_index < len(self.follow_ups):
            return self.follow_ups[self.follow_up_index]
        return None


class Flow:
    """The state machine of one terminal. Tap methods return False when the tap was ignored."""

    def __init__(
        self,
        settings: KioskSection,
        identity: Identity,
        *,
        clock: Clock,
        on_record: Callable[[RecordDraft], object],
        voice_available: Callable[[], bool] = lambda: False,
        on_state: Callable[[State], object] = lambda state: None,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self._clock = clock
        self._on_record = on_record
        self._voice_available = voice_available
        self._on_state = on_state
        self.state = State.ATTRACT
        self.session = Session(language=settings.languages[0])
        self._entered_at = clock.monotonic()
        self._last_tap: float | None = None
        self._recent_ratings: deque[float] = deque()

    # -- taps --------------------------------------------------------------------------------------

    def touch(self) -> bool:
        """A tap anywhere on the attract or thanks screen starts a session."""
        if self.state not in (State.ATTRACT, State.THANKS) or not self._tap():
            return False
        self._new_session()
        self._enter(State.RATING)
        return True

    def choose_language(self, language: str) -> bool:
        if self.state not in (State.ATTRACT, State.RATING) or language not in self.settings.languages:
            return False
        if not self._tap():
            return False
        self.session.language = language
        if self.state == State.ATTRACT:
            self._enter(State.RATING)
        else:
            self._entered_at = self._clock.monotonic()
        return True

    def rate(self, rating: Rating) -> bool:
        if self.state != State.RATING or not self._tap():
            return False
        self._rate(rating)
        return True

    def rate_at_once(self, rating: Rating) -> bool:
        """A face tapped on the attract screen: the visit starts with that rating. One tap is a vote,
        kept even if the person leaves at once (saved as abandoned when the next screen times out)."""
        if self.state != State.ATTRACT or not self._tap():
            return False
        self._new_session()
        self._rate(rating)
        return True

    def _rate(self, rating: Rating) -> None:
        now = self._clock.monotonic()
        self.session.rating = Rating(rating)
        self.session.period = truncate_to_hour(self._clock.now())
        if self._is_burst(now):
            self.session.flags.append(Flag.BURST_SUSPECTED)
        self.session.follow_ups = [f for f in self.settings.follow_ups if self.session.rating in f.ask_when]
        if self.session.follow_ups:
            self._enter(State.FOLLOW_UP)
        else:
            self._after_follow_ups()

    def answer(self, choice_id: str | None) -> bool:
        """Answer the current follow-up with one of its choices, or skip it with None."""
        question = self.session.current_follow_up
        if self.state != State.FOLLOW_UP or question is None:
            return False
        if choice_id is not None and choice_id not in {choice.id for choice in question.choices}:
            return False
        if not self._tap():
            return False
        if choice_id is not None:
            self.session.answers[question.id] = choice_id
        self.session.follow_up_index += 1
        if self.session.current_follow_up is None:
            self._after_follow_ups()
        else:
            self._enter(State.FOLLOW_UP)
        return True

    def accept_voice(self) -> bool:
        if self.state != State.VOICE_OFFER or not self._tap():
            return False
        self.session.partial_text = ""
        self._enter(State.LISTENING)
        return True

    def decline_voice(self) -> bool:
        if self.state != State.VOICE_OFFER or not self._tap():
            return False
        self._finish()
        return True

    def send(self) -> bool:
        if self.state != State.REVIEW or not self._tap():
            return False
        self._finish()
        return True

    def add_more(self) -> bool:
        """Speak again to add to the comment under review: what was said stays, the new words follow it."""
        if self.state != State.REVIEW or self.session.comment is None or not self._tap():
            return False
        self.session.earlier = self.session.comment
        self.session.partial_text = self.session.comment.text
        self._enter(State.LISTENING)
        return True

    def redo(self) -> bool:
        if self.state != State.REVIEW or not self._tap():
            return False
        self.session.comment = None
        self.session.earlier = None
        self.session.nothing_heard = False
        self.session.partial_text = ""
        self._enter(State.LISTENING)
        return True

    def delete(self) -> bool:
        if self.state != State.REVIEW or not self._tap():
            return False
        self.session.comment = None
        self.session.earlier = None
        self._finish()
        return True

    # -- voice results (not taps) ------------------------------------------------------------------

    def voice_partial(self, text: str) -> bool:
        if self.state != State.LISTENING:
            return False
        earlier = self.session.earlier
        self.session.partial_text = f"{earlier.text} {text}".strip() if earlier is not None else text
        self._entered_at = self._clock.monotonic()  # the citizen is still talking
        return True

    def voice_final(self, comment: Comment | None) -> bool:
        """The moderated comment, or None when nothing usable was heard (the session ends without it)."""
        if self.state != State.LISTENING:
            return False
        earlier, self.session.earlier = self.session.earlier, None
        if earlier is not None:  # adding: what was said before is never lost
            comment = joined_comment(earlier, comment) if comment is not None else earlier
        if comment is None:
            self._finish()
        else:
            self.session.comment = comment
            self._enter(State.REVIEW)
        return True

    def voice_nothing_heard(self) -> bool:
        """Listening ended without a word: the review screen says so and offers to try again (or to send
        the rating alone), instead of ending on thanks as if something had been said."""
        if self.state != State.LISTENING:
            return False
        earlier, self.session.earlier = self.session.earlier, None
        self.session.comment = earlier  # adding and nothing more was said: the comment as it was
        self.session.nothing_heard = earlier is None
        self._enter(State.REVIEW)
        return True

    def reconfigure(self, settings: KioskSection) -> bool:
        """Run with `settings` from now on; only between visits (False, and nothing changes, during one)."""
        if self.state not in IDLE:
            return False
        self.settings = settings
        self._new_session()
        self._open_or_close()
        return True

    def is_open(self) -> bool:
        hours = self.settings.opening_hours
        return not hours or is_open(hours, self._clock.now())

    # -- time --------------------------------------------------------------------------------------

    def timeout_s(self, state: State) -> float | None:
        s = self.settings
        return {
            State.CLOSED: None,
            State.ATTRACT: None,
            State.RATING: s.rating_timeout_s,
            State.FOLLOW_UP: s.follow_up_timeout_s,
            State.VOICE_OFFER: s.voice_offer_timeout_s,
            State.LISTENING: s.listening_timeout_s,
            State.REVIEW: s.review_timeout_s,
            State.THANKS: s.thanks_timeout_s,
        }[state]

    def seconds_left(self) -> float | None:
        """Seconds before the current screen times out (None: it never does)."""
        limit = self.timeout_s(self.state)
        return None if limit is None else max(0.0, limit - (self._clock.monotonic() - self._entered_at))

    def still_here(self) -> bool:
        """A touch anywhere on the review screen: the citizen is still there, its timeout starts again."""
        if self.state != State.REVIEW:
            return False
        self._entered_at = self._clock.monotonic()
        return True

    def tick(self) -> bool:
        """Apply the current screen's timeout if it has passed, and the opening hours between visits; True when
        the state changed."""
        if self.state in IDLE:
            return self._open_or_close()
        limit = self.timeout_s(self.state)
        if limit is None or self._clock.monotonic() - self._entered_at < limit:
            return False
        if self.state in (State.RATING, State.THANKS):
            self._new_session()
            self._enter(State.ATTRACT)
            return True
        # Walked away after rating: keep what was given, never an unconfirmed comment.
        self.session.comment = None
        self.session.flags.append(Flag.ABANDONED)
        self._save()
        self._new_session()
        self._enter(State.ATTRACT)
        return True

    # -- internals ---------------------------------------------------------------------------------

    def _open_or_close(self) -> bool:
        wanted = State.ATTRACT if self.is_open() else State.CLOSED
        if wanted == self.state:
            return False
        self._enter(wanted)
        return True

    def _tap(self) -> bool:
        now = self._clock.monotonic()
        if self._last_tap is not None and now - self._last_tap < self.settings.debounce_s:
            return False
        self._last_tap = now
        return True

    def _is_burst(self, now: float) -> bool:
        window = self.settings.burst_window_s
        self._recent_ratings.append(now)
        while self._recent_ratings and now - self._recent_ratings[0] > window:
            self._recent_ratings.popleft()
        return len(self._recent_ratings) >= self.settings.burst_count

    def _after_follow_ups(self) -> None:
        if self.settings.voice_enabled and self._voice_available():
            self._enter(State.VOICE_OFFER)
        else:
            self._finish()

    def _finish(self) -> None:
        self._save()
        self._enter(State.THANKS)

    def _save(self) -> None:
        session = self.session
        if session.rating is None or session.period is None:
            return
        self._on_record(
            RecordDraft(
                site_id=self.identity.site_id,
                device_id=self.identity.device_id,
                period=session.period,
                rating=session.rating,
                answers=dict(session.answers),
                comment=session.comment,
                flags=list(session.flags),
                ui_language=session.language,
                app_version=self.identity.app_version,
            )
        )
        session.rating = None  # saved once, whatever happens next

    def _new_session(self) -> None:
        self.session = Session(language=self.settings.languages[0])

    def _enter(self, state: State) -> None:
        self.state = state
        self._entered_at = self._clock.monotonic()
        self._on_state(state)
