"""The offscreen demo: one session driven by synthesised touches, a screenshot of every screen.

Attract → rating → follow-up(s) → voice offer → listening (the WAV through the real model) → review →
send → thanks, then the technician's PIN pad and screen when a PIN is set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from kiosk_app.flow import State
from kiosk_app.ui.app import TECHNICIAN, TECHNICIAN_GATE, KioskApp
from kiosk_app.ui.launch import DemoResult
from kiosk_app.ui.screens.base import FlagButton
from kiosk_app.ui.script import Script, pause, screenshot, until
from kiosk_app.ui.touch import tap, tap_at
from kiosk_app.ui.widgets import CardButton, KioskButton
from sync_agent.contract import ComponentState, Rating

SETTLE_S = 0.4  # a few frames, so the screen is drawn before the screenshot
LISTENING_SHOT_S = 1.2  # into the clip: the level meter moves
MODEL_TIMEOUT_S = 300.0
VOICE_TIMEOUT_S = 180.0


def find_button(app: KioskApp, text: str) -> KioskButton:
    for widget in app.current_screen.walk():
        if isinstance(widget, KioskButton) and widget.text == text and not widget.disabled:
            return widget
    raise LookupError(f"no button {text!r} on the {app.manager.current} screen")


def flag_button(app: KioskApp, language: str) -> FlagButton:
    for widget in app.current_screen.walk():
        if isinstance(widget, FlagButton) and widget.language == language:
            return widget
    raise LookupError(f"no {language!r} flag on the {app.manager.current} screen")


def rating_card(app: KioskApp, rating: Rating) -> CardButton:
    for widget in app.current_screen.walk():
        if isinstance(widget, CardButton) and getattr(widget, "rating", None) == int(rating):
            return widget
    raise LookupError(f"no rating card {rating!r}")


def demo_script(
    app: KioskApp,
    screenshots: Path | None,
    result: DemoResult,
    rating: Rating = Rating.SATISFIED,
    language: str | None = None,
) -> Script:
    def shot(name: str) -> None:
        if screenshots is not None:
            result.screenshots.append(screenshot(screenshots / f"{name}.png"))

    def at(state: State) -> bool:
        return app.flow.state == state and shown(app, state)

    yield until(lambda: at(State.ATTRACT), "the attract screen")
    yield pause(SETTLE_S)
    shot("attract")
    tap_at(app.manager.width / 2, app.manager.height / 2)
    yield until(lambda: at(State.RATING), "the rating screen")
    yield pause(SETTLE_S)
    if language is not None and language != app.language:
        yield pause(app.settings.kiosk.debounce_s)
        tap(flag_button(app, language))
        yield until(lambda: app.language == language, f"the {language} interface")
        yield pause(SETTLE_S)
    shot("rating")
    yield pause(app.settings.kiosk.debounce_s)
    tap(rating_card(app, rating))
    yield until(lambda: app.flow.state != State.RATING, "the screen after the rating")
    answered = 0
    while app.flow.state == State.FOLLOW_UP:
        yield until(lambda: shown(app, State.FOLLOW_UP), "the follow-up screen")
        if answered == 0:
            yield pause(SETTLE_S)
            shot("follow_up")
        if app.flow.session.follow_up_index + 1 == len(app.flow.session.follow_ups):
            # The voice offer appears only once the model is loaded: wait for it before the last answer.
            yield until(lambda: app.runtime.model != ComponentState.LOADING, "the speech model", MODEL_TIMEOUT_S)
        yield pause(app.settings.kiosk.debounce_s)
        before = app.flow.session.follow_up_index
        tap(_choice(app, 0))
        yield until(partial(_moved_on, app, before), "the answer")
        answered += 1
    if app.flow.state == State.VOICE_OFFER:
        yield pause(SETTLE_S)
        shot("voice_offer")
        yield pause(app.settings.kiosk.debounce_s)
        tap(find_button(app, app.tr("voice_offer.accept")))
        yield until(lambda: at(State.LISTENING), "the listening screen")
        yield pause(LISTENING_SHOT_S)
        if _state(app) == State.LISTENING:
            shot("listening")
        yield until(lambda: app.flow.state != State.LISTENING, "the end of listening", VOICE_TIMEOUT_S)
        if _state(app) == State.REVIEW:
            yield pause(SETTLE_S)
            shot("review")
            yield pause(app.settings.kiosk.debounce_s)
            tap(find_button(app, app.tr("review.send")))
    else:
        result.voice_problem = f"model {app.runtime.model.value}, microphone {app.runtime.microphone.value}"
    yield until(lambda: at(State.THANKS), "the thanks screen")
    yield pause(SETTLE_S)
    shot("thanks")
    if app.settings.kiosk.technician_pin:
        yield from technician_script(app, shot)


def _state(app: KioskApp) -> State:
    """The flow's state now (a function, so type checkers do not assume it kept its last tested value)."""
    return app.flow.state


def _moved_on(app: KioskApp, follow_up_index: int) -> bool:
    return app.flow.state != State.FOLLOW_UP or app.flow.session.follow_up_index != follow_up_index


def _choice(app: KioskApp, index: int) -> KioskButton:
    buttons = list(reversed(app.current_screen.ids.choices.children))
    button: KioskButton = buttons[index]
    return button


def shown(app: KioskApp, name: str) -> bool:
    """The screen is current and laid out (touches are ignored during a transition)."""
    return app.screen_ready(name)


def technician_script(app: KioskApp, shot: Callable[[str], None]) -> Script:
    yield until(lambda: shown(app, State.ATTRACT), "the attract screen", 60)
    side = app.m.target / 2
    for _ in range(5):
        tap_at(side, app.manager.height - side)
        yield pause(0.05)
    yield until(lambda: shown(app, TECHNICIAN_GATE), "the PIN pad")
    for digit in app.settings.kiosk.technician_pin[:2]:
        tap(find_button(app, digit))
    yield pause(SETTLE_S)
    shot("technician_pin")
    for digit in app.settings.kiosk.technician_pin[2:]:
        tap(find_button(app, digit))
    tap(find_button(app, app.tr("tech.ok")))
    yield until(lambda: shown(app, TECHNICIAN), "the technician screen")
    tap(find_button(app, app.tr("tech.mic_start")))
    started = time.monotonic()
    yield until(lambda: getattr(app.current_screen, "level", 0) > 0 or time.monotonic() - started > 3, "a level")
    yield pause(SETTLE_S)
    shot("technician")
    tap(find_button(app, app.tr("tech.mic_stop")))
    tap(find_button(app, app.tr("tech.back")))
    yield until(lambda: shown(app, State.ATTRACT), "the attract screen")
