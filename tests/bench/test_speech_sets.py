"""The development speech sets: deterministic, split without overlap, shaped like the use."""

from __future__ import annotations

import numpy as np
import pytest

from bench.speech_mix import SAMPLE_RATE, active_power
from bench.speech_sets import (
    BABBLE_SNR_DB,
    EDGE_S,
    MONOLOGUE_S,
    PINK_SNR_DB,
    Item,
    build,
    corpus_of,
    in_lobby,
    split,
    trim,
)
from edge_models.wer import normalize


@pytest.fixture(scope="module")
def halves() -> dict[str, list[Item]]:
    return {half: build(half) for half in ("tune", "verify")}  # type: ignore[arg-type]


def test_the_halves_share_no_recording(halves: dict[str, list[Item]]) -> None:
    clips = {half: {i.name for i in items if i.set == "clips"} for half, items in halves.items()}
    assert clips["tune"] and clips["verify"] and not clips["tune"] & clips["verify"]
    for half, items in halves.items():
        other = "verify" if half == "tune" else "tune"
        for item in items:
            if item.set == "monologues":
                # every sentence of a monologue is the reference of a clip of the same half
                for clip in halves[other]:
                    if clip.set == "clips":
                        assert " ".join(normalize(clip.text)) not in " ".join(normalize(item.text)), item.name


def test_building_twice_gives_the_same_samples(halves: dict[str, list[Item]]) -> None:
    again = build("tune")
    assert [i.name for i in again] == [i.name for i in halves["tune"]]
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(again, halves["tune"], strict=True))


def test_monologues_are_20_to_40_seconds_of_one_corpus_with_breath_pauses(halves: dict[str, list[Item]]) -> None:
    monologues = [i for items in halves.values() for i in items if i.set == "monologues"]
    assert len(monologues) >= 8
    for item in monologues:
        assert MONOLOGUE_S[0] <= item.duration_s <= MONOLOGUE_S[1], item.name
        edge = round(EDGE_S * SAMPLE_RATE)
        assert not np.any(item.audio[:edge]) and not np.any(item.audio[-edge:])
        silent_runs = _silent_runs(item.audio[edge:-edge])
        assert silent_runs and max(silent_runs) <= 0.5 * SAMPLE_RATE + 1
        assert len(normalize(item.text)) >= 40


def test_noisy_items_carry_the_lobby_at_the_stated_levels() -> None:
    rng = np.random.default_rng(0)
    speech = (rng.standard_normal(SAMPLE_RATE * 2) * 0.05).astype(np.float32)
    babble = [(rng.standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32) for _ in range(3)]
    noisy = in_lobby(Item("x", "clips", "c", "texte", speech), babble, seed=1)
    edge = round(EDGE_S * SAMPLE_RATE)
    assert noisy.set == "noisy" and noisy.text == "texte" and len(noisy.audio) == len(speech) + 2 * edge
    noise = noisy.audio.astype(np.float64).copy()
    noise[edge:-edge] -= speech
    expected = 10 ** (-PINK_SNR_DB / 10) + 10 ** (-BABBLE_SNR_DB / 10)
    measured = float(np.mean(noise**2)) / active_power(speech)
    assert measured == pytest.approx(expected, rel=0.1)
    assert np.std(noisy.audio[:edge]) > 0  # the noise is there before the speech


def test_non_speech_items_have_empty_references_and_sound(halves: dict[str, list[Item]]) -> None:
    items = [i for i in halves["tune"] if i.set == "non_speech"]
    assert {i.name.rsplit("_", 1)[-1] for i in items} >= {"silence", "babble", "beeps", "knocks", "lobby"}
    assert all(i.text == "" for i in items)
    assert sum(1 for i in items if np.any(i.audio)) == len(items) - 1  # all but the silence


def test_the_split_alternates_within_each_corpus() -> None:
    clips = [{"file": f"clips/{c}_{n}.wav"} for c in ("asterisk_june", "fleurs_fr") for n in range(4)]
    halves = split(clips)
    assert [corpus_of(c["file"]) for c in halves["tune"]] == ["asterisk"] * 2 + ["fleurs"] * 2
    assert {c["file"] for c in halves["tune"]} & {c["file"] for c in halves["verify"]} == set()


def test_trim_removes_silent_edges_but_keeps_the_speech() -> None:
    tone = np.sin(np.arange(SAMPLE_RATE) / 5).astype(np.float32) * 0.3
    padded = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), tone, np.zeros(SAMPLE_RATE, np.float32)])
    trimmed = trim(padded)
    assert SAMPLE_RATE <= len(trimmed) <= SAMPLE_RATE + 0.12 * SAMPLE_RATE
    assert np.isclose(np.sum(trimmed**2), np.sum(tone**2), rtol=1e-3)


def _silent_runs(audio: np.ndarray) -> list[int]:
    runs, run = [], 0
    for silent in audio == 0:
        if silent:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    return [r for r in runs if r > 160]  # pauses, not zero crossings


def test_the_visit_languages_are_the_english_and_spanish_clips_with_their_language() -> None:
    from bench.speech_sets import visit_languages

    items = visit_languages()
    assert sorted({(i.language, i.corpus) for i in items}) == [("en", "fleurs_en"), ("es", "fleurs_es")]
    assert len(items) == 10 and all(i.set == "languages" and i.text and i.duration_s > 3 for i in items)
    assert normalize("25 to 30 year", "en") == ["twenty", "five", "to", "thirty", "year"]
