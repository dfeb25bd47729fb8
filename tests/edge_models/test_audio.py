"""Audio sources: resampling, WAV reading, synthetic signals, and the microphone's states."""

from __future__ import annotations

import threading
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_models.audio import (
    ArraySource,
    Resampler,
    SounddeviceSource,
    SourceState,
    SyntheticSource,
    WavFileSource,
    choose_capture_rate,
    make_source,
    read_wav,
    synth,
)


def tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


@pytest.mark.parametrize("rate", [48000, 44100, 22050, 8000])
def test_resampler_keeps_pitch_level_and_length(rate: int) -> None:
    x = tone(440, rate, 2.0)
    out = Resampler(rate).process(x)
    assert abs(len(out) - 32000) <= 2
    assert dominant_hz(out[1000:-1000], 16000) == pytest.approx(440, abs=2)
    assert rms(out[1000:-1000]) == pytest.approx(0.5 / np.sqrt(2), rel=0.03)


def test_resampler_in_blocks_equals_whole_signal() -> None:
    x = tone(300, 44100, 1.0) + tone(1200, 44100, 1.0, 0.2)
    whole = Resampler(44100).process(x)
    r = Resampler(44100)
    sizes = [441, 1000, 7, 2048, 1411]
    parts, start, i = [], 0, 0
    while start < len(x):
        n = sizes[i % len(sizes)]
        parts.append(r.process(x[start : start + n]))
        start, i = start + n, i + 1
    chunked = np.concatenate(parts)
    assert len(chunked) == len(whole)
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_resampler_removes_tones_above_8khz_instead_of_aliasing() -> None:
    out = Resampler(48000).process(tone(11000, 48000, 1.0))  # would alias to 5 kHz
    assert rms(out[500:]) < 0.01


def test_resampler_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(0)


def test_choose_capture_rate_prefers_16k_then_48k_then_default() -> None:
    assert choose_capture_rate(lambda r: True, 44100) == 16000
    assert choose_capture_rate(lambda r: r in {44100, 48000}, 44100) == 48000
    assert choose_capture_rate(lambda r: r == 44100, 44100) == 44100
    assert choose_capture_rate(lambda r: False, 11025.0) == 11025


def write_wav(path: Path, data: np.ndarray, rate: int, channels: int = 1) -> Path:
    pcm = (np.clip(data, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def test_read_wav_downmixes_and_resamples(tmp_path: Path) -> None:
    left = tone(500, 48000, 1.0, 0.4)
    stereo = np.stack([left, left], axis=1).reshape(-1)
    audio = read_wav(write_wav(tmp_path / "s.wav", stereo, 48000, channels=2))
    assert audio.dtype == np.float32
    assert len(audio) == 16000
    assert dominant_hz(audio, 16000) == pytest.approx(500, abs=2)


def test_wav_source_yields_the_file_in_frames(tmp_path: Path) -> None:
    data = tone(250, 16000, 0.5, 0.3)
    source = WavFileSource(write_wav(tmp_path / "m.wav", data, 16000))
    states: list[SourceState] = []
    source.on_state = lambda s, _d: states.append(s)
    blocks = list(source.blocks())
    assert all(len(b) == 512 for b in blocks[:-1])
    np.testing.assert_allclose(np.concatenate(blocks), data, atol=2 / 32767)
    assert states == [SourceState.READY, SourceState.ENDED]
    assert source.last_block_at is not None


def test_stop_ends_a_realtime_source_early() -> None:
    source = SyntheticSource(synth("silence", 60.0), realtime=True)
    got = []
    for block in source.blocks():
        got.append(block)
        if len(got) == 3:
            source.stop()
    assert len(got) == 3


def test_wipe_overwrites_the_held_audio() -> None:
    source = ArraySource(tone(100, 16000, 0.1))
    source.wipe()
    assert not np.any(np.concatenate(list(source.blocks())))


@pytest.mark.parametrize("kind", ["silence", "noise", "hum", "beep"])
def test_synthetic_signals(kind: str) -> None:
    x = synth(kind, 2.0)
    assert len(x) == 32000 and x.dtype == np.float32
    if kind == "silence":
        assert not np.any(x)
    else:
        assert rms(x) > 0.05
    if kind == "hum":
        assert dominant_hz(x, 16000) == pytest.approx(50, abs=1)
    if kind == "beep":
        assert dominant_hz(x, 16000) == pytest.approx(1000, abs=2)


def test_factory(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "f.wav", tone(200, 16000, 0.2), 16000)
    assert isinstance(make_source("wav", path=wav), WavFileSource)
    assert isinstance(make_source("synthetic", signal="hum", seconds=1), SyntheticSource)
    assert isinstance(make_source("mic"), SounddeviceSource)
    with pytest.raises(ValueError, match="unknown audio source"):
        make_source("tape")
    with pytest.raises(ValueError, match="needs a path"):
        make_source("wav")


# -- microphone with a fake PortAudio backend -------------------------------------------------------


class FakePortAudioError(Exception):
    pass


class FakeStream:
    def __init__(self, backend: FakeSounddevice, samplerate: int, blocksize: int, callback: Any, **_: Any) -> None:
        self.backend = backend
        self.samplerate = samplerate
        self.blocksize = blocksize
        self.callback = callback
        self.active = False
        self.closed = False

    def start(self) -> None:
        self.active = True
        self.backend.streams.append(self)

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        self.closed = True

    def feed(self, block: np.ndarray) -> None:
        self.callback(block.reshape(-1, 1), len(block), None, None)


class FakeSounddevice:
    """Enough of the sounddevice module: one USB mic that only accepts 48 kHz, pluggable."""

    PortAudioError = FakePortAudioError

    def __init__(self, plugged: bool = True) -> None:
        self.plugged = plugged
        self.streams: list[FakeStream] = []
        self.rates_checked: list[int] = []

    def query_devices(self, device: Any, kind: str) -> dict[str, Any]:
        if not self.plugged:
            raise FakePortAudioError("Error querying device -1")
        return {"name": "USB mic", "max_input_channels": 1, "default_samplerate": 48000.0}

    def check_input_settings(self, device: Any, channels: int, samplerate: int, dtype: str) -> None:
        self.rates_checked.append(samplerate)
        if samplerate != 48000:
            raise FakePortAudioError("Invalid sample rate")

    def InputStream(self, **kwargs: Any) -> FakeStream:
        if not self.plugged:
            raise FakePortAudioError("Device unavailable")
        return FakeStream(self, **kwargs)


def test_mic_opens_at_a_supported_rate_and_resamples() -> None:
    sd = FakeSounddevice()
    source = SounddeviceSource(backend=sd, stall_s=0.5, start_timeout_s=0.5, retry_s=0.01)
    x = tone(440, 48000, 1.0)
    out: list[np.ndarray] = []

    def feeder() -> None:
        while not sd.streams:
            threading.Event().wait(0.005)
        for i in range(0, len(x), 1536):
            sd.streams[0].feed(x[i : i + 1536])

    thread = threading.Thread(target=feeder)
    thread.start()
    for block in source.blocks():
        out.append(block)
        if sum(map(len, out)) >= 15900:
            source.stop()
    thread.join()
    assert source.capture_rate == 48000
    assert sd.rates_checked[0] == 16000 and 48000 in sd.rates_checked
    assert sd.streams[0].blocksize == 1536  # 32 ms at the device rate
    audio = np.concatenate(out)
    assert dominant_hz(audio[500:], 16000) == pytest.approx(440, abs=3)
    assert sd.streams[0].closed
    assert source.state == SourceState.ENDED


def test_missing_mic_is_a_state_and_replugging_recovers() -> None:
    sd = FakeSounddevice(plugged=False)
    states: list[tuple[SourceState, str]] = []
    source = SounddeviceSource(backend=sd, stall_s=0.2, start_timeout_s=0.2, retry_s=0.01)

    def on_state(state: SourceState, detail: str) -> None:
        states.append((state, detail))
        if state == SourceState.NO_DEVICE:
            sd.plugged = True  # the technician plugs the microphone in
        if state == SourceState.READY:
            threading.Timer(0.01, lambda: sd.streams[-1].feed(tone(440, 48000, 0.1))).start()

    source.on_state = on_state
    for _block in source.blocks():
        source.stop()
    kinds = [s for s, _ in states]
    assert kinds[:2] == [SourceState.NO_DEVICE, SourceState.READY]
    assert "Error querying device" in states[0][1]
    assert kinds[-1] == SourceState.ENDED


def test_unplugged_mic_reports_disconnected_then_reopens() -> None:
    sd = FakeSounddevice()
    states: list[SourceState] = []
    source = SounddeviceSource(backend=sd, stall_s=0.1, start_timeout_s=0.1, retry_s=0.01)
    opened = 0

    def on_state(state: SourceState, _detail: str) -> None:
        nonlocal opened
        states.append(state)
        if state == SourceState.READY:
            opened += 1
            if opened == 1:
                # one block, then the cable is pulled: the stream goes silent and inactive
                stream = sd.streams[-1]
                stream.feed(tone(440, 48000, 0.05))
                stream.active = False
            else:
                threading.Timer(0.01, lambda: sd.streams[-1].feed(tone(440, 48000, 0.05))).start()

    source.on_state = on_state
    received = 0
    for _block in source.blocks():
        received += 1
        if opened >= 2:
            source.stop()
    assert SourceState.DISCONNECTED in states
    assert states.index(SourceState.DISCONNECTED) < len(states) - 1
    assert opened == 2 and received >= 2
    assert all(s.closed for s in sd.streams)


def test_missing_portaudio_library_is_a_state_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_portaudio() -> Any:
        raise RuntimeError("PortAudio is missing: apt install libportaudio2")

    source = SounddeviceSource()
    monkeypatch.setattr(source, "_load_backend", no_portaudio)
    states: list[tuple[SourceState, str]] = []
    source.on_state = lambda s, d: states.append((s, d))
    assert list(source.blocks()) == []
    assert [s for s, _ in states] == [SourceState.NO_DEVICE, SourceState.ENDED]
    assert "libportaudio2" in states[0][1]
