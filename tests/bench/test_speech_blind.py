"""The blind speech set: built from a fake source of synthetic prompts (no Debian package needed), and from
the real Asterisk sounds when they are installed."""

from __future__ import annotations

import functools
import hashlib
import json
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import speech_blind as sb
from bench.speech_mix import (
    SAMPLE_RATE,
    Audio,
    active_power,
    join_with_gaps,
    measured_snr_db,
    mix_at_snr,
    pink_noise,
    reversed_babble,
    tone,
)

VOCAB = ["bonjour", "merci", "guichet", "dossier", "attente", "accueil", "rapide", "aimable", "clair", "mairie"]
SMALL = sb.Sizes(clips=6, monologues=2, noisy_clips=2, noisy_monologues=1, babble_clips=3)


def fake_speech(seconds: float, rng: np.random.Generator) -> Audio:
    """Voiced syllables (a few harmonics of a 110–220 Hz pitch, 4–6 per second) with short pauses."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    pitch = rng.uniform(110, 220)
    voice = sum(np.sin(2 * np.pi * pitch * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(2.0, 3.0) * t), 0, None) ** 2
    audio = 0.1 * voice * syllables * np.exp(-(((t - seconds / 2) / seconds) ** 8))
    return np.asarray(audio, dtype=np.float32)


class FakeSounds:
    """80 synthetic prompts with made-up transcripts, plus entries the eligibility rules must leave out."""

    def __init__(self, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self._texts: dict[str, str] = {}
        self._audio: dict[str, Audio] = {}
        seen: set[str] = set()
        for i in range(80):
            while True:
                text = " ".join(str(w) for w in rng.choice(VOCAB, size=int(rng.integers(4, 10))))
                if text not in seen:
                    seen.add(text)
                    break
            self.add(f"prompt-{i:02d}", text.capitalize() + ".", fake_speech(float(rng.uniform(1.6, 6.5)), rng))
        self.add("digits/1", "un", fake_speech(0.6, rng))
        self.add("beeperr", "(ahooga)", tone(300, 0.4))
        self.add("tiny", "bonjour merci guichet", fake_speech(0.9, rng))
        self.add("prompt-dup", self._texts["prompt-03"].upper(), fake_speech(2.0, rng))
        self.add("vm-used", "une phrase des fixtures du projet", fake_speech(2.5, rng))
        for name in sb.BEEP_NAMES:
            self._audio[name] = tone(1000, 0.3)

    def add(self, name: str, text: str, audio: Audio) -> None:
        self._texts[name] = text
        self._audio[name] = audio

    def transcripts(self) -> dict[str, str]:
        return dict(self._texts)

    def exists(self, name: str) -> bool:
        return name in self._audio

    def audio(self, name: str) -> Audio:
        return self._audio[name]

    def digest(self, name: str) -> str:
        return hashlib.sha256(self._audio[name].tobytes()).hexdigest()


USED = {"vm-used": "Une phrase des fixtures du projet."}


@functools.cache
def _fake_recipe() -> str:
    source = FakeSounds()
    return json.dumps(sb.seal(sb.draft_recipe(source, USED, seed=11, sizes=SMALL), source))


def fake_recipe() -> dict[str, Any]:
    """The recipe drafted from `FakeSounds` (drafted once, a fresh copy each call)."""
    recipe: dict[str, Any] = json.loads(_fake_recipe())
    return recipe


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    recipe = fake_recipe()
    out = tmp_path_factory.mktemp("blind") / "set"
    sb.build_blind_set(out, recipe=recipe, source=FakeSounds())
    return recipe, out


def manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]


def read_wav(path: Path) -> Audio:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SAMPLE_RATE)
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return (pcm.astype(np.float64) / 32768.0).astype(np.float32)


def test_the_same_recipe_and_sounds_give_the_same_bytes(built: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    recipe, first = built
    source = FakeSounds()
    assert sb.seal(sb.draft_recipe(source, USED, seed=11, sizes=SMALL), source) == recipe
    sb.build_blind_set(tmp_path / "again", recipe=fake_recipe(), source=FakeSounds())
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    for name in files:
        assert (first / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_the_manifest_names_every_file_with_its_set_text_and_duration(built: tuple[dict[str, Any], Path]) -> None:
    recipe, out = built
    entries = manifest(out)
    assert len(entries) == len(recipe["items"])
    counts = {s: sum(e["set"] == s for e in entries) for s in sb.SETS}
    assert counts == {"clips": 6, "monologues": 2, "noisy": 3, "non_speech": 8}
    for entry in entries:
        assert set(entry) == {"file", "text", "set", "corpus", "duration_s"}
        assert entry["corpus"] == "asterisk_blind"
        assert entry["file"].startswith(entry["set"] + "/") and entry["file"].endswith(".wav")
        assert len(read_wav(out / entry["file"])) / SAMPLE_RATE == pytest.approx(entry["duration_s"], abs=0.001)
        if entry["set"] != "non_speech":
            assert entry["text"].strip()
    assert {p.name for p in out.iterdir()} == {"manifest.jsonl", *sb.SETS}  # nothing written elsewhere


def test_the_eligibility_rules_leave_out_fixtures_duplicates_short_and_non_speech() -> None:
    recipe = fake_recipe()
    used = {n for it in recipe["items"] for n in it.get("clips", [])} | set(recipe["babble_clips"])
    excluded = {n for names in recipe["excluded"].values() for n in names}
    assert {"digits/1", "beeperr", "tiny", "prompt-dup", "vm-used"} <= excluded
    assert not used & {"digits/1", "beeperr", "tiny", "prompt-dup", "vm-used"}
    speech = [n for it in recipe["items"] if it["set"] in ("clips", "monologues") for n in it["clips"]]
    assert len(speech) == len(set(speech))  # no prompt twice; babble prompts nowhere else
    assert not set(speech) & set(recipe["babble_clips"])


def test_monologues_are_20_to_40_s_of_4_to_10_other_prompts_with_breath_pauses(
    built: tuple[dict[str, Any], Path],
) -> None:
    recipe, out = built
    texts = FakeSounds().transcripts()
    clip_names = {it["clips"][0] for it in recipe["items"] if it["set"] == "clips"}
    monologues = [it for it in recipe["items"] if it["set"] == "monologues"]
    assert monologues
    for item in monologues:
        audio = read_wav(out / f"{item['id']}.wav")
        assert 20.0 <= len(audio) / SAMPLE_RATE <= 40.0
        assert 4 <= len(item["clips"]) <= 10
        assert not clip_names & set(item["clips"])
        assert len(item["gaps_s"]) == len(item["clips"]) - 1
        assert all(0.1 <= g <= 0.5 for g in item["gaps_s"])
        edge = round(0.5 * SAMPLE_RATE)
        assert item["edge_s"] == 0.5 and not audio[:edge].any() and not audio[-edge:].any()
        assert item["text"] == " ".join(sb.fixed_text(n, texts[n]) for n in item["clips"])


def test_mix_at_snr_puts_the_noise_at_the_target_under_the_active_speech() -> None:
    rng = np.random.default_rng(3)
    speech = join_with_gaps([fake_speech(3.0, rng), fake_speech(2.0, rng)], [0.4], 0.5)
    for target in (0.0, 10.0, 15.0, 20.0):
        noise = pink_noise(len(speech), rng)
        mixed = mix_at_snr(speech, noise, target)
        assert measured_snr_db(speech, mixed.astype(np.float64) - speech) == pytest.approx(target, abs=0.5)
    with pytest.raises(ValueError, match="samples"):
        mix_at_snr(speech, noise[:-1], 10.0)


def test_noisy_items_are_their_clean_item_in_lobby_noise_at_the_recipe_snr(built: tuple[dict[str, Any], Path]) -> None:
    recipe, out = built
    noisy = [it for it in recipe["items"] if it["set"] == "noisy"]
    combined = -10 * np.log10(10 ** (-sb.PINK_SNR_DB / 10) + 10 ** (-sb.BABBLE_SNR_DB / 10))  # 13.8 dB
    for item in noisy:
        clean = join_with_gaps([read_wav(out / f"{item['speech']}.wav")], [], item["edge_s"])
        mixed = read_wav(out / f"{item['id']}.wav")
        assert len(mixed) == len(clean)
        noise = mixed.astype(np.float64) - clean
        assert measured_snr_db(clean, noise) == pytest.approx(combined, abs=0.5)
        edge = round(item["edge_s"] * SAMPLE_RATE)
        assert np.sqrt(np.mean(mixed[:edge].astype(np.float64) ** 2)) > 1e-3  # noise before the speech
        assert item["text"] == next(it["text"] for it in recipe["items"] if it["id"] == item["speech"])


def best_match(piece: Audio, signal: Audio) -> float:
    """The highest normalised correlation of `piece` with any stretch of `signal` as long as it (by FFT)."""
    p, x = piece.astype(np.float64), signal.astype(np.float64)
    size = 1 << (len(x) + len(p)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(p, size)), size)[: len(x) - len(p) + 1]
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    window = energy[len(p) :] - energy[: len(x) - len(p) + 1]
    return float(np.max(corr / (np.linalg.norm(p) * np.sqrt(np.maximum(window, 1e-12)))))


def test_babble_is_the_sources_reversed_never_the_sources_themselves() -> None:
    rng = np.random.default_rng(5)
    sources = [fake_speech(2.0, rng) for _ in range(3)]
    one = reversed_babble(sources[:1], 8000, np.random.default_rng(1), voices=1)
    backwards = sources[0][::-1]
    assert best_match(one, np.concatenate([backwards, backwards])) > 0.999  # a stretch of the reversed source
    assert best_match(one, np.concatenate([sources[0], sources[0]])) < 0.9

    babble = reversed_babble(sources, 16000, np.random.default_rng(2), voices=4)
    assert np.sqrt(np.mean(babble.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    for source in sources:
        for start in range(0, len(babble) - 4000, 4000):
            assert best_match(babble[start : start + 4000], source) < 0.9  # no forward speech in it


def test_non_speech_items_have_empty_references_and_no_silent_file(built: tuple[dict[str, Any], Path]) -> None:
    _, out = built
    entries = [e for e in manifest(out) if e["set"] == "non_speech"]
    assert len(entries) == 8
    for entry in entries:
        assert entry["text"] == ""
        audio = read_wav(out / entry["file"])
        assert active_power(audio) > 0 and np.abs(audio).max() < 1.0
    floor = read_wav(out / "non_speech/noise_floor.wav").astype(np.float64)
    assert 20 * np.log10(np.sqrt(np.mean(floor**2))) == pytest.approx(sb.FLOOR_DBFS, abs=1.0)


def test_a_changed_prompt_or_recipe_is_refused(tmp_path: Path) -> None:
    recipe = fake_recipe()
    recipe["items"][0]["text"] = "autre chose"
    with pytest.raises(sb.RecipeError, match="content_sha256"):
        sb.build_blind_set(tmp_path / "a", recipe=recipe, source=FakeSounds())
    other = FakeSounds()
    name = recipe["items"][0]["clips"][0]
    other.add(name, other.transcripts()[name], fake_speech(2.0, np.random.default_rng(9)))
    with pytest.raises(sb.RecipeError, match="differs"):
        sb.build_blind_set(tmp_path / "b", recipe=fake_recipe(), source=other)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_missing_sounds_name_the_apt_packages(tmp_path: Path) -> None:
    with pytest.raises(
        sb.SourceMissing, match="apt-get install -y asterisk-core-sounds-fr asterisk-core-sounds-fr-g722"
    ):
        sb.DebianSounds(tmp_path / "none", tmp_path / "none.txt.gz", ffmpeg="").check()


# -- the committed recipe ---------------------------------------------------------------------------------


def fixture_manifests() -> list[Path]:
    return [m for m in sb.FIXTURE_MANIFESTS if m.is_file()]


def test_the_committed_recipe_is_the_frozen_one_and_uses_no_fixture_clip() -> None:
    recipe = sb.load_recipe()  # checks RECIPE_SHA256 and content_sha256
    assert hashlib.sha256(sb.RECIPE_PATH.read_bytes()).hexdigest() == sb.RECIPE_SHA256
    manifests = fixture_manifests()
    assert manifests, "no fixture manifest to compare with"
    fixtures = sb.fixture_names(manifests)
    assert len(fixtures) >= 10
    named = set(recipe["sources"]) | {n for it in recipe["items"] for n in it.get("clips", [])}
    named |= set(recipe["babble_clips"])
    assert not {sb.flat(n) for n in named} & {sb.flat(n) for n in fixtures}
    assert "queue-holdtime" not in named  # edge_models/samples/fr_sample.wav
    fixture_words = {" ".join(sb.words(t)) for t in fixtures.values()}
    assert not [it["id"] for it in recipe["items"] if " ".join(sb.words(it["text"])) in fixture_words]
    assert all(it["text"] == "" for it in recipe["items"] if it["set"] == "non_speech")


def installed() -> bool:
    try:
        sb.DebianSounds().check()
    except sb.SourceMissing:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(
    not installed(),
    reason="the Asterisk French sounds or ffmpeg are not installed "
    "(apt-get install -y asterisk-core-sounds-fr asterisk-core-sounds-fr-g722 ffmpeg)",
)
def test_the_real_set_builds_and_every_file_lasts_what_the_manifest_says(tmp_path: Path) -> None:
    path = sb.build_blind_set(tmp_path / "blind")
    entries = manifest(path.parent)
    for entry in entries:
        with wave.open(str(path.parent / entry["file"]), "rb") as wav:
            assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SAMPLE_RATE)
            assert wav.getnframes() / SAMPLE_RATE == pytest.approx(entry["duration_s"], abs=0.001)
    assert {s: sum(e["set"] == s for e in entries) for s in sb.SETS} == {
        "clips": 40,
        "monologues": 8,
        "noisy": 16,
        "non_speech": 8,
    }
    assert sum(e["duration_s"] for e in entries) < 10 * 60
