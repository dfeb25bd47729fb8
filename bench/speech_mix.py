"""Building blocks for synthetic listening conditions around real speech: noise, babble, mixing, joining.

Every signal is mono float32 at 16 kHz (`SAMPLE_RATE`), numpy only, and every random draw comes from the
`numpy.random.Generator` the caller passes, so a benchmark that seeds its generator gets the same samples
on every run. The arithmetic is done in float64 and cast to float32 at the end.

Levels: `rms_dbfs` is the RMS in dB relative to a full-scale sine's peak of 1.0 (so 0 dBFS RMS is a
full-scale square wave). A signal's *active part* is the set of its 20-ms frames whose power is within
30 dB of its loudest frame (`active_power`); `mix_at_snr` measures the speech over its active part, so
leading or trailing silence (or pauses between sentences) do not change the SNR a mixture gets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME = 320  # 20 ms, the frame of `active_power`
ACTIVE_RANGE_DB = 30.0  # frames this far below the loudest still count as active
PINK_ROWS = 16  # Voss-McCartney rows: the spectrum falls as 1/f from about 16000 / 2**16 = 0.24 Hz

Audio = NDArray[np.float32]


def _as64(x: NDArray[np.floating] | Sequence[float]) -> NDArray[np.float64]:
    return np.asarray(x, dtype=np.float64)


def rms(x: NDArray[np.floating]) -> float:
    """Root mean square of the whole signal (0.0 for an empty one)."""
    a = _as64(x)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def rms_dbfs(x: NDArray[np.floating]) -> float:
    """RMS level in dBFS (-inf for silence)."""
    r = rms(x)
    return 20.0 * float(np.log10(r)) if r > 0 else float("-inf")


def active_power(x: NDArray[np.floating], range_db: float = ACTIVE_RANGE_DB) -> float:
    """Mean power of the 20-ms frames within `range_db` of the loudest frame (a simple energy gate).

    A signal shorter than one frame is one frame. 0.0 for silence.
    """
    a = _as64(x)
    if not a.size:
        return 0.0
    n = max(1, a.size // FRAME)
    frames = a[: n * FRAME].reshape(n, FRAME) if a.size >= FRAME else a.reshape(1, -1)
    power = np.mean(frames * frames, axis=1)
    loudest = float(power.max())
    if loudest <= 0:
        return 0.0
    return float(power[power >= loudest * 10 ** (-range_db / 10)].mean())


def active_dbfs(x: NDArray[np.floating]) -> float:
    """Level of the active part in dBFS (-inf for silence)."""
    p = active_power(x)
    return 10.0 * float(np.log10(p)) if p > 0 else float("-inf")


def at_dbfs(x: NDArray[np.floating], level_dbfs: float) -> Audio:
    """`x` scaled so that its RMS over the whole signal is `level_dbfs`."""
    r = rms(x)
    if r == 0:
        raise ValueError("cannot set the level of silence")
    return (_as64(x) * (10 ** (level_dbfs / 20) / r)).astype(np.float32)


def pink_noise(n_samples: int, rng: np.random.Generator) -> Audio:
    """Pink (1/f) noise of RMS 1.0 and zero mean, by the Voss-McCartney algorithm.

    Row k holds a Gaussian value for 2**k samples (each row at a random phase); the sum of `PINK_ROWS`
    rows falls by about 3 dB per octave from 50 Hz to 3 kHz, 2 dB over the last octave. Only additions in
    a fixed order, no FFT, so the same generator state gives the same samples on any machine. Scale it
    before use (`at_dbfs`, `mix_at_snr`).
    """
    if n_samples <= 0:
        return np.zeros(0, dtype=np.float32)
    total = np.zeros(n_samples)
    for k in range(PINK_ROWS):
        hold = 1 << k
        values = rng.standard_normal(n_samples // hold + 2)
        offset = int(rng.integers(0, hold))
        total += np.repeat(values, hold)[offset : offset + n_samples]
    total -= total.mean()
    return (total / rms(total)).astype(np.float32)


def reversed_babble(
    sources: Sequence[NDArray[np.floating]], n_samples: int, rng: np.random.Generator, voices: int = 4
) -> Audio:
    """Speech-shaped babble of RMS 1.0 in which no word can be understood: `voices` streams summed.

    Each stream is the `sources` time-reversed, each brought to the same active level, in an order drawn
    from `rng`, concatenated (looping if needed) and started at a random offset into its first source;
    each stream is brought to RMS 1 before the sum, and the sum to RMS 1. Reversed speech keeps the
    spectrum and rhythm of speech without its words, so a recogniser should transcribe nothing.
    """
    if voices < 1:
        raise ValueError("voices must be at least 1")
    usable = [_as64(s)[::-1] for s in sources if active_power(s) > 0]
    if not usable:
        raise ValueError("reversed_babble needs at least one non-silent source")
    usable = [s / np.sqrt(active_power(s)) for s in usable]
    if n_samples <= 0:
        return np.zeros(0, dtype=np.float32)
    total = np.zeros(n_samples)
    for _ in range(voices):
        order = rng.permutation(len(usable))
        start = int(rng.integers(0, len(usable[order[0]])))
        pieces: list[NDArray[np.float64]] = []
        have = -start
        while have < n_samples:
            for i in order:
                pieces.append(usable[i])
                have += len(usable[i])
                if have >= n_samples:
                    break
        stream = np.concatenate(pieces)[start : start + n_samples]
        total += stream / max(rms(stream), 1e-12)
    return (total / max(rms(total), 1e-12)).astype(np.float32)


def scale_to_snr(speech: NDArray[np.floating], noise: NDArray[np.floating], snr_db: float) -> Audio:
    """`noise` scaled so that speech power over its active part / noise power over its whole is `snr_db`."""
    if len(noise) != len(speech):
        raise ValueError(f"noise has {len(noise)} samples, speech {len(speech)}")
    speech_power = active_power(speech)
    noise_power = float(np.mean(_as64(noise) ** 2)) if len(noise) else 0.0
    if speech_power <= 0 or noise_power <= 0:
        raise ValueError("speech and noise must both be non-silent")
    gain = float(np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10))))
    return (_as64(noise) * gain).astype(np.float32)


def mix_at_snr(speech: NDArray[np.floating], noise: NDArray[np.floating], snr_db: float) -> Audio:
    """`speech` plus `noise` (same length) at `snr_db` dB SNR.

    The SNR compares the speech's active part (`active_power`: 20-ms frames within 30 dB of its loudest)
    with the noise over its whole length; the speech is not rescaled.
    """
    return (_as64(speech) + _as64(scale_to_snr(speech, noise, snr_db))).astype(np.float32)


def measured_snr_db(speech: NDArray[np.floating], noise: NDArray[np.floating]) -> float:
    """The SNR `mix_at_snr` would call this pair: active speech power over whole-noise power, in dB."""
    return 10.0 * float(np.log10(active_power(speech) / float(np.mean(_as64(noise) ** 2))))


def silence(duration_s: float) -> Audio:
    """Digital silence of `duration_s` seconds (rounded to the nearest sample)."""
    return np.zeros(round(duration_s * SAMPLE_RATE), dtype=np.float32)


def join_with_gaps(clips: Sequence[NDArray[np.floating]], gaps_s: Sequence[float], edge_s: float) -> Audio:
    """The clips one after the other, `gaps_s[i]` seconds of silence between clip i and i+1, and `edge_s`
    seconds of silence before the first and after the last (each length rounded to the nearest sample)."""
    if len(gaps_s) != max(len(clips) - 1, 0):
        raise ValueError(f"{len(clips)} clips need {max(len(clips) - 1, 0)} gaps, got {len(gaps_s)}")
    parts: list[NDArray[np.float32]] = [silence(edge_s)]
    for i, clip in enumerate(clips):
        if i:
            parts.append(silence(gaps_s[i - 1]))
        parts.append(np.asarray(clip, dtype=np.float32))
    parts.append(silence(edge_s))
    return np.concatenate(parts).astype(np.float32)


def tone(freq: float, dur: float, level_dbfs: float = -12.0, fade_s: float = 0.005) -> Audio:
    """A sine beep of `dur` seconds at `freq` Hz, RMS `level_dbfs`, with raised-cosine fades of `fade_s`."""
    n = round(dur * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    wave: NDArray[np.float64] = np.sin(2 * np.pi * freq * t) * np.sqrt(2) * 10 ** (level_dbfs / 20)
    fade = min(round(fade_s * SAMPLE_RATE), n // 2)
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        wave[:fade] *= ramp
        wave[n - fade :] *= ramp[::-1]
    return wave.astype(np.float32)


def impulses(n_samples: int, times_s: Sequence[float], rng: np.random.Generator, peak: float = 0.5) -> Audio:
    """Clicks and knocks at `times_s`: alternately a 3-ms decaying noise burst (a click) and a 60-ms
    decaying 120–250 Hz resonance with a noisy attack (a knock on a counter), each with peak about `peak`."""
    out = np.zeros(n_samples)
    for i, at in enumerate(times_s):
        start = round(at * SAMPLE_RATE)
        if i % 2 == 0:
            n = round(0.003 * SAMPLE_RATE)
            burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.0008 * SAMPLE_RATE))
        else:
            n = round(0.06 * SAMPLE_RATE)
            t = np.arange(n) / SAMPLE_RATE
            freq = float(rng.uniform(120.0, 250.0))
            burst = np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.012)
            burst[:48] += rng.standard_normal(48) * np.exp(-np.arange(48) / 12.0)
        burst *= peak / max(float(np.abs(burst).max()), 1e-12)
        end = min(start + len(burst), n_samples)
        if start < end:
            out[start:end] += burst[: end - start]
    return out.astype(np.float32)


__all__ = [
    "SAMPLE_RATE",
    "Audio",
    "active_dbfs",
    "active_power",
    "at_dbfs",
    "impulses",
    "join_with_gaps",
    "measured_snr_db",
    "mix_at_snr",
    "pink_noise",
    "reversed_babble",
    "rms",
    "rms_dbfs",
    "scale_to_snr",
    "silence",
    "tone",
]
