"""Audio sources behind one interface: microphone (PortAudio), WAV file, synthetic signal.

Every source yields 16 kHz mono float32 blocks. A missing or unplugged microphone is a state
(`SourceState`) reported through `on_state`, never an exception out of `blocks()`; the microphone
source retries opening the device, so replugging it recovers. Files are opened read-only; nothing
here writes audio anywhere.
"""

from __future__ import annotations

import abc
import enum
import logging
import math
import queue
import threading
import time
import wave
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_models.asr import require
from edge_models.options import FRAME_SAMPLES, SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float32]

logger = logging.getLogger(__name__)

PREFERRED_CAPTURE_RATES = (16000, 48000, 32000, 44100, 96000, 22050, 8000)


class SourceState(enum.StrEnum):
    """What the kiosk shows about the microphone."""

    STARTING = "starting"
    READY = "ready"
    NO_DEVICE = "no_device"  # no input device, or it cannot be opened
    DISCONNECTED = "disconnected"  # it was working and stopped delivering audio
    ENDED = "ended"  # a file or synthetic source has no more audio, or stop() was called


StateCallback = Callable[[SourceState, str], None]


class AudioSource(abc.ABC):
    """A stream of 16 kHz mono float32 blocks; `stop()` may be called from any thread."""

    def __init__(self, on_state: StateCallback | None = None) -> None:
        self.on_state = on_state
        self.state = SourceState.STARTING
        self.detail = ""
        self._stop = threading.Event()
        self.last_block_at: float | None = None  # time.perf_counter() when the last block was yielded
        self.started_at: float | None = None  # time.perf_counter() when the first block was due

    def _set_state(self, state: SourceState, detail: str = "") -> None:
        if state == self.state and detail == self.detail:
            return
        self.state, self.detail = state, detail
        logger.info("audio source %s: %s %s", type(self).__name__, state.value, detail)
        if self.on_state is not None:
            self.on_state(state, detail)

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @abc.abstractmethod
    def blocks(self) -> Iterator[FloatArray]:
        """Yield blocks until the source ends or `stop()` is called."""


# ---------------------------------------------------------------------------------------------
# Resampling


def lowpass_taps(cutoff: float, numtaps: int) -> FloatArray:
    """Windowed-sinc low-pass FIR; `cutoff` is a fraction of the input sample rate (0 < cutoff < 0.5)."""
    np = require("numpy")
    n = np.arange(numtaps) - (numtaps - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.blackman(numtaps)
    return (taps / taps.sum()).astype(np.float32)  # type: ignore[no-any-return]


class Resampler:
    """Streaming resampler to `out_rate`: FIR low-pass (anti-aliasing) then linear interpolation.

    State carries across blocks, so chunked and whole-signal results agree.
    """

    def __init__(self, in_rate: int, out_rate: int = SAMPLE_RATE, numtaps: int = 95) -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive (got {in_rate} -> {out_rate})")
        self._np: Any = require("numpy")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._step = in_rate / out_rate
        cutoff = 0.45 * min(in_rate, out_rate) / in_rate
        self._taps = lowpass_taps(cutoff, numtaps) if in_rate > out_rate else None
        self._history = self._np.zeros(numtaps - 1, dtype=self._np.float32)
        self._last = self._np.float32(0.0)
        self._pos = 0.0

    def process(self, block: FloatArray) -> FloatArray:
        np = self._np
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if self.in_rate == self.out_rate:
            return x.copy()  # type: ignore[no-any-return]
        if self._taps is not None:
            buf = np.concatenate([self._history, x])
            filtered = np.convolve(buf, self._taps, mode="valid").astype(np.float32)
            self._history = buf[len(buf) - len(self._history) :].copy()
            buf.fill(0.0)
        else:
            filtered = x
        n = len(filtered)
        if n == 0:
            return np.zeros(0, dtype=np.float32)  # type: ignore[no-any-return]
        stream = np.concatenate([[self._last], filtered])
        last_index = n - 1  # positions are relative to filtered[0]; stream index = position + 1
        count = 0 if self._pos > last_index else math.floor((last_index - self._pos) / self._step) + 1
        positions = self._pos + np.arange(count) * self._step
        out = np.interp(positions + 1, np.arange(n + 1), stream).astype(np.float32)
        self._pos = self._pos + count * self._step - n
        self._last = filtered[-1]
        stream.fill(0.0)
        return out  # type: ignore[no-any-return]

    def wipe(self) -> None:
        self._history.fill(0.0)
        self._last = self._np.float32(0.0)


def to_mono(block: Any) -> FloatArray:
    """(frames, channels) or (frames,) → (frames,) float32."""
    np = require("numpy")
    arr = np.asarray(block, dtype=np.float32)
    if arr.ndim == 2:
        return arr.mean(axis=1, dtype=np.float32)  # type: ignore[no-any-return]
    return arr.reshape(-1)  # type: ignore[no-any-return]


def choose_capture_rate(
    supports: Callable[[int], bool], default_rate: float, preferred: Iterable[int] = PREFERRED_CAPTURE_RATES
) -> int:
    """First of the preferred rates the device accepts, else its default rate."""
    for rate in preferred:
        if supports(rate):
            return rate
    return round(default_rate)


# ---------------------------------------------------------------------------------------------
# In-memory sources


class ArraySource(AudioSource):
    """Blocks from a 16 kHz float32 array held in RAM, optionally paced in real time."""

    def __init__(
        self,
        audio: FloatArray,
        *,
        realtime: bool = False,
        block_samples: int = FRAME_SAMPLES,
        on_state: StateCallback | None = None,
    ) -> None:
        super().__init__(on_state)
        self._audio = audio
        self.realtime = realtime
        self.block_samples = block_samples
        self.duration_s = len(audio) / SAMPLE_RATE

    def blocks(self) -> Iterator[FloatArray]:
        self._set_state(SourceState.READY)
        start = self.started_at = time.perf_counter()
        try:
            for offset in range(0, len(self._audio), self.block_samples):
                if self.stopped:
                    break
                if self.realtime:
                    due = start + (offset + self.block_samples) / SAMPLE_RATE
                    delay = due - time.perf_counter()
                    if delay > 0 and self._stop.wait(delay):
                        break
                self.last_block_at = time.perf_counter()
                yield self._audio[offset : offset + self.block_samples]
        finally:
            self._set_state(SourceState.ENDED)

    def wipe(self) -> None:
        """Overwrite the held audio."""
        self._audio.fill(0.0)


def read_wav(path: Path) -> FloatArray:
    """A PCM WAV file as 16 kHz mono float32 (downmixed and resampled if needed)."""
    np = require("numpy")
    with wave.open(str(path), "rb") as wav:
        channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    elif width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise ValueError(f"{path}: unsupported sample width {width} bytes (use 8-, 16- or 32-bit PCM)")
    mono = to_mono(data.reshape(-1, channels))
    if rate != SAMPLE_RATE:
        resampler = Resampler(rate)
        mono = np.concatenate([resampler.process(mono), resampler.process(np.zeros(96, np.float32))])
        mono = mono[: round(len(data) / channels * SAMPLE_RATE / rate)]
    return mono


class WavFileSource(ArraySource):
    """A WAV file read into RAM (read-only open), fed as fast as possible or at real-time pace."""

    def __init__(self, path: Path, *, realtime: bool = False, on_state: StateCallback | None = None) -> None:
        super().__init__(read_wav(path), realtime=realtime, on_state=on_state)
        self.path = path


class SyntheticSource(ArraySource):
    """Generated test signals: silence, white noise, mains hum, beeps, or any given array."""

    @classmethod
    def signal(cls, kind: str, seconds: float, *, seed: int = 0, realtime: bool = False) -> SyntheticSource:
        return cls(synth(kind, seconds, seed=seed), realtime=realtime)


def synth(kind: str, seconds: float, *, seed: int = 0) -> FloatArray:
    """A synthetic 16 kHz signal: 'silence', 'noise', 'hum' (50 Hz + harmonics), 'beep' (1 kHz bursts)."""
    np = require("numpy")
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    rng = np.random.default_rng(seed)
    if kind == "silence":
        out = np.zeros(n)
    elif kind == "noise":
        out = 0.1 * rng.standard_normal(n)
    elif kind == "hum":
        out = 0.2 * np.sin(2 * np.pi * 50 * t) + 0.1 * np.sin(2 * np.pi * 100 * t) + 0.05 * np.sin(2 * np.pi * 150 * t)
        out += 0.002 * rng.standard_normal(n)
    elif kind == "beep":
        on = (t % 1.0) < 0.25
        out = 0.3 * np.sin(2 * np.pi * 1000 * t) * on
    else:
        raise ValueError(f"unknown synthetic signal {kind!r} (silence, noise, hum, beep)")
    return out.astype(np.float32)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# Microphone


class DeviceLost(RuntimeError):
    """The input stream stopped delivering audio (device unplugged or failing)."""


class SounddeviceSource(AudioSource):
    """A PortAudio input device opened at a rate it supports, resampled to 16 kHz mono in numpy.

    `backend` is the `sounddevice` module (a fake in tests). Opening failures and stalls are states;
    the source retries every `retry_s` until stopped.
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        block_s: float = 0.032,
        retry_s: float = 1.0,
        stall_s: float = 1.0,
        start_timeout_s: float = 5.0,
        backend: Any = None,
        preferred_rates: tuple[int, ...] = PREFERRED_CAPTURE_RATES,
        on_state: StateCallback | None = None,
    ) -> None:
        super().__init__(on_state)
        self.device = device
        self.preferred_rates = preferred_rates
        self.block_s = block_s
        self.retry_s = retry_s
        self.stall_s = stall_s
        self.start_timeout_s = start_timeout_s
        self._backend = backend
        self._queue: queue.Queue[FloatArray] = queue.Queue(maxsize=256)
        self.capture_rate: int | None = None

    def _load_backend(self) -> Any:
        if self._backend is None:
            try:
                import sounddevice
            except ImportError as exc:
                raise RuntimeError("microphone input requires sounddevice: pip install 'borne[voice]'") from exc
            except OSError as exc:  # sounddevice raises OSError when libportaudio is absent
                raise RuntimeError(f"PortAudio is missing ({exc}): apt install libportaudio2") from exc
            self._backend = sounddevice
        return self._backend

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        if status:
            logger.debug("input stream status: %s", status)
        try:
            self._queue.put_nowait(to_mono(indata).copy())
        except queue.Full:  # the consumer is late: drop the oldest block rather than grow
            try:
                self._queue.get_nowait().fill(0.0)
                self._queue.put_nowait(to_mono(indata).copy())
            except (queue.Empty, queue.Full):
                pass

    def _open(self, sd: Any) -> Any:
        info = sd.query_devices(self.device, "input")
        if int(info.get("max_input_channels", 0)) < 1:
            raise DeviceLost(f"device {info.get('name', self.device)!r} has no input channel")

        def supports(rate: int) -> bool:
            try:
                sd.check_input_settings(device=self.device, channels=1, samplerate=rate, dtype="float32")
            except Exception:
                return False
            return True

        rate = choose_capture_rate(supports, float(info.get("default_samplerate", 48000)), self.preferred_rates)
        self.capture_rate = rate
        stream = sd.InputStream(
            device=self.device,
            channels=1,
            samplerate=rate,
            dtype="float32",
            blocksize=max(1, round(rate * self.block_s)),
            callback=self._callback,
        )
        stream.start()
        logger.info("microphone %r opened at %d Hz", info.get("name", self.device), rate)
        return stream

    def blocks(self) -> Iterator[FloatArray]:
        try:
            sd = self._load_backend()
        except RuntimeError as exc:
            self._set_state(SourceState.NO_DEVICE, str(exc))
            self._set_state(SourceState.ENDED)
            return
        while not self.stopped:
            try:
                stream = self._open(sd)
            except Exception as exc:  # PortAudioError, ValueError (no such device), DeviceLost
                self._set_state(SourceState.NO_DEVICE, f"{type(exc).__name__}: {exc}")
                self._stop.wait(self.retry_s)
                continue
            self._set_state(SourceState.READY)
            assert self.capture_rate is not None  # noqa: S101 - set by _open
            resampler = Resampler(self.capture_rate)
            try:
                yield from self._read(stream, resampler)
            except DeviceLost as exc:
                self._set_state(SourceState.DISCONNECTED, str(exc))
            finally:
                try:
                    stream.stop()
                    stream.close()
                except Exception as exc:  # closing a vanished device may fail too
                    logger.debug("closing the input stream failed: %s", exc)
                resampler.wipe()
                self._drain()
            if not self.stopped:
                self._stop.wait(self.retry_s)
        self._set_state(SourceState.ENDED)

    def _read(self, stream: Any, resampler: Resampler) -> Iterable[FloatArray]:
        # Some back-ends (ALSA's PulseAudio plugin) take over a second to deliver the first block.
        timeout = max(self.stall_s, self.start_timeout_s)
        while not self.stopped:
            try:
                block = self._queue.get(timeout=timeout)
            except queue.Empty:
                why = "input stream stopped" if not getattr(stream, "active", True) else "no audio"
                raise DeviceLost(f"{why} for {timeout:.1f} s") from None
            timeout = self.stall_s
            out = resampler.process(block)
            block.fill(0.0)
            if len(out):
                self.last_block_at = time.perf_counter()
                yield out

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait().fill(0.0)
            except queue.Empty:
                return


def make_source(
    kind: str,
    *,
    path: Path | None = None,
    device: int | str | None = None,
    realtime: bool = False,
    signal: str = "silence",
    seconds: float = 5.0,
    on_state: StateCallback | None = None,
) -> AudioSource:
    """The one factory: 'mic' (SounddeviceSource), 'wav' (WavFileSource) or 'synthetic'."""
    if kind == "mic":
        return SounddeviceSource(device, on_state=on_state)
    if kind == "wav":
        if path is None:
            raise ValueError("a 'wav' source needs a path")
        return WavFileSource(path, realtime=realtime, on_state=on_state)
    if kind == "synthetic":
        return SyntheticSource(synth(signal, seconds), realtime=realtime, on_state=on_state)
    raise ValueError(f"unknown audio source {kind!r} (mic, wav, synthetic)")


def input_device(setting: str | None) -> int | str | None:
    """An input device as settings and options name it: an index ('3'), a PortAudio name, or none (default)."""
    if not setting:
        return None
    return int(setting) if setting.isdigit() else setting


def rms_dbfs(samples: FloatArray) -> float:
    """RMS level of float samples in dB relative to full scale; -inf for digital silence or no samples."""
    if len(samples) == 0:
        return -math.inf
    rms = math.sqrt(float((samples.astype("float64") ** 2).sum()) / len(samples))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def level_dbfs(samples: FloatArray) -> tuple[float, float]:
    """(RMS, peak) of float samples in dB relative to full scale; -inf for digital silence."""
    if len(samples) == 0:
        return -math.inf, -math.inf
    peak = float(abs(samples).max())
    return rms_dbfs(samples), (20 * math.log10(peak) if peak > 0 else -math.inf)


__all__ = [
    "ArraySource",
    "AudioSource",
    "DeviceLost",
    "Resampler",
    "SounddeviceSource",
    "SourceState",
    "SyntheticSource",
    "WavFileSource",
    "choose_capture_rate",
    "input_device",
    "level_dbfs",
    "lowpass_taps",
    "make_source",
    "read_wav",
    "rms_dbfs",
    "synth",
    "to_mono",
]
