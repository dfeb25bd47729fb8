"""Development speech sets that look like the use, built in memory from the French fixtures (bench/data).

A citizen at the terminal speaks 20–40 s in one go, with breath pauses, in a lobby. The 35 fixture
clips are mostly single short phrases, so from them, deterministically, this module builds four sets:

- ``clips``: the fixture clips as they are;
- ``monologues``: 20–40 s of one speaker: clips of one corpus, their silent edges trimmed and brought to
  one level (one speaker at one distance), joined with random breath pauses of 0.1–0.5 s and 0.5 s of
  silence before and after; the reference is their texts joined;
- ``noisy``: every clip and monologue again in lobby noise: pink noise at 15 dB SNR plus reversed babble
  at 20 dB SNR (`bench.speech_mix`), with 0.5 s of that noise before and after the speech. The babble is
  made of the English and Spanish clips of ``fixtures/multi_speech``, so no French word of any set is in it;
- ``non_speech``: silence, a noise floor, pink noise, babble, beeps, clicks and knocks (reference "").

The clips are split in two halves, alternately in manifest order within each corpus: settings are
tuned on ``tune`` and figures are reported on ``verify`` (and on the blind set, `bench.speech_blind`),
whose clips, monologues and noisy variants share no recording with ``tune``.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bench.speech_mix import (
    SAMPLE_RATE,
    Audio,
    active_dbfs,
    active_power,
    impulses,
    join_with_gaps,
    pink_noise,
    reversed_babble,
    silence,
    tone,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = {
    "fr_speech": REPO / "bench" / "data" / "fr_speech",  # all 35 shared clips, whatever the checkout
    "multi_speech": REPO / "tests" / "fixtures" / "multi_speech",
}


def fixtures(name: str) -> Path:
    """The project's copy of the fixture directory `name`: the sets never depend on what sits beside the
    checkout (the shared folder once gave a 35-clip set here and a 16-clip one in CI)."""
    return FIXTURES[name]


Half = Literal["tune", "verify"]
HALVES: tuple[Half, ...] = ("tune", "verify")
SETS = ("clips", "monologues", "noisy", "non_speech", "languages")
SEEDS = {"tune": 11, "verify": 23}
MONOLOGUES_PER_CORPUS = {"asterisk": 4, "other": 4}
MONOLOGUE_S = (20.0, 40.0)
GAP_S = (0.1, 0.5)
EDGE_S = 0.5
SPEAKER_DBFS = -23.0  # active level every clip of a monologue is brought to
PINK_SNR_DB = 15.0
BABBLE_SNR_DB = 20.0
TRIM_RANGE_DB = 25.0  # 10-ms frames this far below a clip's loudest are its silent edges
TRIM_MARGIN_S = 0.05


@dataclass(frozen=True)
class Item:
    """One recording to transcribe, with its human reference ("" for non-speech)."""

    name: str
    set: str
    corpus: str
    text: str
    audio: Audio
    language: str = "fr"

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def read_wav(path: Path) -> Audio:
    """A 16-kHz mono 16-bit WAV file as float32 (what the fixtures are)."""
    import wave

    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: expected 16 kHz mono 16-bit PCM")
        pcm = wav.readframes(wav.getnframes())
    return (np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)


def manifest(clips_dir: Path) -> list[dict[str, Any]]:
    lines = (clips_dir / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def corpus_of(file: str) -> str:
    """`asterisk`, `fleurs` or `picovoice`, from a fixture clip's file name."""
    name = Path(file).name
    return "picovoice" if name.startswith("picovoice") else name.split("_")[0]


def split(clips: list[dict[str, Any]]) -> dict[Half, list[dict[str, Any]]]:
    """Alternate clips of each corpus, in manifest order, between `tune` and `verify`."""
    halves: dict[Half, list[dict[str, Any]]] = {"tune": [], "verify": []}
    seen: dict[str, int] = defaultdict(int)
    for clip in clips:
        corpus = corpus_of(clip["file"])
        halves[HALVES[seen[corpus] % 2]].append(clip)
        seen[corpus] += 1
    return halves


def trim(audio: Audio, range_db: float = TRIM_RANGE_DB, margin_s: float = TRIM_MARGIN_S) -> Audio:
    """`audio` without its silent edges: 10-ms frames more than `range_db` below the loudest, minus a margin."""
    frame = SAMPLE_RATE // 100
    n = len(audio) // frame
    power = np.mean(audio[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)
    active = np.flatnonzero(power >= power.max() * 10 ** (-range_db / 10))
    margin = round(margin_s * SAMPLE_RATE)
    start = max(0, int(active[0]) * frame - margin)
    end = min(len(audio), (int(active[-1]) + 1) * frame + margin)
    return audio[start:end]


def at_active_level(audio: Audio, level_dbfs: float = SPEAKER_DBFS) -> Audio:
    """`audio` scaled so that its active part (`bench.speech_mix.active_dbfs`) is at `level_dbfs`."""
    return (audio * 10 ** ((level_dbfs - active_dbfs(audio)) / 20)).astype(np.float32)


def monologues(half: Half, clips: list[dict[str, Any]], clips_dir: Path) -> list[Item]:
    """Monologues of 20–40 s, each of one corpus (one speaker, or one recording set), from `clips`."""
    rng = random.Random(SEEDS[half])
    groups = {
        "asterisk": [c for c in clips if corpus_of(c["file"]) == "asterisk"],
        "other": [c for c in clips if corpus_of(c["file"]) != "asterisk"],
    }
    items: list[Item] = []
    for group, count in MONOLOGUES_PER_CORPUS.items():
        pool = groups[group]
        for k in range(count):
            order = list(pool)
            rng.shuffle(order)
            chosen: list[dict[str, Any]] = []
            audio: list[Audio] = []
            total = 0.0
            for clip in order:
                piece = at_active_level(trim(read_wav(clips_dir / clip["file"])))
                if total + len(piece) / SAMPLE_RATE + GAP_S[1] > MONOLOGUE_S[1] - 2 * EDGE_S:
                    continue
                chosen.append(clip)
                audio.append(piece)
                total += len(piece) / SAMPLE_RATE + GAP_S[1]
                if total >= MONOLOGUE_S[0] and rng.random() < 0.4:
                    break
            gaps = [round(rng.uniform(*GAP_S), 3) for _ in audio[1:]]
            joined = join_with_gaps(audio, gaps, EDGE_S)
            text = " ".join(c["text"].strip() for c in chosen)
            items.append(Item(f"monologue_{half}_{group}_{k}", "monologues", group, text, joined))
    return items


def babble_sources(babble_dir: Path | None = None) -> list[Audio]:
    babble_dir = babble_dir or fixtures("multi_speech")
    return [read_wav(babble_dir / clip["file"]) for clip in manifest(babble_dir)]


def in_lobby(item: Item, babble: list[Audio], seed: int) -> Item:
    """`item` with pink noise (15 dB SNR) and reversed babble (20 dB SNR), and 0.5 s of that noise around it.

    Each SNR is the speech's active power (`bench.speech_mix.active_power`) over the noise's power.
    """
    rng = np.random.default_rng(seed)
    pad = silence(EDGE_S)
    speech = np.concatenate([pad, item.audio, pad])
    power = active_power(item.audio)
    pink = pink_noise(len(speech), rng) * np.sqrt(power / 10 ** (PINK_SNR_DB / 10))
    chatter = reversed_babble(babble, len(speech), rng) * np.sqrt(power / 10 ** (BABBLE_SNR_DB / 10))
    return Item(f"noisy_{item.name}", "noisy", item.corpus, item.text, (speech + pink + chatter).astype(np.float32))


def non_speech(half: Half, babble: list[Audio]) -> list[Item]:
    """Recordings without a word: a recogniser must return nothing on any of them."""
    rng = np.random.default_rng(SEEDS[half] + 1000)
    n = 4 * SAMPLE_RATE
    floor = pink_noise(n, rng) * 10 ** (-60 / 20)
    beeps = np.concatenate([silence(0.5), tone(1000.0, 0.4), silence(0.6), tone(440.0, 0.25), silence(2.25)])
    lobby = pink_noise(n, rng) * 10 ** (-38 / 20) + reversed_babble(babble, n, rng) * 10 ** (-43 / 20)
    knocks = impulses(n, [0.5, 1.1, 1.9, 2.6, 3.3], rng)
    signals = {
        "silence": silence(4.0),
        "noise_floor": floor,
        "pink_noise": pink_noise(n, rng) * 10 ** (-35 / 20),
        "babble": reversed_babble(babble, n, rng) * 10 ** (-30 / 20),
        "beeps": beeps + floor,
        "knocks": knocks + floor,
        "lobby": lobby,
    }
    return [
        Item(f"non_speech_{half}_{name}", "non_speech", "synthetic", "", np.asarray(audio, dtype=np.float32))
        for name, audio in signals.items()
    ]


def visit_languages(clips_dir: Path | None = None) -> list[Item]:
    """The English and Spanish FLEURS clips, each with its language: speech of a visit in another language
    (nothing was tuned on them, so the set is not split)."""
    clips_dir = clips_dir or fixtures("multi_speech")
    return [
        Item(
            Path(c["file"]).stem,
            "languages",
            f"fleurs_{c['language']}",
            c["text"],
            read_wav(clips_dir / c["file"]),
            c["language"],
        )
        for c in manifest(clips_dir)
    ]


def build(half: Half, clips_dir: Path | None = None, babble_dir: Path | None = None) -> list[Item]:
    """Every item of one half, in set order: clips, monologues, noisy, non_speech, then the visit languages."""
    clips_dir = clips_dir or fixtures("fr_speech")
    chosen = split(manifest(clips_dir))[half]
    clips = [
        Item(Path(c["file"]).stem, "clips", corpus_of(c["file"]), c["text"], read_wav(clips_dir / c["file"]))
        for c in chosen
    ]
    monos = monologues(half, chosen, clips_dir)
    babble = babble_sources(babble_dir)
    noisy = [in_lobby(item, babble, SEEDS[half] * 100 + i) for i, item in enumerate(clips + monos)]
    return clips + monos + noisy + non_speech(half, babble) + visit_languages()


def summary(items: Iterable[Item]) -> dict[str, dict[str, float]]:
    """Items, seconds and reference words per set."""
    from edge_models.wer import normalize

    out: dict[str, dict[str, float]] = {}
    for item in items:
        row = out.setdefault(item.set, {"items": 0, "seconds": 0.0, "words": 0})
        row["items"] += 1
        row["seconds"] = round(row["seconds"] + item.duration_s, 1)
        row["words"] += len(normalize(item.text, item.language))
    return out


__all__ = [
    "HALVES",
    "SETS",
    "Item",
    "build",
    "corpus_of",
    "in_lobby",
    "manifest",
    "split",
    "summary",
    "trim",
    "visit_languages",
]
