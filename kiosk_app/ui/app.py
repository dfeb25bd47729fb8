"""The kiosk's Kivy application: one screen per flow state, the flow deciding, the voice off the UI thread.

`KioskApp` builds the screens, switches them when the flow's state changes, calls `flow.tick()` every
second (timeouts), writes each record to the outbox, starts and stops voice sessions, loads the
speech model in the background, writes the kiosk state file for the sync agent, and tells systemd
when the first frame is drawn (READY=1) and that it is alive (WATCHDOG=1). Import this module only
after `kiosk_app.ui.env.prepare_kivy`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.screenmanager import NoTransition, ScreenManager

from borne_common import systemd
from edge_models.pipeline import MicStatus, Quiet
from edge_models.segmenter import EndReason
from kiosk_app.flow import IDLE, Flow, Identity, State, SystemClock
from kiosk_app.flow import Clock as FlowClock
from kiosk_app.read_aloud import ReadAloud
from kiosk_app.record_keeper import RETRY_S, RecordKeeper
from kiosk_app.remote_config import RemoteConfig
from kiosk_app.runtime import AudioInput, LevelTest, VoiceRuntime, state_of_source
from kiosk_app.settings import KioskSettings
from kiosk_app.state_file import write_kiosk_state
from kiosk_app.technician import PIN_LOCK_FILE, PinCheck, PinGate, TechnicianReport, gather_report
from kiosk_app.ui import env, palette
from kiosk_app.ui.env import ACTIVE_FPS, IDLE_FPS, set_frame_rate
from kiosk_app.ui.i18n import Translator
from kiosk_app.ui.input_wake import InputWake
from kiosk_app.ui.metrics import Metrics
from kiosk_app.ui.screens import (
    AttractScreen,
    ClosedScreen,
    FollowUpScreen,
    KioskScreen,
    ListeningScreen,
    RatingScreen,
    ReviewScreen,
    TechnicianGateScreen,
    TechnicianScreen,
    ThanksScreen,
    VoiceOfferScreen,
)
from kiosk_app.voice import VoiceListener, speech_language
from sync_agent.contract import Comment, ComponentState, Record, RecordDraft
from sync_agent.outbox import Outbox

logger = logging.getLogger(__name__)

TICK_INTERVAL_S = 1.0
TECHNICIAN_IDLE_S = 120.0  # the technician screens go back to attract after this long untouched
KEEP_STORED = 1000  # records kept in memory once stored, for the demo, tests and bench (the outbox holds all)
MICROPHONE_PROBE_S = 60.0  # a missing or failed microphone is checked again this often (on attract only)
ECHO_TAIL_S = 0.3  # the microphone stays muted this long after read-aloud stops: the room still echoes it
REMOTE_CONFIG_S = 5.0  # between visits, the platform's configuration file is looked at this often
INPUT_GRACE_S = 2.0  # after input wakes the attract screen, it runs at ACTIVE_FPS this long (see _input_woke)
TECHNICIAN_GATE = "technician_gate"
TECHNICIAN = "technician"
SCREENS: dict[str, type[KioskScreen]] = {
    State.ATTRACT: AttractScreen,
    State.RATING: RatingScreen,
    State.FOLLOW_UP: FollowUpScreen,
    State.VOICE_OFFER: VoiceOfferScreen,
    State.LISTENING: ListeningScreen,
    State.REVIEW: ReviewScreen,
    State.THANKS: ThanksScreen,
    State.CLOSED: ClosedScreen,
    TECHNICIAN_GATE: TechnicianGateScreen,
    TECHNICIAN: TechnicianScreen,
}


class Speaker(Protocol):
    """The read-aloud engine (`kiosk_app.read_aloud.ReadAloud`)."""

    def available(self) -> bool: ...

    def say(self, text: str, language: str) -> None: ...

    def stop(self) -> None: ...

    def speaking(self) -> bool: ...


def default_speaker() -> Speaker:
    return ReadAloud()


def _next_turn(_dt: float) -> None:
    """Nothing: scheduling it ends the event loop's idle sleep (Kivy's clock holds callbacks weakly: keep
    this a module-level function)."""


def _input_arrived(_dt: float) -> None:
    """On the UI thread, after `InputWake` saw an input device become readable."""
    Clock.schedule_once(_next_turn, 0)  # SDL reads input after this turn's dispatch: one more turn at once
    app = App.get_running_app()
    if isinstance(app, KioskApp):
        app._input_woke()


def _wake_from_input() -> None:
    """`InputWake`'s callback (its own thread): end the loop's sleep now."""
    Clock.schedule_once(_input_arrived, 0)


def watchdog_interval_s() -> float:
    """Half systemd's watchdog period when one is set, else 10 s."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    return int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else 10.0


class KioskApp(App):  # type: ignore[misc]
    language = StringProperty("fr")
    m = ObjectProperty(None)
    read_aloud_available = BooleanProperty(False)

    def __init__(
        self,
        settings: KioskSettings,
        *,
        outbox: Outbox,
        identity: Identity,
        audio: AudioInput,
        clock: FlowClock | None = None,
        speaker: Speaker | None = None,
        runtime: VoiceRuntime | None = None,
        on_started: Callable[[KioskApp], object] = lambda app: None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.title = "Borne"
        self.settings = settings
        self.outbox = outbox
        self.identity = identity
        self.audio = audio
        self.clock: FlowClock = clock or SystemClock()
        self.speaker = speaker
        self.runtime = runtime or VoiceRuntime(settings.voice, audio)
        self.runtime.on_change = lambda: Clock.schedule_once(lambda _dt: self._voice_state_changed(), 0)
        self.translator = Translator()
        self.pin_gate = PinGate(
            settings.kiosk.technician_pin,
            pin_hash=settings.kiosk.technician_pin_hash,
            clock=self.clock.monotonic,
            lock_file=settings.outbox.path.with_name(PIN_LOCK_FILE),  # beside the outbox: kept across restarts
        )
        self.stored: deque[Record] = deque(maxlen=KEEP_STORED)  # the last records, for the demo and tests
        self.keeper = RecordKeeper(outbox, on_stored=self._stored)  # what the outbox refuses waits in memory
        self._on_started = on_started
        self._listener: VoiceListener | None = None
        self._generation = 0
        self._spoke_at = -ECHO_TAIL_S  # time.monotonic() when read-aloud was last seen speaking
        self._level_test: LevelTest | None = None
        self._technician_touched = 0.0
        self._shown_at_frame = 0
        self._probed_at = self.clock.monotonic()
        self.input_wake = InputWake(settings.kiosk.input_devices, self._wake)
        self._attract_asleep = False  # on attract at env.ATTRACT_FPS_WOKEN: input wakes the loop (read by InputWake)
        self._settle = Clock.create_trigger(self._settle_after_input, INPUT_GRACE_S)
        self.remote_config = RemoteConfig(settings.device.device_config_path, settings.kiosk)
        self._remote_checked = -REMOTE_CONFIG_S
        self.language = settings.kiosk.languages[0]
        self.m = Metrics(Window.width, Window.height, settings.kiosk.screen_dpi, settings.kiosk.font_scale)
        self.flow = Flow(
            settings.kiosk,
            identity,
            clock=self.clock,
            on_record=self._store,
            voice_available=lambda: self.runtime.available,
            on_state=self._on_state,
        )
        self._state = self.flow.state

    # -- building and running ----------------------------------------------------------------------

    def build(self) -> ScreenManager:
        Window.clearcolor = palette.rgba(palette.BACKGROUND)
        self.read_aloud_available = bool(self.speaker is not None and self.speaker.available())
        self.manager = ScreenManager(transition=NoTransition())
        for name, screen_class in SCREENS.items():
            self.manager.add_widget(screen_class(name=str(name)))
        self.manager.bind(size=self._resized)
        Window.bind(on_flip=self._first_frame)
        Window.bind(on_touch_down=self._touched)
        Clock.schedule_interval(self._tick, TICK_INTERVAL_S)
        Clock.schedule_interval(self._watchdog, watchdog_interval_s())
        Clock.schedule_interval(self._retry_records, RETRY_S)
        self._start_input_wake()
        self._show(State.ATTRACT)
        self._apply_remote_config()
        self.flow.tick()  # closed already, outside the opening hours
        self._write_state()
        self.runtime.start_loading()
        return self.manager

    def _tick(self, _dt: float) -> None:  # returning False would unschedule it
        self.flow.tick()
        self._count_down_review()
        now = self.clock.monotonic()
        if now - self._remote_checked >= REMOTE_CONFIG_S:
            self._remote_checked = now
            self._apply_remote_config()
        microphone_down = self.runtime.microphone in (ComponentState.MISSING, ComponentState.FAILED)
        # the probe restarts PortAudio: only on the attract screen, where no stream is open
        on_attract = self.flow.state == State.ATTRACT and self.manager.current == State.ATTRACT
        no_stream = on_attract and self._level_test is None
        if microphone_down and no_stream and now - self._probed_at >= MICROPHONE_PROBE_S:
            self._probed_at = now
            self.runtime.probe_microphone()
        idle = now - self._technician_touched
        if self.manager.current in (TECHNICIAN_GATE, TECHNICIAN) and idle > TECHNICIAN_IDLE_S:
            self.close_technician()

    def _apply_remote_config(self) -> None:
        """Between visits, and not under the technician's hands: run a newer configuration from the platform
        (question, follow-ups, languages, opening hours) and say which in the state file."""
        if self.flow.state not in IDLE or self.manager.current != self.flow.state:
            return
        newer = self.remote_config.newer()
        if newer is None:
            return
        version, kiosk = newer
        if not self.flow.reconfigure(kiosk):
            return
        self.settings = self.settings.model_copy(update={"kiosk": kiosk})
        self.remote_config.accept(version)
        self.language = self.flow.session.language
        self._show(self.flow.state)
        self._write_state()

    def _touched(self, _window: Any, _touch: Any) -> None:
        self._technician_touched = self.clock.monotonic()

    def _write_state(self) -> None:
        write_kiosk_state(
            self.settings.device.kiosk_state_path,
            microphone=self.runtime.microphone,
            model=self.runtime.model,
            pin_failures=self.pin_gate.failures,
            config_version=self.remote_config.version,
        )

    def _watchdog(self, _dt: float) -> None:
        systemd.notify("WATCHDOG=1")

    def _first_frame(self, *_args: Any) -> None:
        Window.unbind(on_flip=self._first_frame)
        systemd.notify("READY=1")
        logger.info("kiosk ready (%dx%d)", Window.width, Window.height)
        Clock.schedule_once(lambda _dt: self._on_started(self), 0)

    def on_stop(self) -> None:
        self.input_wake.stop()
        self.keeper.retry()
        if self.keeper.waiting:
            logger.error("stopping with %d record(s) the outbox refused: they are lost", self.keeper.waiting)
        self.stop_level_test()
        if self._listener is not None:
            self._listener.stop()
        if self.speaker is not None:
            self.speaker.stop()

    def _resized(self, _manager: Any, size: tuple[int, int]) -> None:
        self.m = Metrics(int(size[0]), int(size[1]), self.settings.kiosk.screen_dpi, self.settings.kiosk.font_scale)
        self.current_screen.refresh()

    # -- texts -------------------------------------------------------------------------------------

    def tr(self, key: str, language: str | None = None) -> str:
        return self.translator.text(key, language or self.language)

    def speech_note(self, language: str) -> str:
        """In the UI language: which language to speak in, or that speech is understood only in the voice
        default's when the terminal does not hear the visit's."""
        heard = speech_language(language, self.settings.voice)
        key = "voice_offer.speak_in" if heard == language else "voice_offer.only_in"
        return self.tr(key, language).format(language=self.tr(f"language.{heard}", language))

    def choose_language(self, language: str) -> None:
        if self.flow.choose_language(language) and self.flow.state == State.RATING:
            self.language = language
            self.current_screen.refresh()

    def test_speaker(self) -> None:
        """The technician's speaker test: a sentence in the read-aloud voice."""
        if self.speaker is not None and self.read_aloud_available:
            self.speaker.say(self.tr("tech.speaker_sample"), self.language)

    def read_current_screen(self) -> None:
        if self.speaker is not None and self.read_aloud_available:
            text = self.current_screen.spoken_text()
            if text:
                self.speaker.say(text, self.language)

    # -- screens follow the flow -------------------------------------------------------------------

    @property
    def current_screen(self) -> KioskScreen:
        screen: KioskScreen = self.manager.current_screen
        return screen

    def screen(self, name: str) -> KioskScreen:
        screen: KioskScreen = self.manager.get_screen(name)
        return screen

    def screen_ready(self, name: str) -> bool:
        """`name` is on screen and laid out: its transition is over and two frames were drawn since it was
        shown (layouts run before a frame is drawn). Touches sent before that may miss their target."""
        return bool(
            self.manager.current == name
            and not self.manager.transition.is_active
            and Clock.frames_displayed >= self._shown_at_frame + 2
        )

    def _on_state(self, state: State) -> None:
        previous, self._state = self._state, state
        if previous == State.LISTENING and state != State.LISTENING:
            self._stop_listener()  # a session with no microphone never ends by itself
        if self.speaker is not None:
            self.speaker.stop()
        self.language = self.flow.session.language
        if state in IDLE and self.manager.current in (TECHNICIAN_GATE, TECHNICIAN):
            return  # opening or closing time under the technician's hands: shown when they leave
        self._show(state)
        if state == State.LISTENING:
            self._start_listener()

    def _show(self, name: str) -> None:
        screen = self.screen(name)
        screen.refresh()
        self.manager.current = name
        self._shown_at_frame = Clock.frames_displayed
        self._attract_asleep = name == State.ATTRACT and self.input_wake.watching > 0
        if name == State.ATTRACT:
            set_frame_rate(self._attract_fps())
        else:
            set_frame_rate(IDLE_FPS if name == State.CLOSED else ACTIVE_FPS)

    # -- the attract screen sleeps until input arrives ---------------------------------------------

    def _attract_fps(self) -> float:
        """env.ATTRACT_FPS_WOKEN while an input device is watched (decided each time the attract screen shows:
        devices come and go), else IDLE_FPS (no access to /dev/input: a laptop, the offscreen tests)."""
        return env.ATTRACT_FPS_WOKEN if self.input_wake.watching else IDLE_FPS

    def _start_input_wake(self) -> None:
        self.input_wake.start()
        if self.input_wake.watching:
            logger.info(
                "attract screen: %g fps, woken at once by input on %s",
                env.ATTRACT_FPS_WOKEN,
                ", ".join(self.input_wake.paths),
            )
        else:
            logger.info(
                "attract screen: no readable input device (%s): polling input at %d fps",
                ", ".join(self.settings.kiosk.input_devices) or "none configured",
                IDLE_FPS,
            )

    def _wake(self) -> None:
        """`InputWake`'s thread: only the sleeping attract screen needs waking (the others turn at ACTIVE_FPS)."""
        if self._attract_asleep:
            _wake_from_input()

    def _input_woke(self) -> None:
        """Input arrived on the sleeping attract screen: turn at ACTIVE_FPS for INPUT_GRACE_S, so a touch that
        reaches the window a little after the device node (the X server relays it) waits one active frame,
        not one attract frame."""
        if self._attract_asleep and self.manager.current == State.ATTRACT:
            set_frame_rate(ACTIVE_FPS)
            self._settle()

    def _settle_after_input(self, _dt: float) -> None:
        if self._attract_asleep and self.manager.current == State.ATTRACT:
            set_frame_rate(self._attract_fps())

    # -- records -----------------------------------------------------------------------------------

    def _store(self, draft: RecordDraft) -> None:
        self.keeper.store(draft)

    def _stored(self, record: Record) -> None:
        self.stored.append(record)
        logger.info("record %s stored (rating %d)", record.record_id, int(record.rating))

    def _retry_records(self, _dt: float) -> None:
        if self.keeper.waiting:
            self.keeper.retry()

    # -- voice -------------------------------------------------------------------------------------

    def _post(self, call: Callable[[], object]) -> None:
        Clock.schedule_once(lambda _dt: call(), 0)

    def _post_level(self, call: Callable[[], object]) -> None:
        """For the ~31 level readings a second: run before the next frame instead of waking the loop at once
        (a `_post` ends the interrupt clock's sleep, which would draw up to twice ACTIVE_FPS while listening)."""
        Clock.schedule_once(lambda _dt: call(), -1)

    def _start_listener(self) -> None:
        self._generation += 1
        generation = self._generation

        def current(handler: Callable[..., object]) -> Callable[..., object]:
            return lambda *value: handler(*value) if generation == self._generation else None

        def level(value: float) -> None:
            self._post_level(lambda: current(self._show_level)(value))

        language = speech_language(self.flow.session.language, self.settings.voice)
        listener = VoiceListener(
            lambda on_event: self.runtime.make_session(on_event, level, muted=self.hearing_itself, language=language),
            asr_model=self.settings.voice.model_name,
            language=language,
            post=self._post,
            on_partial=current(self._voice_partial),
            on_final=current(self._voice_final),
            on_microphone=current(self._microphone_event),
            on_quiet=current(self._voice_quiet),
            on_nothing_heard=current(self._voice_nothing_heard),
        )
        self._listener = listener
        listener.start()

    def hearing_itself(self) -> bool:
        """Read-aloud is speaking, or stopped less than ECHO_TAIL_S ago: what the microphone hears is the
        kiosk, not the citizen (asked by the audio thread for every block while listening)."""
        now = time.monotonic()
        if self.speaker is not None and self.speaker.speaking():
            self._spoke_at = now
        return now - self._spoke_at < ECHO_TAIL_S

    def _stop_listener(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        self._generation += 1  # late events of that session are ignored

    def stop_listening(self) -> None:
        """The citizen tapped "done": what was heard is transcribed, then reviewed."""
        if self._listener is not None:
            self._listener.stop()

    def _count_down_review(self) -> None:
        """The review's last `review_warning_s` seconds, shown on it (0: none), so it never ends unannounced."""
        left = self.flow.seconds_left() if self.flow.state == State.REVIEW else None
        warning = self.settings.kiosk.review_warning_s
        shown = math.ceil(left) if left is not None and 0 < left <= warning else 0
        review = self.screen(State.REVIEW)
        if review.seconds_left != shown:
            review.seconds_left = shown

    def _voice_partial(self, text: str) -> None:
        if self.flow.voice_partial(text):
            screen = self.screen(State.LISTENING)
            screen.live_text = self.flow.session.partial_text  # with what was said before, when adding

    def _voice_quiet(self, quiet: Quiet) -> None:
        """The end for silence or at the time limit is near (a countdown on the listening screen), or
        speech came back."""
        if self.flow.state == State.LISTENING:
            screen = self.screen(State.LISTENING)
            screen.time_limit = quiet.reason == EndReason.MAX_DURATION
            screen.seconds_left = quiet.seconds_left or 0

    def _voice_nothing_heard(self) -> None:
        self._listener = None
        self.flow.voice_nothing_heard()

    def _voice_final(self, comment: Comment | None) -> None:
        self._listener = None
        self.flow.voice_final(comment)

    def _microphone_event(self, status: MicStatus) -> None:
        state = state_of_source(status.state)
        if state is not None:
            self.runtime.set_microphone(state)

    def _show_level(self, level: float) -> None:
        self.screen(State.LISTENING).level = level

    def _voice_state_changed(self) -> None:
        self._write_state()
        if self.manager.current == TECHNICIAN:
            self.current_screen.refresh()

    # -- technician --------------------------------------------------------------------------------

    def open_technician_gate(self) -> bool:
        if not self.pin_gate.enabled or self.flow.state not in IDLE:
            return False
        self._technician_touched = self.clock.monotonic()
        self._show(TECHNICIAN_GATE)
        return True

    def open_technician(self, pin: str) -> PinCheck:
        """Check the PIN; the technician screen opens when it is accepted."""
        outcome = self.pin_gate.check(pin)
        if outcome == PinCheck.ACCEPTED:
            self._show(TECHNICIAN)
        else:
            logger.warning("technician screen: PIN %s", outcome.value)
        self._write_state()  # the sync agent reports wrong PINs in the Status
        return outcome

    def close_technician(self) -> None:
        self.stop_level_test()
        self._show(self.flow.state)

    def technician_report(self) -> TechnicianReport:
        return gather_report(
            site_id=self.identity.site_id,
            device_id=self.identity.device_id,
            outbox=self.outbox,
            model=self.runtime.model,
            microphone=self.runtime.microphone,
            waiting_records=self.keeper.waiting,
            waiting_reason=self.keeper.last_error,
        )

    def start_level_test(self) -> None:
        self.stop_level_test()
        screen = self.screen(TECHNICIAN)

        def level(value: float) -> None:
            self._post_level(lambda: setattr(screen, "level", value))

        def source_state(state: Any) -> None:
            mapped = state_of_source(state)
            if mapped is not None:
                self._post(lambda: self.runtime.set_microphone(mapped))

        self._level_test = LevelTest(self.audio, level, source_state)
        self._level_test.start()
        screen.testing = True

    def stop_level_test(self) -> None:
        if self._level_test is not None:
            self._level_test.stop()
            self._level_test = None
        screen = self.screen(TECHNICIAN) if hasattr(self, "manager") else None
        if screen is not None:
            screen.testing = False
            screen.level = 0.0
