"""Whisper's input: the 80-band log-Mel spectrogram of 16 kHz audio, computed with numpy alone.

The published recipe (Radford et al. 2022, and the reference implementation's `log_mel_spectrogram`):
25 ms Hann windows every 10 ms, centred (reflect padding), power spectrum, Slaney-style Mel filters up to
8 kHz, log10 floored at 1e-10, clamped to 8 decades below the loudest value, scaled to about [-1, 1].
Computing it here keeps faster-whisper's package (and the audio-file decoder it imports) out of the
kiosk's memory.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from edge_models.options import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy.typing as npt

N_FFT = 400  # 25 ms
HOP = 160  # 10 ms: one feature frame
N_MELS = 80
TAIL_PADDING = 160  # zeros appended before the transform, as faster-whisper does (one more frame at the end)


def hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's Mel scale: linear (3 per 200 Hz) below 1 kHz, logarithmic (27 per factor 6.4) above."""
    mel = hz / (200.0 / 3.0)
    above = hz >= 1000.0
    mel[above] = 15.0 + np.log(hz[above] / 1000.0) * 27.0 / np.log(6.4)
    return mel


def mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    hz = mel * (200.0 / 3.0)
    above = mel >= 15.0
    hz[above] = 1000.0 * np.exp((mel[above] - 15.0) * np.log(6.4) / 27.0)
    return hz


@functools.cache
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = SAMPLE_RATE) -> npt.NDArray[np.float32]:
    """Triangular filters (n_mels × n_fft/2+1), equally spaced on the Mel scale, each of equal area."""
    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(0.0, float(hz_to_mel(np.array([rate / 2]))[0]), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    triangles = np.clip(np.minimum(rising, falling), 0.0, None)
    return (triangles * (2.0 / (upper - lower))).astype(np.float32)


def log_mel(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Log-Mel features (80 × frames, one frame per 10 ms) of 16 kHz mono float32 audio."""
    signal = np.pad(np.asarray(audio, dtype=np.float32), (0, TAIL_PADDING))
    half = N_FFT // 2
    signal = np.pad(signal, (half, half), mode="reflect")
    frames = 1 + (len(signal) - N_FFT) // HOP
    windows = np.lib.stride_tricks.sliding_window_view(signal, N_FFT)[::HOP][:frames]
    hann = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic
    spectrum = np.fft.rfft(windows * hann, axis=-1).astype(np.complex64)
    power = (np.abs(spectrum[:-1]) ** 2).T  # the last frame is dropped, as in the reference
    log_spec = np.log10(np.clip(mel_filters() @ power, 1e-10, None))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return np.ascontiguousarray((log_spec + 4.0) / 4.0, dtype=np.float32)


__all__ = ["HOP", "N_FFT", "N_MELS", "hz_to_mel", "log_mel", "mel_filters", "mel_to_hz"]
