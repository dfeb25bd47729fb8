"""Runs one UI scenario in this process's single Kivy window and writes what it observed as JSON.

    python -m tests.kiosk_app.ui.driver SPEC.json OUT.json

SPEC holds the scenario name, the settings (as the TOML sections would) and scenario options. The
tests assert on OUT; this driver decides nothing about pass or fail. Touches are synthesised and go
through Kivy's input dispatch; the flow's clock is a fake the scenario moves by hand.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

from kiosk_app.flow import Identity, ManualClock, State
from kiosk_app.runtime import AudioInput, VoiceRuntime
from kiosk_app.settings import KioskSettings
from kiosk_app.ui.launch import run_kiosk
from sync_agent.contract import Rating
from sync_agent.outbox import Outbox


class HeldRuntime(VoiceRuntime):
    """Loads only once the scenario sets `release`: the kiosk runs meanwhile as while a model loads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = threading.Event()

    def load(self) -> None:
        self.release.wait(timeout=120)
        super().load()


class RecordingSpeaker:
    """Stands in for espeak-ng: notes what would be said."""

    def __init__(self, observed: dict[str, Any]) -> None:
        self.said: list[list[str]] = observed.setdefault("said", [])

    def available(self) -> bool:
        return True

    def say(self, text: str, language: str) -> None:
        self.said.append([text, language])

    def stop(self) -> None:
        pass

    def speaking(self) -> bool:
        return False


def main(spec_path: str, out_path: str) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    settings = KioskSettings(**spec["settings"])
    audio_spec = spec.get("audio", {})
    audio = AudioInput(
        kind=audio_spec.get("kind", "synthetic"),
        wav_path=Path(audio_spec["wav_path"]) if "wav_path" in audio_spec else None,
        seconds=float(audio_spec.get("seconds", 5.0)),
    )
    clock = ManualClock(datetime(2026, 11, 23, 10, 17, tzinfo=timezone(timedelta(hours=1))), monotonic=1000.0)
    observed: dict[str, Any] = {}
    scenario = SCENARIOS[spec["scenario"]]
    size = tuple(spec.get("size", (800, 480)))
    with Outbox.open(settings.outbox.path) as outbox:
        outcome = run_kiosk(
            settings,
            outbox=outbox,
            identity=Identity(settings.device.site_id, settings.device.device_id, "0.0.test"),
            audio=audio,
            size=(int(size[0]), int(size[1])),
            offscreen=True,
            script=lambda app: scenario(app, clock, spec, observed),
            clock=clock,
            speaker=RecordingSpeaker(observed) if spec.get("speaker") == "recording" else "default",
            runtime=HeldRuntime(settings.voice, audio) if spec.get("hold_model") else None,
        )
    observed["error"] = None if outcome.error is None else repr(outcome.error)
    observed["stored"] = [record.model_dump(mode="json") for record in outcome.app.stored]
    Path(out_path).write_text(json.dumps(observed, indent=1), encoding="utf-8")
    return 0


# -- what the scenarios look at ------------------------------------------------------------------------


def visible(widget: Any, screen: Any) -> bool:
    while widget is not None and widget is not screen:
        if widget.opacity == 0 or widget.disabled:
            return False
        widget = widget.parent
    return True


def geometry(app: Any) -> dict[str, Any]:
    """Every visible widget of the current screen in window coordinates, buttons and text boxes marked."""
    from kivy.core.window import Window
    from kivy.uix.behaviors import ButtonBehavior
    from kivy.uix.label import Label

    screen = app.manager.current_screen
    widgets = []
    for widget in screen.walk(restrict=True):
        if widget is screen or not visible(widget, screen):
            continue
        x, y = widget.to_window(widget.x, widget.y)
        entry: dict[str, Any] = {
            "class": type(widget).__name__,
            "rect": [x, y, widget.width, widget.height],
            "button": isinstance(widget, ButtonBehavior),
        }
        if isinstance(widget, Label) and widget.text:
            widget.texture_update()
            entry["text"] = widget.text
            entry["texture"] = list(widget.texture_size)
            entry["font_size"] = float(widget.font_size)
            entry["cap_px"] = cap_height_px(widget)
            entry["lines"] = len(widget._label._cached_lines)
            wrap_width = widget.text_size[0] or widget.width
            entry["words_fit"] = all(
                widget._label.get_extents(word)[0] <= wrap_width + 0.5 for word in widget.text.split()
            )
        widgets.append(entry)
    return {"window": list(Window.size), "screen": app.manager.current, "widgets": widgets}


_CAPS: dict[tuple[str, float, bool], int] = {}


def cap_height_px(label: Any) -> int:
    """The height in pixels of a capital H drawn in the label's font, size and weight: the rows of its
    rendered texture that hold ink."""
    from kivy.core.text import Label as CoreLabel

    key = (str(label.font_name), float(label.font_size), bool(label.bold))
    if key not in _CAPS:
        core = CoreLabel(text="H", font_name=label.font_name, font_size=label.font_size, bold=label.bold)
        core.refresh()
        texture = core.texture
        pixels = texture.pixels
        width = texture.width
        inked = [
            row
            for row in range(texture.height)
            if any(pixels[(row * width + column) * 4 + 3] > 127 for column in range(width))
        ]
        _CAPS[key] = inked[-1] - inked[0] + 1 if inked else 0
    return _CAPS[key]


def settled(app: Any, name: str) -> bool:
    return bool(app.screen_ready(name))


# -- scenarios -------------------------------------------------------------------------------------------


def layout(app: Any, clock: ManualClock, spec: dict[str, Any], observed: dict[str, Any]) -> Iterator[Any]:
    """Each screen at the window's size (one size per process: an offscreen window is not resized reliably),
    on the tour `borne kiosk --demo --contact-sheets` photographs; the review's pages turned by touch."""
    from kivy.core.window import Window

    from kiosk_app.ui.script import pause, screenshot, until
    from kiosk_app.ui.touch import tap
    from kiosk_app.ui.tour import tour

    width, height = Window.size
    shots: dict[str, Any] = {}
    observed["layout"] = shots

    def capture(name: str) -> Iterator[Any]:
        yield until(lambda: settled(app, app.manager.current), "the screen")
        yield pause(0.15)
        shots[name] = geometry(app)
        shots[name]["spoken"] = app.current_screen.spoken_text()
        if spec.get("screenshots"):
            screenshot(Path(spec["screenshots"]) / f"{width}x{height}-{name}.png")
        if name == "review":
            yield from turn_pages(shots[name])

    def turn_pages(shot: dict[str, Any]) -> Iterator[Any]:
        """Every page of the comment, by touching the page button, and the first again after the last."""
        comment = app.current_screen.ids.comment
        pages = [comment.text]
        if comment.page_count < 2:
            shot["pages"] = pages
            return
        shot["page_font_sizes"] = [float(comment.font_size)]
        shot["page_heights"] = [[comment.texture_size[1], comment.height - 2 * comment.inset]]
        for _ in range(int(comment.page_count)):
            tap(app.current_screen.ids.turn)
            yield until(partial(_turned, comment, pages[-1]), "the next page", 5)
            yield pause(0.05)
            pages.append(comment.text)
            shot["page_font_sizes"].append(float(comment.font_size))
            shot["page_heights"].append([comment.texture_size[1], comment.height - 2 * comment.inset])
        shot["pages"] = pages
        shot["full_comment"] = app.current_screen.comment_text

    yield from tour(app, clock, capture)
    observed["vm_hwm_kb"] = _vm_hwm_kb()


def _turned(comment: Any, last: str) -> bool:
    return bool(comment.text != last)


def _vm_hwm_kb() -> int:
    """This process's peak resident memory (VmHWM), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def behaviour(app: Any, clock: ManualClock, spec: dict[str, Any], observed: dict[str, Any]) -> Iterator[Any]:
    """Idle reset, debounce, technician PIN, and whether voice is offered, all by synthesised touches."""
    from kiosk_app.ui.app import TECHNICIAN, TECHNICIAN_GATE
    from kiosk_app.ui.demo import find_button, rating_card
    from kiosk_app.ui.script import until
    from kiosk_app.ui.touch import tap, tap_at
    from sync_agent.contract import ComponentState

    flow = app.flow
    kiosk = app.settings.kiosk
    visited: list[str] = []
    observed["visited"] = visited
    show = app._show

    def recording_show(name: str) -> None:
        visited.append(str(name))
        show(name)

    app._show = recording_show

    def centre() -> None:
        tap_at(app.manager.width / 2, app.manager.height / 2)

    def wait_for(name: str) -> Any:
        return until(lambda: settled(app, name), f"the {name} screen")

    # The model is still loading (held back by the driver): the rating works all the same.
    yield wait_for(State.ATTRACT)
    centre()
    yield wait_for(State.RATING)
    clock.advance(kiosk.debounce_s + 1)
    tap(rating_card(app, Rating.DISSATISFIED))
    yield wait_for(State.FOLLOW_UP)
    observed["while_loading"] = {"model": app.runtime.model.value, "screen": app.manager.current}
    clock.advance(kiosk.follow_up_timeout_s + 1)
    yield wait_for(State.ATTRACT)
    app.runtime.release.set()

    yield until(lambda: app.runtime.model != ComponentState.LOADING, "the model state", 120)
    observed["model_state"] = app.runtime.model.value
    observed["voice_available"] = app.runtime.available

    # Idle reset from the rating screen: back to attract, nothing saved.
    centre()
    yield wait_for(State.RATING)
    clock.advance(kiosk.rating_timeout_s + 1)
    yield until(lambda: settled(app, State.ATTRACT), "attract after the rating timeout", 5)
    observed["after_rating_timeout"] = {"screen": app.manager.current, "stored": len(app.stored)}

    # Read aloud: the rating screen's button says the question, in the session's language.
    clock.advance(kiosk.debounce_s + 1)
    centre()
    yield wait_for(State.RATING)
    clock.advance(kiosk.debounce_s + 1)
    tap(next(w for w in app.current_screen.walk() if getattr(w, "language", None) == "en"))  # the English flag
    for widget in app.current_screen.walk():
        if type(widget).__name__ == "ReadAloudButton":
            tap(widget)
    clock.advance(kiosk.rating_timeout_s + 1)
    yield until(lambda: settled(app, State.ATTRACT), "attract after the rating timeout", 5)

    # Debounce: a second tap within debounce_s lands on the follow-up screen and is ignored.
    clock.advance(kiosk.debounce_s + 1)
    centre()
    yield wait_for(State.RATING)
    clock.advance(kiosk.debounce_s + 1)
    tap(rating_card(app, Rating.VERY_DISSATISFIED))
    yield wait_for(State.FOLLOW_UP)
    first_choice = next(reversed(app.current_screen.ids.choices.children))
    tap(first_choice)  # same instant on the flow's clock: within debounce_s
    observed["double_tap"] = {"index": flow.session.follow_up_index, "answers": dict(flow.session.answers)}
    clock.advance(kiosk.debounce_s + 0.1)
    tap(first_choice)
    observed["later_tap"] = {"index": flow.session.follow_up_index, "answers": dict(flow.session.answers)}

    # Idle reset after a rating: saved as abandoned, back to attract.
    yield wait_for(State.FOLLOW_UP)
    clock.advance(kiosk.follow_up_timeout_s + 1)
    yield until(lambda: settled(app, State.ATTRACT), "attract after the follow-up timeout", 5)
    observed["after_follow_up_timeout"] = {"screen": app.manager.current, "stored": len(app.stored)}

    # A whole session by touch: with no usable model, no voice offer between the answers and thanks.
    visited.clear()
    clock.advance(kiosk.debounce_s + 1)
    centre()
    yield wait_for(State.RATING)
    clock.advance(kiosk.debounce_s + 1)
    tap(rating_card(app, Rating.SATISFIED))
    while flow.state == State.FOLLOW_UP:
        yield wait_for(State.FOLLOW_UP)
        clock.advance(kiosk.debounce_s + 1)
        tap(list(reversed(app.current_screen.ids.choices.children))[-1])
    if flow.state == State.VOICE_OFFER:
        yield wait_for(State.VOICE_OFFER)
        clock.advance(kiosk.debounce_s + 1)
        tap(find_button(app, app.tr("voice_offer.decline")))
    yield wait_for(State.THANKS)
    observed["session_screens"] = list(visited)
    observed["state_file"] = json.loads(app.settings.device.kiosk_state_path.read_text(encoding="utf-8"))

    # Technician: the hidden gesture, then the PIN.
    clock.advance(kiosk.thanks_timeout_s + 1)
    yield wait_for(State.ATTRACT)
    side = app.m.target / 2
    for _ in range(5):
        tap_at(side, app.manager.height - side)
    yield until(lambda: app.manager.current != State.ATTRACT, "the gesture to open a screen", 3)
    observed["after_gesture"] = app.manager.current
    if app.manager.current == TECHNICIAN_GATE:
        yield until(lambda: settled(app, TECHNICIAN_GATE), "the PIN pad", 3)
        for digit in spec["wrong_pin"]:
            tap(find_button(app, digit))
        tap(find_button(app, app.tr("tech.ok")))
        observed["after_wrong_pin"] = {"screen": app.manager.current, "message": app.current_screen.message}
        state = json.loads(app.settings.device.kiosk_state_path.read_text())
        observed["pin_failures_reported"] = state["technician_pin_failures"]
        for digit in kiosk.technician_pin:
            tap(find_button(app, digit))
        tap(find_button(app, app.tr("tech.ok")))
        yield until(lambda: settled(app, TECHNICIAN), "the technician screen", 3)
        observed["technician_texts"] = [w["text"] for w in geometry(app)["widgets"] if "text" in w]
        tap(find_button(app, app.tr("tech.mic_start")))
        yield until(lambda: app.current_screen.level > 0, "a microphone level", 10)
        observed["technician_level"] = app.current_screen.level
        tap(find_button(app, app.tr("tech.mic_stop")))
        tap(find_button(app, app.tr("tech.speaker_test")))
        observed["speaker_test"] = observed["said"][-1]
        tap(find_button(app, app.tr("tech.back")))
        yield wait_for(State.ATTRACT)
    # The PIN pad left alone goes back to attract.
    from kiosk_app.ui.app import TECHNICIAN_IDLE_S

    for _ in range(5):
        tap_at(side, app.manager.height - side)
    yield until(lambda: settled(app, TECHNICIAN_GATE), "the PIN pad again", 3)
    clock.advance(TECHNICIAN_IDLE_S + 1)
    yield until(lambda: settled(app, State.ATTRACT), "attract after the technician's idle time", 5)
    observed["technician_idle"] = app.manager.current

    # One tap in the corner and no other: a citizen's touch, which starts a session.
    clock.advance(kiosk.debounce_s + 1)
    tap_at(side, app.manager.height - side)
    observed["corner_tap_at_once"] = flow.state.value
    yield until(lambda: flow.state == State.RATING, "a session from a lone tap in the corner", 3)
    observed["lone_corner_tap"] = flow.state.value
    clock.advance(kiosk.rating_timeout_s + 1)
    yield wait_for(State.ATTRACT)

    # Without a PIN the corner is a place like any other.
    from kiosk_app.technician import PinGate

    app.pin_gate = PinGate("")  # as with `technician_pin = ""`
    clock.advance(kiosk.debounce_s + 1)
    tap_at(side, app.manager.height - side)
    observed["corner_without_pin"] = {"screen": app.manager.current, "state": flow.state.value}
    clock.advance(kiosk.rating_timeout_s + 1)
    yield wait_for(State.ATTRACT)

    # One tap on a face of the attract screen votes; the person walks away at once.
    visited.clear()
    stored_before = len(app.stored)
    clock.advance(kiosk.debounce_s + 1)
    yield wait_for(State.ATTRACT)
    faces = list(reversed(app.current_screen.ids.faces.children))
    tap(faces[Rating.VERY_SATISFIED - 1])
    yield until(lambda: flow.state != State.ATTRACT, "the screen after a face", 3)
    observed["one_tap_state"] = flow.state.value
    clock.advance(max(flow.timeout_s(flow.state) or 0, 0) + 1)
    yield until(lambda: settled(app, State.ATTRACT), "attract after walking away", 5)
    observed["one_tap"] = {
        "screens": list(visited),
        "stored": [(int(r.rating), [str(f) for f in r.flags]) for r in list(app.stored)[stored_before:]],
    }


def listening_timeout(app: Any, clock: ManualClock, spec: dict[str, Any], observed: dict[str, Any]) -> Iterator[Any]:
    """A voice session that would never end by itself (endless silence) is stopped by the flow's timeout."""
    from kiosk_app.ui.script import pause, until
    from sync_agent.contract import ComponentState

    flow = app.flow
    kiosk = app.settings.kiosk
    yield until(lambda: app.runtime.model != ComponentState.LOADING, "the model", 180)
    observed["model_state"] = app.runtime.model.value
    for step in (flow.touch, lambda: flow.rate(Rating.VERY_SATISFIED), flow.accept_voice):
        clock.advance(kiosk.debounce_s + 1)
        step()
    yield until(lambda: app._listener is not None and app._listener._thread is not None, "the voice session", 10)
    listener = app._listener
    thread = listener._thread
    yield pause(0.5)  # the session runs on its thread meanwhile
    observed["listening_alive"] = thread.is_alive()
    # The pipeline's countdown before it ends for silence, as the session thread sends it.
    from edge_models.pipeline import Quiet
    from edge_models.segmenter import EndReason

    hint = app.screen(State.LISTENING).ids.hint
    listener._event(Quiet(2))
    yield until(lambda: app.screen(State.LISTENING).seconds_left == 2, "the countdown", 3)
    observed["countdown_hint"] = hint.text
    listener._event(Quiet(None))
    yield until(lambda: app.screen(State.LISTENING).seconds_left == 0, "the countdown called off", 3)
    observed["hint_after_countdown"] = hint.text
    listener._event(Quiet(3, EndReason.MAX_DURATION))
    yield until(lambda: app.screen(State.LISTENING).seconds_left == 3, "the time limit's countdown", 3)
    observed["time_limit_hint"] = hint.text
    clock.advance(kiosk.listening_timeout_s + 1)
    yield until(lambda: flow.state == State.ATTRACT, "attract after the listening timeout", 5)
    yield until(lambda: not thread.is_alive(), "the voice session to stop", 20)
    observed["session_stopped"] = not thread.is_alive()
    observed["screen"] = app.manager.current


def toucher(app: Any, clock: ManualClock) -> Any:
    """A tap on a widget once the debounce time has passed on the flow's clock."""
    from kiosk_app.ui.touch import tap

    def touch(widget: Any) -> None:
        clock.advance(app.settings.kiosk.debounce_s + 1)
        tap(widget)

    return touch


def to_rating(app: Any, clock: ManualClock) -> Iterator[Any]:
    """The model loaded (or failed), a touch on the attract screen: the rating screen."""
    from kiosk_app.ui.script import until
    from kiosk_app.ui.touch import tap_at
    from sync_agent.contract import ComponentState

    yield until(lambda: app.runtime.model != ComponentState.LOADING, "the model", 180)
    yield until(lambda: settled(app, State.ATTRACT), "attract")
    clock.advance(app.settings.kiosk.debounce_s + 1)
    tap_at(app.manager.width / 2, app.manager.height / 2)
    yield until(lambda: settled(app, State.RATING), "rating")


def stop_and_redo(app: Any, clock: ManualClock, spec: dict[str, Any], observed: dict[str, Any]) -> Iterator[Any]:
    """Voice by touch: "done" part-way through the clip, review, start again, the whole clip, then "add more"
    and "done" part-way through the clip again, send."""
    from kiosk_app.ui.demo import find_button, rating_card
    from kiosk_app.ui.script import pause, until

    flow = app.flow
    touch = toucher(app, clock)
    yield from to_rating(app, clock)
    touch(rating_card(app, Rating.SATISFIED))
    yield until(lambda: settled(app, State.VOICE_OFFER), "the voice offer")
    touch(find_button(app, app.tr("voice_offer.accept")))
    yield until(lambda: settled(app, State.LISTENING), "listening")
    yield pause(spec["stop_after_s"])
    touch(find_button(app, app.tr("listening.stop")))
    yield until(lambda: flow.state != State.LISTENING, "the end of listening after done", 60)
    observed["after_stop"] = flow.state.value
    observed["stopped_comment"] = flow.session.comment.text if flow.session.comment else None
    yield until(lambda: settled(app, State.REVIEW), "review")
    touch(find_button(app, app.tr("review.redo")))
    yield until(lambda: settled(app, State.LISTENING), "listening again")
    observed["live_text_cleared"] = app.screen(State.LISTENING).live_text == ""
    yield until(lambda: flow.state != State.LISTENING, "the end of the clip", 120)
    yield until(lambda: settled(app, State.REVIEW), "review again")
    observed["review_text"] = app.screen(State.REVIEW).comment_text
    touch(find_button(app, app.tr("review.add")))
    yield until(lambda: settled(app, State.LISTENING), "listening to add more")
    observed["live_text_when_adding"] = app.screen(State.LISTENING).live_text
    yield pause(spec["stop_after_s"])
    touch(find_button(app, app.tr("listening.stop")))
    yield until(lambda: settled(app, State.REVIEW), "review of the comment and its addition")
    observed["added_text"] = app.screen(State.REVIEW).comment_text
    touch(find_button(app, app.tr("review.send")))
    yield until(lambda: settled(app, State.THANKS), "thanks")


def visit_in_language(app: Any, clock: ManualClock, spec: dict[str, Any], observed: dict[str, Any]) -> Iterator[Any]:
    """A visit whose language is chosen by its flag: the offer says which language to speak in, the clip is
    heard to its end, the review shows its text, sent."""
    from kiosk_app.ui.demo import find_button, flag_button, rating_card
    from kiosk_app.ui.script import until

    touch = toucher(app, clock)
    yield from to_rating(app, clock)
    touch(flag_button(app, spec["language"]))
    yield until(lambda: app.language == spec["language"], "the visit's language")
    touch(rating_card(app, Rating.SATISFIED))
    yield until(lambda: settled(app, State.VOICE_OFFER), "the voice offer")
    observed["offer_texts"] = [
        w.text for w in app.current_screen.walk() if visible(w, app.current_screen) and getattr(w, "text", "")
    ]
    touch(find_button(app, app.tr("voice_offer.accept")))
    yield until(lambda: settled(app, State.LISTENING), "listening")
    yield until(lambda: settled(app, State.REVIEW), "review", 120)
    observed["review_text"] = app.screen(State.REVIEW).comment_text
    touch(find_button(app, app.tr("review.send")))
    yield until(lambda: settled(app, State.THANKS), "thanks")


def review_countdown(app: Any, clock: ManualClock, spec: dict[str, Any], observed: dict[str, Any]) -> Iterator[Any]:
    """The review's last seconds are counted down; a touch anywhere keeps it; left alone, it ends with the
    rating sent without the comment."""
    from kiosk_app.ui.script import pause, until
    from kiosk_app.ui.touch import tap_at
    from sync_agent.contract import Comment, ComponentState

    flow = app.flow
    kiosk = app.settings.kiosk
    review = app.screen(State.REVIEW)
    yield until(lambda: app.runtime.model != ComponentState.LOADING, "the model", 180)
    for step in (flow.touch, lambda: flow.rate(Rating.SATISFIED), flow.accept_voice):
        clock.advance(kiosk.debounce_s + 1)
        step()
    yield until(lambda: app._listener is not None, "the voice session", 10)
    app._voice_final(Comment(text="Très bon accueil.", language="fr", asr_model="whisper-base", confidence=0.9))
    yield until(lambda: settled(app, State.REVIEW), "review")
    observed["note_at_first"] = review.ids.note.text
    clock.advance(kiosk.review_timeout_s - 10)
    yield until(lambda: review.seconds_left > 0, "the countdown", 5)
    observed["note_in_countdown"] = review.ids.note.text
    tap_at(app.manager.width / 2, app.manager.height * 0.6)  # on the comment, not on a button
    yield until(lambda: review.seconds_left == 0, "the countdown called off by a touch", 5)
    observed["state_after_touch"] = flow.state.value
    clock.advance(kiosk.review_timeout_s - 1)
    yield pause(1.5)
    observed["state_before_timeout"] = flow.state.value  # the touch gave it the whole time again
    clock.advance(2)
    yield until(lambda: settled(app, State.ATTRACT), "attract after the review timed out", 5)


def _quiet(app: Any) -> Any:
    """Cancel every periodic event (the app's, the script runner's, Kivy's cache purge): the loop turns only
    when a frame is due or something wakes it. Returns the function that puts them back (UI thread)."""
    from kivy.cache import Cache
    from kivy.clock import Clock

    from kiosk_app.ui.script import ScriptRunner

    runner_events = [
        event
        for event in Clock.get_events()
        if isinstance(getattr(event.get_callback(), "__self__", None), ScriptRunner)
    ]
    for event in runner_events:
        event.cancel()
    Clock.unschedule(app._tick)
    Clock.unschedule(app._watchdog)
    Clock.unschedule(Cache._purge_by_timeout)

    def resume() -> None:
        Clock.schedule_interval(Cache._purge_by_timeout, 1)
        Clock.schedule_interval(app._tick, 1.0)
        Clock.schedule_interval(app._watchdog, 10.0)
        for event in runner_events:
            event()

    return resume


def input_wake(app: Any, clock: ManualClock, spec: dict[str, Any], observed: dict[str, Any]) -> Iterator[Any]:
    """The attract screen's loop asleep (with `node`: its frame rate lowered to `quiet_fps`, nothing else
    scheduled): a touch queued in an input provider waits; a write on the watched input node wakes the loop
    and the touch goes through. Without `node`, the touch is read by the attract screen's polling."""
    import os
    import time

    from kivy.clock import Clock

    from kiosk_app.ui.env import set_frame_rate
    from kiosk_app.ui.script import until
    from sync_agent.contract import ComponentState

    yield until(lambda: settled(app, State.ATTRACT) and app.runtime.model != ComponentState.LOADING, "attract", 60)
    observed["watching"] = app.input_wake.watching
    observed["attract_fps"] = Clock._max_fps
    from kiosk_app.ui.touch import QueuedTouches

    touches = QueuedTouches()
    touches.install()
    node = spec.get("node")
    write_end = os.open(node, os.O_WRONLY | os.O_NONBLOCK) if node else None
    done = threading.Event()
    resume = _quiet(app)
    if node:
        set_frame_rate(spec["quiet_fps"])  # the next attract frame far away: only a wake can turn the loop

    def wait(condition: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not condition():
            time.sleep(0.01)
        return bool(condition())

    def probe() -> None:  # off the UI thread, so that nothing of ours wakes the loop
        try:
            time.sleep(0.5)
            turns = Clock.frames
            touches.queue.append((app.manager.width / 2, app.manager.height / 2))
            time.sleep(spec.get("quiet_s", 1.5))
            observed["without_wake"] = {
                "screen": str(app.manager.current),
                "queued": len(touches.queue),
                "turns": Clock.frames - turns,
            }
            if write_end is not None:
                os.write(write_end, bytes(24))  # one evdev record, as the kernel queues a touch
            observed["reached"] = wait(lambda: app.manager.current == State.RATING, spec.get("reach_s", 20))
            observed["screen"] = str(app.manager.current)
            observed["rating_fps"] = Clock._max_fps
            wait(lambda: app.screen_ready(State.RATING), 5)
            turns, began = Clock.frames, time.monotonic()
            time.sleep(2.0)
            observed["rating_turns_per_s"] = (Clock.frames - turns) / (time.monotonic() - began)
        finally:
            Clock.schedule_once(lambda _dt: resume(), 0)
            done.set()

    threading.Thread(target=probe, daemon=True).start()
    yield until(done.is_set, "the probe", 60)
    if write_end is not None:
        os.close(write_end)


def outbox_full(app: Any, clock: ManualClock, spec: dict[str, Any], observed: dict[str, Any]) -> Iterator[Any]:
    """A visit ends while the outbox cannot grow (SQLite's disk full); room comes back; it is stored then."""
    from kiosk_app.ui.demo import rating_card
    from kiosk_app.ui.script import until
    from kiosk_app.ui.touch import tap, tap_at
    from sync_agent.outbox import OutboxFull

    kiosk = app.settings.kiosk
    conn = app.outbox._db.conn
    yield until(lambda: settled(app, State.ATTRACT), "the attract screen")
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    with contextlib.suppress(OutboxFull):  # use up the room left in the file's last page
        for _ in range(2000):
            app.outbox.add(_filler(app))
    tap_at(app.manager.width / 2, app.manager.height / 2)
    yield until(lambda: settled(app, State.RATING), "the rating screen")
    clock.advance(kiosk.debounce_s + 1)
    tap(rating_card(app, Rating.SATISFIED))
    yield until(lambda: settled(app, State.FOLLOW_UP), "the follow-up screen")
    clock.advance(kiosk.follow_up_timeout_s + 1)  # walked away after rating: the record is due now
    yield until(lambda: settled(app, State.ATTRACT), "attract after the follow-up timeout")
    observed["while_full"] = {
        "waiting": app.keeper.waiting,
        "visits_in_outbox": _visits(app),
        "technician_outbox": app.technician_report().outbox_problem or "",
    }
    conn.execute("PRAGMA max_page_count = 1073741823")
    app._retry_records(0)  # what the app's clock does every RETRY_S
    observed["after_room"] = {"waiting": app.keeper.waiting, "visits_in_outbox": _visits(app)}


def remote_config(app: Any, clock: ManualClock, spec: dict[str, Any], observed: dict[str, Any]) -> Iterator[Any]:
    """The platform's configuration, as the sync agent leaves it in the file: taken at start, the screen closed
    outside its hours (no tap counts, the technician's corner still works), a newer one taken between visits and
    not during one, one the screens cannot show refused."""
    from kiosk_app.ui.app import REMOTE_CONFIG_S, TECHNICIAN_GATE
    from kiosk_app.ui.script import pause, until
    from kiosk_app.ui.touch import tap_at

    path = Path(app.settings.device.device_config_path)

    def state_file() -> dict[str, Any]:
        data: dict[str, Any] = json.loads(app.settings.device.kiosk_state_path.read_text())
        return data

    def publish(document: dict[str, Any]) -> None:  # what the sync agent does: a new file renamed into place
        temporary = path.with_name(path.name + ".new")
        temporary.write_text(json.dumps(document), encoding="utf-8")
        temporary.replace(path)

    def next_look() -> None:
        clock.advance(REMOTE_CONFIG_S + 1)

    def flag_widths() -> list[int]:
        return [round(flag.width) for flag in app.screen(State.ATTRACT).ids.flags.children]

    yield until(lambda: settled(app, State.ATTRACT), "the attract screen")
    observed["at_start"] = {
        "question": app.screen(State.ATTRACT).question,
        "languages": list(app.settings.kiosk.languages),
        "state_file_version": state_file().get("config_version"),
    }
    observed["flags_at_start"] = flag_widths()
    clock.wall = clock.wall.replace(hour=12, minute=1)  # past the published hours (08:00-12:00)
    clock.advance(1)
    yield until(lambda: settled(app, State.CLOSED), "the closed screen", 5)
    clock.advance(app.settings.kiosk.debounce_s + 1)
    tap_at(app.manager.width / 2, app.manager.height / 2)
    yield pause(0.5)
    observed["closed"] = {"screen": app.manager.current, "state": app.flow.state.value}
    side = app.m.target / 2
    for _ in range(5):
        tap_at(side, app.manager.height - side)
    yield until(lambda: settled(app, TECHNICIAN_GATE), "the PIN pad from the closed screen", 3)
    clock.wall = clock.wall.replace(hour=9)  # opening time while the technician is there
    clock.advance(1)
    yield pause(1.5)
    observed["technician_kept"] = app.manager.current
    app.close_technician()
    yield until(lambda: settled(app, State.ATTRACT), "attract once the technician leaves", 5)

    # A visit under way: a newer configuration waits for its end.
    tap_at(app.manager.width / 2, app.manager.height / 2)
    yield until(lambda: settled(app, State.RATING), "the rating screen")
    publish(
        {
            **spec["config"],
            "config_version": 4,
            "question": {"fr": "Nouvelle question ?"},
            "languages": ["fr", "en", "es"],
        }
    )
    next_look()
    yield pause(1.5)
    observed["during_visit"] = {"state": app.flow.state.value, "version": app.remote_config.version}
    clock.advance(app.settings.kiosk.rating_timeout_s + 1)
    yield until(lambda: settled(app, State.ATTRACT), "attract after the visit")
    next_look()
    yield until(lambda: app.remote_config.version == 4, "version 4 taken between visits", 5)
    yield pause(0.5)
    observed["after_visit"] = {
        "question": app.screen(State.ATTRACT).question,
        "state_file_version": state_file().get("config_version"),
    }
    observed["flags_after_visit"] = flag_widths()
    publish({**spec["config"], "config_version": 5, "languages": ["fr", "de"]})
    next_look()
    yield pause(1.5)
    observed["unfit"] = {"version": app.remote_config.version, "languages": list(app.settings.kiosk.languages)}


def _filler(app: Any) -> Any:
    from tests.conftest import make_draft

    return make_draft(1, device="filler")


def _visits(app: Any) -> list[int]:
    return [int(r.rating) for r in app.outbox.records() if r.device_id != "filler"]


SCENARIOS = {
    "layout": layout,
    "behaviour": behaviour,
    "listening_timeout": listening_timeout,
    "stop_and_redo": stop_and_redo,
    "review_countdown": review_countdown,
    "visit_in_language": visit_in_language,
    "input_wake": input_wake,
    "outbox_full": outbox_full,
    "remote_config": remote_config,
}

if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
