"""The kiosk's voice side at run time (no Kivy): model loading in the background, microphone state,
voice sessions with a level meter, and the technician's microphone test.

Voice is offered only once the bundle is verified, Whisper and the VAD are loaded, and the audio
source is usable. A missing or tampered bundle is a state (`missing` / `failed`) and a log line; the
kiosk goes on without voice. The audio level is computed block by block and only the number leaves
this module: no audio is kept.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_models.audio import AudioSource, SourceState, input_device, make_source, rms_dbfs
from edge_models.bundles import MANIFEST, BundleError
from edge_models.options import VoiceOptions
from edge_models.pipeline import VoiceEvent, VoiceSession
from sync_agent.contract import ComponentState

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]

logger = logging.getLogger(__name__)

LevelCallback = Callable[[float], object]
LEVEL_FLOOR_DB = -60.0
LEVEL_INTERVAL_S = 0.05  # at most 20 level updates per second reach the screen


def level_of(block: FloatArray) -> float:
    """A block's RMS level on a 0..1 scale (0 = -60 dBFS or quieter, 1 = full scale)."""
    level = rms_dbfs(block)
    if level == -math.inf:
        return 0.0
    return min(1.0, max(0.0, (level - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB))


class MeteredSource(AudioSource):
    """Wraps a source and reports each block's level (a number only) before passing the block on.

    While `muted()` is true the blocks are dropped (zeroed, level 0), as if no time passed: the kiosk is
    reading a prompt aloud and the microphone would hear the kiosk, not the citizen (half duplex). The
    session's silence clocks stand still meanwhile, so the citizen still has all of them afterwards."""

    def __init__(
        self,
        inner: AudioSource,
        on_level: LevelCallback,
        interval_s: float = LEVEL_INTERVAL_S,
        muted: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(None)
        self._inner = inner
        self._on_level = on_level
        self._interval_s = interval_s
        self._muted = muted
        inner.on_state = self._set_state

    def blocks(self) -> Iterator[FloatArray]:
        blocks = self._inner.blocks()  # a generator: closed below, so the inner source releases its device
        last = 0.0
        try:
            for block in blocks:
                self.last_block_at = self._inner.last_block_at
                muted = self._muted()
                now = time.monotonic()
                if now - last >= self._interval_s:
                    last = now
                    self._on_level(0.0 if muted else level_of(block))
                if muted:
                    block.fill(0.0)
                    continue
                yield block
        finally:
            close = getattr(blocks, "close", None)
            if callable(close):
                close()
            self._on_level(0.0)

    def stop(self) -> None:
        super().stop()
        self._inner.stop()

    def wipe(self) -> None:
        wipe = getattr(self._inner, "wipe", None)
        if callable(wipe):
            wipe()


@dataclass(frozen=True)
class AudioInput:
    """Where the kiosk's audio comes from, at real-time pace: 'mic' (a device), 'wav' (a file: the demo) or
    'synthetic' (silence of `seconds`: tests)."""

    kind: str = "mic"
    wav_path: Path | None = None
    device: str = ""
    seconds: float = 5.0

    def make(self) -> AudioSource:
        device = input_device(self.device)
        return make_source(self.kind, path=self.wav_path, device=device, realtime=True, seconds=self.seconds)


def microphone_state(audio: AudioInput, *, rescan_devices: bool = False) -> ComponentState:
    """Whether the audio input can be used, without opening it. With `rescan_devices`, PortAudio lists the
    devices again first, so that a microphone plugged in since the last look is found."""
    if audio.kind == "synthetic":
        return ComponentState.OK
    if audio.kind == "wav":
        return ComponentState.OK if audio.wav_path is not None and audio.wav_path.is_file() else ComponentState.MISSING
    try:
        import sounddevice
    except (ImportError, OSError) as error:
        logger.warning("no microphone access: %s", error)
        return ComponentState.MISSING
    if rescan_devices:
        rescan_audio_devices(sounddevice)
    try:
        info: Any = sounddevice.query_devices(audio.device or None, "input")
    except Exception as error:  # PortAudioError, ValueError: no such device
        logger.warning("no input device: %s", error)
        return ComponentState.MISSING
    return ComponentState.OK if int(info.get("max_input_channels", 0)) > 0 else ComponentState.MISSING


def rescan_audio_devices(sounddevice: Any) -> None:
    """Make PortAudio list the audio devices again: it lists them once, when it is initialised, so a device
    plugged in later is unknown until then. sounddevice has no public call for it; its `_terminate` and
    `_initialize` are what it runs at exit and import. Terminating closes every open stream: call this only
    while no stream is open (the kiosk does, on the attract screen, while the microphone is missing)."""
    try:
        sounddevice._terminate()
        sounddevice._initialize()
    except Exception as error:  # PortAudioError: the device list stays as it was
        logger.warning("could not list the audio devices again: %s", error)


def state_of_source(state: SourceState) -> ComponentState | None:
    """The microphone's component state after a source event (None: no change, e.g. a session's end)."""
    return {
        SourceState.READY: ComponentState.OK,
        SourceState.NO_DEVICE: ComponentState.MISSING,
        SourceState.DISCONNECTED: ComponentState.FAILED,  # it worked, then stopped delivering audio
    }.get(state)


def model_state(bundle: Path, error: BaseException | None) -> ComponentState:
    """The model's component state once loading `bundle` ended: ok, missing (no bundle there) or failed."""
    if error is None:
        return ComponentState.OK
    if isinstance(error, BundleError) and not (bundle / MANIFEST).is_file():
        return ComponentState.MISSING
    return ComponentState.FAILED


class VoiceRuntime:
    """Model and microphone states, loaded in the background; `on_change` runs on the loading thread."""

    def __init__(
        self, options: VoiceOptions, audio: AudioInput, *, on_change: Callable[[], object] = lambda: None
    ) -> None:
        self.options = options
        self.audio = audio
        self.on_change = on_change
        self.model = ComponentState.LOADING
        self.microphone = ComponentState.UNKNOWN
        self.model_problem = ""
        self._transcriber: Any = None
        self._vad: Any = None
        self._thread: threading.Thread | None = None
        self._probing = threading.Event()

    @property
    def available(self) -> bool:
        return self.model == ComponentState.OK and self.microphone == ComponentState.OK

    def start_loading(self) -> None:
        self._thread = threading.Thread(target=self.load, name="voice-model-loader", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def load(self) -> None:
        self.microphone = microphone_state(self.audio)
        self.on_change()
        bundle = self.options.model_dir
        try:
            from edge_models.asr import load_transcriber
            from edge_models.vad import SileroVad

            self._transcriber = load_transcriber(bundle, self.options)  # verifies every file's hash first
            self._vad = SileroVad()
        except BundleError as error:
            self.model = model_state(bundle, error)
            self.model_problem = str(error)
            missing = self.model == ComponentState.MISSING
            logger.warning("voice disabled: model bundle %s: %s", "missing" if missing else "unusable", error)
        except Exception as error:  # a broken install (onnxruntime, ctranslate2): no voice, the kiosk goes on
            self.model = model_state(bundle, error)
            self.model_problem = f"{type(error).__name__}: {error}"
            logger.exception("voice disabled: the speech model could not be loaded")
        else:
            self.model = model_state(bundle, None)
            logger.info("voice ready: %s", bundle)
        self.on_change()

    def probe_microphone(self) -> None:
        """Check the audio input again, off the calling thread (after a failure, voice comes back by itself).
        PortAudio lists the devices again first (a microphone plugged in since): call it while no stream is
        open."""
        if self._probing.is_set():
            return
        self._probing.set()

        def probe() -> None:
            try:
                self.set_microphone(microphone_state(self.audio, rescan_devices=True))
            finally:
                self._probing.clear()

        threading.Thread(target=probe, name="microphone-probe", daemon=True).start()

    def set_microphone(self, state: ComponentState) -> None:
        if state != self.microphone:
            self.microphone = state
            self.on_change()

    def make_session(
        self,
        on_event: Callable[[VoiceEvent], None],
        on_level: LevelCallback,
        muted: Callable[[], bool] = lambda: False,
        language: str = "",
    ) -> VoiceSession:
        """A session on the configured input, transcribing `language` (by default `[voice] language`);
        `muted()` (asked per block) drops what the kiosk hears of itself."""
        if self._transcriber is None:
            raise RuntimeError("the speech model is not loaded")
        source = MeteredSource(self.audio.make(), on_level, muted=muted)
        return VoiceSession.of(
            source, self._transcriber, self.options, on_event=on_event, vad=self._vad, language=language
        )


class LevelTest:
    """The technician's microphone test: reads the input and reports its level until stopped."""

    def __init__(self, audio: AudioInput, on_level: LevelCallback, on_state: Callable[[SourceState], object]) -> None:
        def state_changed(state: SourceState, _detail: str) -> None:
            on_state(state)

        self._source = MeteredSource(audio.make(), on_level)
        self._source.on_state = state_changed
        self._thread = threading.Thread(target=self._run, name="microphone-test", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._source.stop()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            for _block in self._source.blocks():
                pass  # the level was reported; the block is dropped at once
        except Exception:
            logger.exception("microphone test failed")
