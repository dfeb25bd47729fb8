from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from kiosk_app.flow import Flow, Identity, State
from kiosk_app.settings import KioskSection
from sync_agent.contract import Choice, Comment, Flag, FollowUp, Rating, RecordDraft
from tests.conftest import manual_clock

IDENTITY = Identity(site_id="fs-23-01", device_id="borne-7", app_version="0.1.0")
COMMENT = Comment(text="Très bon accueil.", language="fr", asr_model="whisper-base", confidence=0.9)
GAP = 1.0  # between taps, longer than the debounce


def texts(fr: str) -> dict[str, str]:
    return {"fr": fr, "en": fr}


def follow_up(name: str, *ratings: Rating) -> FollowUp:
    return FollowUp(
        id=name,
        text=texts(name),
        choices=[Choice(id="a", text=texts("A")), Choice(id="b", text=texts("B"))],
        ask_when=list(ratings) or list(Rating),
    )


class Harness:
    def __init__(self, settings: KioskSection, voice: bool = True) -> None:
        self.clock = manual_clock()
        self.records: list[RecordDraft] = []
        self.states: list[State] = []
        self.voice = voice
        self.flow = Flow(
            settings,
            IDENTITY,
            clock=self.clock,
            on_record=self.records.append,
            voice_available=lambda: self.voice,
            on_state=self.states.append,
        )

    def tap(self, method: str, *args: object) -> bool:
        self.clock.advance(GAP)
        return bool(getattr(self.flow, method)(*args))

    def wait(self, seconds: float) -> bool:
        self.clock.advance(seconds)
        return self.flow.tick()


def settings(**changes: object) -> KioskSection:
    base = {"follow_ups": [follow_up("resolved"), follow_up("waiting", Rating.DISSATISFIED)]}
    return KioskSection.model_validate({**base, **changes})


@pytest.fixture
def h() -> Harness:
    return Harness(settings())


def test_full_session_with_voice(h: Harness) -> None:
    assert h.flow.state == State.ATTRACT
    assert h.tap("touch")
    assert h.flow.state == State.RATING
    assert h.tap("rate", Rating.DISSATISFIED)
    assert h.flow.state == State.FOLLOW_UP and h.flow.session.current_follow_up is not None
    assert h.flow.session.current_follow_up.id == "resolved"
    assert h.tap("answer", "b")
    assert h.flow.session.current_follow_up is not None and h.flow.session.current_follow_up.id == "waiting"
    assert h.tap("answer", "a")
    assert h.flow.state == State.VOICE_OFFER
    assert h.tap("accept_voice")
    assert h.flow.state == State.LISTENING
    assert h.flow.voice_partial("Très bon")
    assert h.flow.session.partial_text == "Très bon"
    assert h.flow.voice_final(COMMENT)
    assert h.flow.state == State.REVIEW and not h.records
    assert h.tap("send")
    assert h.flow.state == State.THANKS
    [record] = h.records
    assert record.rating == Rating.DISSATISFIED
    assert record.answers == {"resolved": "b", "waiting": "a"}
    assert record.comment == COMMENT
    assert record.flags == []
    assert (record.site_id, record.device_id, record.app_version) == ("fs-23-01", "borne-7", "0.1.0")
    assert record.period == h.clock.now().replace(minute=0, second=0, microsecond=0)
    assert h.states == [
        State.RATING,
        State.FOLLOW_UP,
        State.FOLLOW_UP,
        State.VOICE_OFFER,
        State.LISTENING,
        State.REVIEW,
        State.THANKS,
    ]
    assert h.wait(h.flow.settings.thanks_timeout_s)
    assert h.flow.state == State.ATTRACT
    assert len(h.records) == 1


def test_follow_ups_depend_on_the_rating(h: Harness) -> None:
    h.tap("touch")
    h.tap("rate", Rating.VERY_SATISFIED)
    assert h.flow.session.current_follow_up is not None and h.flow.session.current_follow_up.id == "resolved"
    h.tap("answer", "a")
    assert h.flow.state == State.VOICE_OFFER  # "waiting" is only asked after DISSATISFIED


def test_skipping_a_follow_up_records_no_answer(h: Harness) -> None:
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    assert h.tap("answer", None)
    h.tap("decline_voice")
    assert h.records[0].answers == {}


def test_unknown_choice_is_ignored(h: Harness) -> None:
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    assert not h.tap("answer", "zzz")
    assert h.flow.state == State.FOLLOW_UP


def test_declining_voice_saves_without_comment(h: Harness) -> None:
    h.tap("touch")
    h.tap("rate", Rating.VERY_SATISFIED)
    h.tap("answer", "a")
    assert h.tap("decline_voice")
    assert h.flow.state == State.THANKS
    assert h.records[0].comment is None and h.records[0].flags == []


def test_no_voice_offer_when_voice_unavailable() -> None:
    h = Harness(settings(follow_ups=[]), voice=False)
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    assert h.flow.state == State.THANKS
    assert len(h.records) == 1


def test_no_voice_offer_when_disabled_in_settings() -> None:
    h = Harness(settings(follow_ups=[], voice_enabled=False), voice=True)
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    assert h.flow.state == State.THANKS


def test_review_delete_and_redo(h: Harness) -> None:
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    h.tap("answer", "a")
    h.tap("accept_voice")
    h.flow.voice_final(COMMENT)
    assert h.tap("redo")
    assert h.flow.state == State.LISTENING and h.flow.session.comment is None
    h.flow.voice_final(COMMENT)
    assert h.tap("delete")
    assert h.flow.state == State.THANKS
    assert h.records[0].comment is None


def test_adding_to_a_comment_keeps_what_was_said_and_appends_the_rest(h: Harness) -> None:
    first = Comment(
        text="Très bon accueil.", language="fr", asr_model="whisper-base", redactions={"name": 1}, confidence=0.9
    )
    more = Comment(
        text="Mais une heure d'attente.",
        language="fr",
        asr_model="whisper-base",
        redactions={"name": 1, "telephone": 1},
        confidence=0.5,
    )
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    h.tap("answer", "a")
    h.tap("accept_voice")
    assert not h.flow.add_more()  # only on the review screen
    h.flow.voice_final(first)
    assert h.tap("add_more") and h.flow.state == State.LISTENING
    assert h.flow.session.partial_text == "Très bon accueil."  # the listening screen shows what was said
    h.flow.voice_partial("Mais une heure")
    assert h.flow.session.partial_text == "Très bon accueil. Mais une heure"
    h.flow.voice_final(more)
    comment = h.flow.session.comment
    assert h.flow.state == State.REVIEW and comment is not None
    assert comment.text == "Très bon accueil. Mais une heure d'attente."
    assert comment.redactions == {"name": 2, "telephone": 1}
    assert 0.5 < comment.confidence < 0.9  # each part's confidence weighted by its length
    assert h.tap("send")
    assert h.records[0].comment == comment


@pytest.mark.parametrize("ending", ["nothing_heard", "failed"])
def test_adding_nothing_or_failing_keeps_the_comment_as_it_was(h: Harness, ending: str) -> None:
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    h.tap("answer", "a")
    h.tap("accept_voice")
    h.flow.voice_final(COMMENT)
    h.tap("add_more")
    if ending == "nothing_heard":
        h.flow.voice_nothing_heard()
    else:
        h.flow.voice_final(None)
    assert h.flow.state == State.REVIEW and h.flow.session.comment == COMMENT
    assert not h.flow.session.nothing_heard
    assert h.tap("redo")  # starting again drops it, and a new comment is not joined to the old one
    h.flow.voice_final(COMMENT)
    assert h.flow.session.comment == COMMENT


def test_nothing_to_add_to_when_nothing_was_heard(h: Harness) -> None:
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    h.tap("answer", "a")
    h.tap("accept_voice")
    h.flow.voice_nothing_heard()
    assert not h.tap("add_more") and h.flow.state == State.REVIEW


def test_a_failed_voice_session_ends_without_comment(h: Harness) -> None:
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    h.tap("answer", "a")
    h.tap("accept_voice")
    assert h.flow.voice_final(None)
    assert h.flow.state == State.THANKS
    assert h.records[0].comment is None


def test_nothing_heard_says_so_and_offers_to_try_again(h: Harness) -> None:
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    h.tap("answer", "a")
    h.tap("accept_voice")
    assert h.flow.voice_nothing_heard()
    assert h.flow.state == State.REVIEW and h.flow.session.nothing_heard and h.records == []
    assert h.tap("redo") and h.flow.state == State.LISTENING and not h.flow.session.nothing_heard
    assert h.flow.voice_nothing_heard()
    assert h.tap("send") and h.flow.state == State.THANKS
    [record] = h.records
    assert record.rating == Rating.SATISFIED and record.comment is None
    assert not h.flow.voice_nothing_heard()  # only while listening


def test_rating_timeout_returns_to_attract_without_record(h: Harness) -> None:
    h.tap("touch")
    assert not h.wait(h.flow.settings.rating_timeout_s - 0.5)
    assert h.wait(1)
    assert h.flow.state == State.ATTRACT
    assert h.records == []


@pytest.mark.parametrize("where", ["follow_up", "voice_offer", "listening", "review"])
def test_walking_away_after_rating_keeps_the_rating(h: Harness, where: str) -> None:
    h.tap("touch")
    h.tap("rate", Rating.DISSATISFIED)
    if where != "follow_up":
        h.tap("answer", "a")
        h.tap("answer", "b")
    if where in ("listening", "review"):
        h.tap("accept_voice")
    if where == "review":
        h.flow.voice_final(COMMENT)
    assert h.flow.state == State(where)
    limit = h.flow.timeout_s(h.flow.state)
    assert limit is not None
    assert not h.wait(limit - 0.5)
    assert h.records == []
    assert h.wait(1)
    assert h.flow.state == State.ATTRACT
    [record] = h.records
    assert record.rating == Rating.DISSATISFIED
    assert record.flags == [Flag.ABANDONED]
    assert record.comment is None  # never sent without the citizen's confirmation
    if where != "follow_up":
        assert record.answers == {"resolved": "a", "waiting": "b"}


def test_one_tap_on_a_face_of_the_attract_screen_votes(h: Harness) -> None:
    assert h.tap("rate_at_once", Rating.VERY_SATISFIED)
    assert h.states == [State.FOLLOW_UP]  # no rating screen in between
    limit = h.flow.timeout_s(State.FOLLOW_UP)
    assert limit is not None and h.wait(limit + 0.1)  # the person left at once
    [record] = h.records
    assert record.rating == Rating.VERY_SATISFIED and record.flags == [Flag.ABANDONED]
    assert h.flow.state == State.ATTRACT


def test_one_tap_only_from_the_attract_screen_and_once(h: Harness) -> None:
    h.tap("touch")
    assert not h.tap("rate_at_once", Rating.SATISFIED)  # on the rating screen, the cards vote
    h.tap("rate", Rating.SATISFIED)
    h.wait(h.flow.timeout_s(State.FOLLOW_UP) or 0)
    assert h.flow.rate_at_once(Rating.DISSATISFIED) and not h.flow.rate_at_once(Rating.DISSATISFIED)
    assert h.flow.session.rating == Rating.DISSATISFIED  # a double tap is one vote


def test_one_tap_without_follow_ups_goes_to_the_voice_offer_or_thanks() -> None:
    spoken = Harness(settings(follow_ups=[]))
    assert spoken.tap("rate_at_once", Rating.SATISFIED) and spoken.flow.state == State.VOICE_OFFER
    silent = Harness(settings(follow_ups=[]), voice=False)
    assert silent.tap("rate_at_once", Rating.SATISFIED) and silent.flow.state == State.THANKS
    assert [record.rating for record in silent.records] == [Rating.SATISFIED]


def test_partial_text_keeps_listening_alive(h: Harness) -> None:
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    h.tap("answer", "a")
    h.tap("accept_voice")
    limit = h.flow.settings.listening_timeout_s
    for _ in range(3):
        h.clock.advance(limit - 1)
        h.flow.voice_partial("encore")
        assert not h.flow.tick()
    assert h.flow.state == State.LISTENING


def test_thanks_timeout_and_touch_on_thanks_starts_a_new_session(h: Harness) -> None:
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    h.tap("answer", "a")
    h.tap("decline_voice")
    assert h.tap("touch")
    assert h.flow.state == State.RATING
    assert h.flow.session.rating is None and h.flow.session.answers == {}


def test_attract_has_no_timeout(h: Harness) -> None:
    assert not h.wait(10_000)
    assert h.flow.state == State.ATTRACT


def test_taps_within_the_debounce_are_ignored(h: Harness) -> None:
    h.tap("touch")
    h.clock.advance(0.1)
    assert not h.flow.rate(Rating.VERY_SATISFIED)
    assert h.flow.state == State.RATING
    h.clock.advance(h.flow.settings.debounce_s)
    assert h.flow.rate(Rating.VERY_SATISFIED)
    h.clock.advance(0.05)
    assert not h.flow.answer("a")  # a double tap does not answer the next question too
    assert h.flow.session.answers == {}


def test_events_in_the_wrong_state_are_ignored(h: Harness) -> None:
    assert not h.tap("rate", Rating.SATISFIED)
    assert not h.tap("send")
    assert not h.tap("accept_voice")
    assert not h.flow.voice_final(COMMENT)
    assert not h.flow.voice_partial("x")
    assert h.flow.state == State.ATTRACT and h.records == []


def test_bursts_are_flagged_not_dropped() -> None:
    h = Harness(settings(follow_ups=[], burst_count=3, burst_window_s=30), voice=False)
    for _ in range(5):
        h.tap("touch")
        h.tap("rate", Rating.VERY_DISSATISFIED)
    assert len(h.records) == 5
    assert [record.flags for record in h.records] == [[], [], [Flag.BURST_SUSPECTED]] + [[Flag.BURST_SUSPECTED]] * 2
    h.clock.advance(60)
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    assert h.records[-1].flags == []


def test_language_choice_is_kept_for_the_session_only(h: Harness) -> None:
    assert h.tap("choose_language", "en")
    assert h.flow.state == State.RATING and h.flow.session.language == "en"
    assert not h.tap("choose_language", "de")
    h.tap("rate", Rating.SATISFIED)
    h.tap("answer", "a")
    h.tap("decline_voice")
    assert h.records[0].ui_language == "en"
    h.wait(h.flow.settings.thanks_timeout_s)
    assert h.flow.session.language == "fr"


def test_flow_never_imports_kivy() -> None:
    source = Path(__file__).resolve().parents[2] / "kiosk_app" / "flow.py"
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert "kivy" not in imported


def test_a_touch_on_the_review_starts_its_time_again(h: Harness) -> None:
    assert h.flow.seconds_left() is None  # attract never times out
    assert not h.flow.still_here()  # only the review is kept by a touch anywhere
    h.tap("touch")
    h.tap("rate", Rating.SATISFIED)
    h.tap("answer", "a")
    h.tap("accept_voice")
    h.flow.voice_final(COMMENT)
    limit = h.flow.settings.review_timeout_s
    assert h.flow.seconds_left() == limit
    assert not h.wait(limit - 5) and h.flow.seconds_left() == 5
    assert h.flow.still_here() and h.flow.seconds_left() == limit
    assert not h.wait(limit - 1) and h.flow.state == State.REVIEW
    assert h.wait(2) and h.flow.state == State.ATTRACT
    assert h.records[0].comment is None and Flag.ABANDONED in h.records[0].flags


# -- opening hours and new settings between visits --------------------------------------------------


def test_outside_opening_hours_the_screen_closes_and_takes_no_tap_but_a_visit_is_never_cut() -> None:
    weekdays = {day: ["09:00-12:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    harness = Harness(settings(opening_hours=weekdays))
    flow, clock = harness.flow, harness.clock
    clock.wall = clock.wall.replace(hour=11, minute=59, second=50)  # a Monday
    assert not flow.tick() and flow.state == State.ATTRACT
    assert harness.tap("rate_at_once", Rating.SATISFIED)  # a visit starts just before noon
    harness.wait(20)  # past noon, on the follow-up (30 s): the visit goes on
    assert flow.state == State.FOLLOW_UP
    assert not flow.reconfigure(settings())  # nothing changes during a visit
    harness.wait(30)  # the follow-up times out: saved, then attract, then closed at the next tick
    assert flow.state == State.ATTRACT and len(harness.records) == 1
    assert flow.tick() and flow.state == State.CLOSED
    assert not harness.tap("touch") and not harness.tap("rate_at_once", Rating.VERY_SATISFIED)
    assert not harness.tap("choose_language", "en")
    assert len(harness.records) == 1 and flow.state == State.CLOSED
    clock.wall = clock.wall.replace(hour=9, minute=0) + timedelta(days=1)  # Tuesday morning
    assert flow.tick() and flow.state == State.ATTRACT
    assert harness.tap("touch") and flow.state == State.RATING


def test_new_settings_between_visits() -> None:
    harness = Harness(settings())
    flow = harness.flow
    assert flow.reconfigure(settings(languages=["en", "fr"], opening_hours={"sun": ["00:00-00:01"]}))
    assert flow.settings.languages == ["en", "fr"] and flow.session.language == "en"
    assert flow.state == State.CLOSED  # the new hours apply at once
    assert flow.reconfigure(settings())  # always open again
    assert flow.state == State.ATTRACT and flow.session.language == "fr"
