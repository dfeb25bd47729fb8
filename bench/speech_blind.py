"""The blind French speech set: real speech nobody tunes the speech pipeline on, rebuilt on demand.

What it is: prompts of one Canadian-French studio speaker (June Wallack, the Asterisk French core sounds,
Debian packages asterisk-core-sounds-fr-g722 for the 16-kHz audio and asterisk-core-sounds-fr for the
transcripts, CC BY-SA 3.0), none of which the project's tests or benchmarks use, in four sets:

- ``clips``: single prompts of 1.5–12 s;
- ``monologues``: 4–10 other prompts joined with breath pauses of 0.1–0.5 s, 20–40 s each;
- ``noisy``: some clips and monologues again, in lobby noise (pink noise at 15 dB SNR plus reversed
  babble at 20 dB SNR, see `bench.speech_mix`), with 0.5 s of that noise before and after;
- ``non_speech``: noise floor, pink noise, babble, beeps, clicks and knocks, lobby noise, all with an
  empty reference (a recogniser should return nothing).

How it is built: `bench/data/speech_blind.json`, the *recipe*, names every source prompt (with the
SHA-256 of its file in the Debian package), every gap, seed, level and SNR, and the reference text of
every item. It is frozen: `load_recipe` refuses a file whose SHA-256 is not `RECIPE_SHA256`. The audio is
never committed; `build_blind_set` (or ``python -m bench.speech_blind OUT_DIR``) decodes the installed
G.722 files with Debian's ``ffmpeg`` (a subprocess writing 16-kHz mono float32 to a pipe; no temporary
files) and writes 16-bit PCM WAV files and ``manifest.jsonl`` into the directory it is given, nowhere else.
The same recipe and packages give the same bytes.

The references come from the package's human transcripts only, never from a recogniser's output; the
spelling typos fixed in them are listed in the recipe (``fixes``), as are the prompts left out and why
(``excluded``). `draft_recipe` is how the committed recipe was drafted; drafting again would make another
set, so the benchmark never does.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import re
import shutil
import statistics
import subprocess
import sys
import wave
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bench.speech_mix import (
    SAMPLE_RATE,
    Audio,
    active_dbfs,
    at_dbfs,
    impulses,
    join_with_gaps,
    pink_noise,
    reversed_babble,
    scale_to_snr,
    tone,
)
from edge_models.wer import normalize

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
RECIPE_PATH = Path(__file__).resolve().parent / "data" / "speech_blind.json"
RECIPE_SHA256 = "6abc7bf96bf29eb7b64647a00e57bb062caa1e01c07a0b22a42404098919934c"
CORPUS = "asterisk_blind"
SETS = ("clips", "monologues", "noisy", "non_speech")

SOUNDS_DIR = Path("/usr/share/asterisk/sounds/fr_CA_f_June")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-fr/core-sounds-fr.txt.gz")
APT_PACKAGES = ("asterisk-core-sounds-fr", "asterisk-core-sounds-fr-g722", "ffmpeg")
INSTALL_HINT = "install them with: apt-get install -y " + " ".join(APT_PACKAGES)

FIXTURE_MANIFESTS = (
    REPO.parent / "shared" / "fixtures" / "fr_speech" / "manifest.jsonl",
    REPO / "tests" / "fixtures" / "fr_speech" / "manifest.jsonl",
)
FIXTURE_PREFIX = "asterisk_june_"
ALSO_USED = {"queue-holdtime": "edge_models/samples/fr_sample.wav"}

# -- eligibility (what `draft_recipe` applied to the package's transcripts) ---------------------------
MIN_S = 1.2  # shorter entries are single words
CLIP_MIN_S, CLIP_MAX_S = 1.5, 12.0  # the clips set; longer prompts are menus read as lists
PART_MAX_S = 7.0  # monologue parts: sentences between breath pauses
MIN_WORDS = 3  # fewer (after the WER normalisation): lone digits, letters or words
SKIPPED_DIRS = ("digits/", "letters/", "phonetic/", "silence/")
SKIPPED_PREFIXES = ("spy-",)  # channel technology names read as letters ("M I S D N", "H 3 23")
QUOTES = re.compile(r"[“”\"]")  # stray quotation marks some transcript lines carry
JUDGED_OUT = {
    "vm-record-prepend": "its transcript line swallowed the next entry ('...dièse.vm-review-nonurgent: ...')",
    "vm-mismatch": "two sentences, 15 words in 2.97 s of audio (8.7 syllables/s against a median of 5.5 for "
    "the pool): the recording most likely stops after the first sentence",
}
# Plain spelling typos (accents, homophone endings, doubled letters), corrected by reading the text only.
FIXES: dict[str, list[tuple[str, str]]] = {
    "agent-incorrect": [("Veuillez recomposez", "Veuillez recomposer")],
    "conf-getconfno": [("Veuillez composez", "Veuillez composer")],
    "conf-kicked": [("avez étez", "avez été")],
    "conf-locked": [("verouillée", "verrouillée")],
    "conf-waitforleader": [("l'arrivé du", "l'arrivée du")],
    "confbridge-begin-glorious-a": [("l'arrivé du", "l'arrivée du")],
    "confbridge-begin-glorious-b": [("l'arrivé du", "l'arrivée du")],
    "confbridge-begin-glorious-c": [("l'arrivé du", "l'arrivée du")],
    "confbridge-lock-extended": [
        ("vérouiller", "verrouiller"),
        ("verouillée", "verrouillée"),
        ("seul les responsables", "seuls les responsables"),
    ],
    "confbridge-lock-in": [("vérouiller", "verrouiller")],
    "confbridge-lock-no-join": [("verouillée", "verrouillée")],
    "confbridge-locked": [("vérouillée", "verrouillée")],
    "confbridge-unlocked": [("dévérouillée", "déverrouillée")],
    "demo-nogo": [("démontration", "démonstration"), ("des information de", "des informations de")],
    "dictate/truncating_audio": [("Mise a jour", "Mise à jour")],
    "dir-firstlast": [("premieres", "premières")],
    "enter-num-blacklist": [("Veuillez entrez", "Veuillez entrer")],
    "followme/pls-hold-while-try": [("Veuillez demeurez", "Veuillez demeurer"), ("j'essai de", "j'essaie de")],
    "please-try-call-later": [("reessayer", "réessayer")],
    "pm-invalid-option": [("essayer a nouveau", "essayer à nouveau")],
    "privacy-to-blacklist-last-caller": [("etait", "était")],
    "queue-periodic-announce": [
        ("presentement occupes", "présentement occupés"),
        ("Veuillez demeurez", "Veuillez demeurer"),
    ],
    "queue-thereare": [("l'appellant", "l'appelant")],
    "simul-call-limit-reached": [("simultane a ete", "simultané a été")],
    "sorry": [("Nous somme desolé", "Nous sommes désolés")],
    "sorry-youre-having-problems": [("Desole", "Désolé"), ("problemes", "problèmes")],
    "speed-dial-empty": [("abregée", "abrégée"), ("avez accédez", "avez accédé")],
    "telephone-number": [("Numero de telephone", "Numéro de téléphone")],
    "to-call-this-number": [("numero", "numéro")],
    "to-rerecord-it": [("re-enregistrer", "ré-enregistrer")],
    "tt-monkeysintro": [("ont étés", "ont été")],
    "unidentified-no-callback": [("etre rappler", "être rappelé")],
    "vm-advopts": [("options avancés", "options avancées")],
    "vm-dialout": [("j'établi la", "j'établis la")],
    "vm-incorrect-mailbox": [("boite vocale", "boîte vocale")],
    "vm-intro": [("Veuillez laissez", "Veuillez laisser")],
    "vm-login": [("boite vocale", "boîte vocale")],
    "vm-pls-try-again": [("Veuillez essayez", "Veuillez essayer")],
    "vm-rec-name": [("et appuyer sur", "et appuyez sur")],
    "vm-rec-unv": [("n'etes", "n'êtes")],
    "vm-tmpexists": [("d'acceuil", "d'accueil")],
    "vm-tocancelmsg": [("appuyer sur", "appuyez sur")],
    "vm-toreply": [("appuyer sur", "appuyez sur")],
    "vm-unknown-caller": [("appellant", "appelant")],
    "you-entered": [("avez entrer", "avez entré")],
}
BEEP_NAMES = ("beep", "confbridge-join", "ascending-2tone", "descending-2tone")  # package sounds, no speech

# -- the mixture's parameters ---------------------------------------------------------------------------
EDGE_S = 0.5
GAP_S = (0.1, 0.5)
MONOLOGUE_S = (20.0, 40.0)
MONOLOGUE_TARGET_S = (21.0, 33.0)  # drawn per monologue, keeps the set under 10 minutes
MONOLOGUE_PARTS = (4, 10)
PINK_SNR_DB = 15.0
BABBLE_SNR_DB = 20.0
BABBLE_VOICES = 4
FLOOR_DBFS = -60.0


class RecipeError(RuntimeError):
    """The recipe is not the frozen one, or the installed sounds are not the ones it was drafted from."""


class SourceMissing(RuntimeError):
    """The Debian sounds, their transcripts or the decoder are not installed."""


class ClipSource(Protocol):
    """Where the prompts come from: the installed Debian packages, or a fake in tests."""

    def transcripts(self) -> dict[str, str]:
        """Prompt name (``vm-intro``, ``dictate/record_help``) to the transcript line's text."""
        ...

    def exists(self, name: str) -> bool:
        """Whether the prompt's audio is there."""
        ...

    def audio(self, name: str) -> Audio:
        """The prompt, 16-kHz mono float32."""
        ...

    def digest(self, name: str) -> str:
        """SHA-256 of the prompt's stored file."""
        ...


class DebianSounds:
    """The installed asterisk-core-sounds-fr-g722 prompts, decoded by Debian's ``ffmpeg`` through a pipe."""

    def __init__(
        self, sounds_dir: Path = SOUNDS_DIR, transcripts_file: Path = TRANSCRIPTS, ffmpeg: str | None = None
    ) -> None:
        self.sounds_dir = sounds_dir
        self.transcripts_file = transcripts_file
        self.ffmpeg = ffmpeg or shutil.which("ffmpeg") or ""
        self._decoded: dict[str, Audio] = {}

    def check(self) -> DebianSounds:
        """Self, or `SourceMissing` naming the apt packages to install."""
        missing = []
        if not self.sounds_dir.is_dir() or not any(self.sounds_dir.glob("*.g722")):
            missing.append(f"the G.722 prompts ({self.sounds_dir}, package asterisk-core-sounds-fr-g722)")
        if not self.transcripts_file.is_file():
            missing.append(f"their transcripts ({self.transcripts_file}, package asterisk-core-sounds-fr)")
        if not self.ffmpeg:
            missing.append("the G.722 decoder (ffmpeg, package ffmpeg)")
        if missing:
            raise SourceMissing("missing " + "; ".join(missing) + "; " + INSTALL_HINT)
        return self

    def path(self, name: str) -> Path:
        return self.sounds_dir / f"{name}.g722"

    def transcripts(self) -> dict[str, str]:
        return parse_transcripts(gzip.decompress(self.transcripts_file.read_bytes()).decode("utf-8"))

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def audio(self, name: str) -> Audio:
        if name not in self._decoded:
            self._decoded[name] = decode_g722(self.path(name), self.ffmpeg)
        return self._decoded[name]

    def digest(self, name: str) -> str:
        return hashlib.sha256(self.path(name).read_bytes()).hexdigest()


def decode_g722(path: Path, ffmpeg: str = "ffmpeg") -> Audio:
    """A raw G.722 file as 16-kHz mono float32, decoded by ffmpeg into a pipe."""
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "g722", "-i", str(path)]
    command += ["-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-"]
    try:
        done = subprocess.run(command, capture_output=True, check=True, timeout=60)
    except FileNotFoundError as error:
        raise SourceMissing(f"cannot run {ffmpeg}; {INSTALL_HINT}") from error
    except subprocess.CalledProcessError as error:
        raise SourceMissing(f"ffmpeg could not decode {path}: {error.stderr.decode(errors='replace')}") from error
    return np.frombuffer(done.stdout, dtype="<f4").astype(np.float32)


def parse_transcripts(text: str) -> dict[str, str]:
    """``name: text`` lines (``;`` comments and blank lines skipped)."""
    entries = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(";") or ":" not in line:
            continue
        name, said = line.split(":", 1)
        entries[name.strip()] = said.strip()
    return entries


# -- the recipe -------------------------------------------------------------------------------------------


def fixture_names(manifests: Iterable[Path] = FIXTURE_MANIFESTS) -> dict[str, str]:
    """Prompt names (with ``/`` as in the package) the project's fixtures already use, to their fixture text."""
    used: dict[str, str] = {}
    for manifest in manifests:
        if not manifest.is_file():
            continue
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            stem = Path(entry["file"]).stem
            if stem.startswith(FIXTURE_PREFIX):
                used[stem.removeprefix(FIXTURE_PREFIX)] = entry["text"]
    return used


def flat(name: str) -> str:
    """A prompt name as the fixtures spell it (``dictate/record_help`` → ``dictate_record_help``)."""
    return name.replace("/", "_")


def words(text: str) -> list[str]:
    """The words the WER counts."""
    return normalize(text)


def fixed_text(name: str, text: str) -> str:
    """The transcript with its recorded typo fixes and without stray quotes or doubled spaces."""
    for wrong, right in FIXES.get(name, []):
        if wrong not in text:
            raise RecipeError(f"{name}: the fix {wrong!r} → {right!r} no longer applies to {text!r}")
        text = text.replace(wrong, right)
    return " ".join(QUOTES.sub("", text).split())


@dataclass(frozen=True)
class Sizes:
    clips: int = 40
    monologues: int = 8
    noisy_clips: int = 12
    noisy_monologues: int = 4
    babble_clips: int = 10


def eligible_pool(
    source: ClipSource, used: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, float], dict[str, list[str]], list[dict[str, str]]]:
    """(name → fixed text, name → seconds, reason → excluded names, fixes applied) over the whole package."""
    excluded: dict[str, list[str]] = {}
    fixes: list[dict[str, str]] = []

    def out(reason: str, name: str) -> None:
        excluded.setdefault(reason, []).append(name)

    used_flat = {flat(n) for n in used} | {flat(n) for n in ALSO_USED}
    used_texts = [" ".join(words(t)) for t in used.values()]
    texts: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for name, raw in sorted(source.transcripts().items()):
        if flat(name) in used_flat:
            out("already used by the project's fixtures or sample", name)
        elif not source.exists(name):
            out("no audio file in the package", name)
        elif name.startswith(SKIPPED_DIRS) or name.startswith(SKIPPED_PREFIXES):
            out("digit, letter, alphabet or channel-name prompt", name)
        elif not raw.strip():
            out("empty transcript", name)
        elif re.search(r"[\[(]", raw):
            out("non-speech or annotated transcript ([tones], (ahooga), (beep), (emphase)…)", name)
        elif name in JUDGED_OUT:
            out(JUDGED_OUT[name], name)
        else:
            text = fixed_text(name, raw)
            for wrong, right in FIXES.get(name, []):
                fixes.append({"clip": name, "from": wrong, "to": right})
            duration = len(source.audio(name)) / SAMPLE_RATE
            if duration < MIN_S:
                out(f"shorter than {MIN_S} s", name)
            elif duration > CLIP_MAX_S:
                out(f"longer than {CLIP_MAX_S} s (spoken menus)", name)
            elif len(words(text)) < MIN_WORDS:
                out(f"fewer than {MIN_WORDS} words", name)
            else:
                texts[name] = text
                seconds[name] = duration
    # the same sentence as a fixture, a fixture sentence inside it, or it inside a fixture sentence
    for name in sorted(texts):
        mine = " ".join(words(texts[name]))
        if any(_inside(f, mine) or _inside(mine, f) for f in used_texts):
            out("same words as a fixture clip, or overlapping one", name)
            del texts[name], seconds[name]
    # obvious duplicates: the same words (keep the first name in sorted order)
    seen: dict[str, str] = {}
    for name in sorted(texts):
        key = " ".join(words(texts[name]))
        if key in seen:
            out(f"duplicate of {seen[key]}", name)
            del texts[name], seconds[name]
        else:
            seen[key] = name
    fixes = [fix for fix in fixes if fix["clip"] in texts]
    return texts, seconds, {k: sorted(v) for k, v in sorted(excluded.items())}, fixes


def _inside(part: str, whole: str) -> bool:
    """Whether the words `part` occur, in a row, in the words `whole`."""
    return f" {part} " in f" {whole} "


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _n(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def draft_recipe(
    source: ClipSource,
    used: Mapping[str, str] | None = None,
    *,
    seed: int = 20261123,
    sizes: Sizes = Sizes(),
    version: int = 1,
) -> dict[str, Any]:
    """Choose the items from the eligible prompts with a seeded generator; the result is what gets frozen."""
    used = fixture_names() if used is None else used
    rng = np.random.default_rng(seed)
    texts, seconds, excluded, fixes = eligible_pool(source, used)
    order = [str(n) for n in rng.permutation(sorted(texts))]
    logger.info("%d eligible prompts", len(order))

    clip_names = [n for n in order if CLIP_MIN_S <= seconds[n] <= CLIP_MAX_S][: sizes.clips]
    left = [n for n in order if n not in clip_names]
    babble_names = left[: sizes.babble_clips]
    left = [n for n in left if n not in babble_names and seconds[n] <= PART_MAX_S]
    if len(clip_names) < sizes.clips or len(babble_names) < sizes.babble_clips:
        raise RecipeError(f"only {len(order)} eligible prompts, not enough for {sizes}")

    items: list[dict[str, Any]] = []
    for i, name in enumerate(clip_names, 1):
        items.append(
            {"id": f"clips/clip_{i:02d}", "set": "clips", "clips": [name], "samples": len(source.audio(name))}
            | {"text": texts[name]}
        )
    for i in range(1, sizes.monologues + 1):
        target = float(rng.uniform(*MONOLOGUE_TARGET_S))
        parts: list[str] = []
        gaps: list[float] = []
        total = 2 * EDGE_S
        for name in list(left):
            gap = round(float(rng.uniform(*GAP_S)), 3) if parts else 0.0
            if total + gap + seconds[name] > MONOLOGUE_S[1]:
                continue
            if parts:
                gaps.append(gap)
            parts.append(name)
            left.remove(name)
            total += gap + seconds[name]
            if (total >= target and len(parts) >= MONOLOGUE_PARTS[0]) or len(parts) == MONOLOGUE_PARTS[1]:
                break
        if not (MONOLOGUE_S[0] <= total <= MONOLOGUE_S[1] and MONOLOGUE_PARTS[0] <= len(parts)):
            raise RecipeError(f"monologue {i}: {len(parts)} prompts, {total:.1f} s; not enough eligible prompts")
        samples = sum(len(source.audio(n)) for n in parts) + sum(_n(g) for g in gaps) + 2 * _n(EDGE_S)
        items.append(
            {"id": f"monologues/monologue_{i:02d}", "set": "monologues", "clips": parts, "gaps_s": gaps}
            | {"edge_s": EDGE_S, "samples": samples, "text": " ".join(texts[n] for n in parts)}
        )

    speech_level = round(statistics.median(active_dbfs(source.audio(n)) for n in clip_names), 2)
    pink_dbfs = round(speech_level - PINK_SNR_DB, 2)
    babble_dbfs = round(speech_level - BABBLE_SNR_DB, 2)
    by_set = {s: [it for it in items if it["set"] == s] for s in ("clips", "monologues")}
    noisy_of = [("clips", sizes.noisy_clips), ("monologues", sizes.noisy_monologues)]
    for base_set, count in noisy_of:
        pool = by_set[base_set]
        for k in sorted(int(x) for x in rng.choice(len(pool), size=count, replace=False)):
            base = pool[k]
            items.append(
                {"id": f"noisy/{base['id'].split('/')[1]}", "set": "noisy", "speech": base["id"]}
                | {"edge_s": EDGE_S, "pink_snr_db": PINK_SNR_DB, "babble_snr_db": BABBLE_SNR_DB}
                | {"babble_voices": BABBLE_VOICES, "seed": _seed(rng)}
                | {"samples": base["samples"] + 2 * _n(EDGE_S), "text": base["text"]}
            )

    beeps = [n for n in BEEP_NAMES if source.exists(n)]
    floor = {"kind": "floor", "dbfs": FLOOR_DBFS}
    pink = {"kind": "pink", "dbfs": pink_dbfs}
    babble = {"kind": "babble", "dbfs": babble_dbfs, "voices": BABBLE_VOICES}

    def knocks(duration: float, count: int) -> dict[str, Any]:
        times = sorted(round(float(t), 3) for t in rng.uniform(0.3, duration - 0.4, size=count))
        return {"kind": "impulses", "at_s": times, "peak": 0.3}

    beep_at = [round(0.5 + 1.0 * i, 3) for i in range(len(beeps))]
    non_speech: list[tuple[str, float, list[dict[str, Any]]]] = [
        ("noise_floor", 3.0, [floor]),
        ("pink_noise", 4.0, [floor, pink]),
        ("babble", 4.0, [floor, babble]),
        ("package_beeps", 1.0 + len(beeps), [floor, {"kind": "clips", "clips": beeps, "at_s": beep_at}]),
        (
            "tones",
            3.0,
            [
                floor,
                {
                    "kind": "tones",
                    "tones": [[880.0, 0.15, 0.5, -20.0], [880.0, 0.15, 0.8, -20.0], [1320.0, 0.3, 1.8, -20.0]],
                },
            ],
        ),
        ("clicks_knocks", 4.0, [floor, knocks(4.0, 7)]),
        ("lobby", 5.0, [floor, pink, babble]),
        ("lobby_knocks", 5.0, [floor, pink, babble, knocks(5.0, 4)]),
    ]
    for name, duration, layers in non_speech:
        items.append(
            {"id": f"non_speech/{name}", "set": "non_speech", "duration_s": duration, "layers": layers}
            | {"seed": _seed(rng), "samples": _n(duration), "text": ""}
        )

    raw = source.transcripts()
    sound_names = sorted({n for it in items for n in it.get("clips", [])} | set(babble_names) | set(beeps))
    sources = {n: {"sha256": source.digest(n), "package_text": raw.get(n, "")} for n in sound_names}
    levels = {"speech_active_dbfs": speech_level, "pink_dbfs": pink_dbfs, "babble_dbfs": babble_dbfs}
    levels |= {"floor_dbfs": FLOOR_DBFS}
    recipe: dict[str, Any] = {
        "name": CORPUS,
        "version": version,
        "content_sha256": "",
        "about": (
            "Frozen recipe of the blind French speech set (bench/speech_blind.py). Never tune on it; "
            "never edit it: a new set is a new version with a new recipe."
        ),
        "source": {
            "packages": list(APT_PACKAGES[:2]),
            "sounds_dir": str(SOUNDS_DIR),
            "transcripts": str(TRANSCRIPTS),
            "decoder": "ffmpeg -f g722 (Debian package ffmpeg), to 16 kHz mono float32",
            "speaker": "June Wallack (fr-CA), Asterisk French core sounds, Digium",
            "licence": "CC BY-SA 3.0",
        },
        "seed": seed,
        "rules": {
            "min_s": MIN_S,
            "clip_s": [CLIP_MIN_S, CLIP_MAX_S],
            "monologue_part_max_s": PART_MAX_S,
            "min_words": MIN_WORDS,
            "monologue_s": list(MONOLOGUE_S),
            "gap_s": list(GAP_S),
            "edge_s": EDGE_S,
            "snr": "speech power over its active 20-ms frames (within 30 dB of the loudest) / noise power",
        },
        "fixes": [fix for fix in fixes if any(fix["clip"] in it.get("clips", []) for it in items)],
        "excluded": excluded,
        "levels": levels,
        "babble_clips": babble_names,
        "sources": sources,
        "items": items,
    }
    recipe["content_sha256"] = content_sha256(recipe)
    return recipe


def content_sha256(recipe: Mapping[str, Any]) -> str:
    """SHA-256 of what the audio depends on (levels, sources, babble clips, items), canonical JSON."""
    keys = ("levels", "babble_clips", "sources", "items")
    canonical = json.dumps({k: recipe[k] for k in keys}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def recipe_json(recipe: Mapping[str, Any]) -> str:
    return json.dumps(recipe, ensure_ascii=False, indent=1) + "\n"


def load_recipe(path: Path = RECIPE_PATH, expected_sha256: str | None = RECIPE_SHA256) -> dict[str, Any]:
    """The frozen recipe; `RecipeError` if its file's SHA-256 or its content hash is not the recorded one."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise RecipeError(f"{path} has SHA-256 {digest}, the frozen recipe {expected_sha256}")
    recipe: dict[str, Any] = json.loads(data)
    if content_sha256(recipe) != recipe["content_sha256"]:
        raise RecipeError(f"{path}: content_sha256 does not match its items")
    return recipe


# -- building ---------------------------------------------------------------------------------------------


def to_pcm16(audio: Audio) -> bytes:
    """Float samples to 16-bit little-endian PCM (×32768, rounded, clipped), so decoded PCM round-trips."""
    scaled = np.round(np.asarray(audio, dtype=np.float64) * 32768.0)
    clipped = int(np.count_nonzero((scaled > 32767) | (scaled < -32768)))
    if clipped:
        logger.warning("%d samples clipped", clipped)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


def write_wav(path: Path, pcm: bytes) -> None:
    """16-bit mono PCM bytes (`to_pcm16`) as a 16-kHz WAV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)


def verify_sources(recipe: Mapping[str, Any], source: ClipSource) -> None:
    """Every prompt the recipe names is there with the recorded file hash; single-clip references still
    follow from the package's transcript and the recorded fixes."""
    for name, expected in recipe["sources"].items():
        if not source.exists(name):
            raise RecipeError(f"prompt {name} is missing from the installed sounds")
        if source.digest(name) != expected["sha256"]:
            raise RecipeError(f"prompt {name} differs from the one the recipe was drafted from")
    raw = source.transcripts()
    for item in recipe["items"]:
        if item["set"] == "clips":
            (name,) = item["clips"]
            if fixed_text(name, raw.get(name, "")) != item["text"]:
                raise RecipeError(f"{item['id']}: the package's transcript of {name} changed")


def _render_layers(item: Mapping[str, Any], clip: Callable[[str], Audio], babble: Sequence[Audio]) -> Audio:
    rng = np.random.default_rng(item["seed"])
    n = int(item["samples"])
    out = np.zeros(n)
    for layer in item["layers"]:
        kind = layer["kind"]
        if kind == "floor":
            out += at_dbfs(rng.standard_normal(n), layer["dbfs"])
        elif kind == "pink":
            out += at_dbfs(pink_noise(n, rng), layer["dbfs"])
        elif kind == "babble":
            out += at_dbfs(reversed_babble(babble, n, rng, voices=layer["voices"]), layer["dbfs"])
        elif kind == "clips":
            for name, at in zip(layer["clips"], layer["at_s"], strict=True):
                sound = clip(name)[: max(n - _n(at), 0)]
                out[_n(at) : _n(at) + len(sound)] += sound
        elif kind == "tones":
            for freq, dur, at, dbfs in layer["tones"]:
                beep = tone(freq, dur, level_dbfs=dbfs)[: max(n - _n(at), 0)]
                out[_n(at) : _n(at) + len(beep)] += beep
        elif kind == "impulses":
            out += impulses(n, layer["at_s"], rng, peak=layer["peak"])
        else:
            raise RecipeError(f"{item['id']}: unknown layer {kind!r}")
    return out.astype(np.float32)


def render(
    item: Mapping[str, Any], clip: Callable[[str], Audio], babble: Sequence[Audio], built: Mapping[str, Audio]
) -> Audio:
    """One item's audio, from the prompts (`clip`), the babble prompts and the items already built."""
    kind = item["set"]
    if kind == "clips":
        return clip(item["clips"][0])
    if kind == "monologues":
        return join_with_gaps([clip(n) for n in item["clips"]], item["gaps_s"], item["edge_s"])
    if kind == "noisy":
        speech = join_with_gaps([built[item["speech"]]], [], item["edge_s"])
        rng = np.random.default_rng(item["seed"])
        pink = pink_noise(len(speech), rng)
        voices = reversed_babble(babble, len(speech), rng, voices=item["babble_voices"])
        noise = scale_to_snr(speech, pink, item["pink_snr_db"]).astype(np.float64)
        noise += scale_to_snr(speech, voices, item["babble_snr_db"])
        return (speech + noise).astype(np.float32)
    if kind == "non_speech":
        return _render_layers(item, clip, babble)
    raise RecipeError(f"{item['id']}: unknown set {kind!r}")


def render_items(recipe: Mapping[str, Any], source: ClipSource) -> Iterator[tuple[dict[str, Any], Audio]]:
    """Each item of the recipe with its audio, in the recipe's order (noisy items reuse built ones)."""
    babble = [source.audio(n) for n in recipe["babble_clips"]]
    built: dict[str, Audio] = {}
    for item in recipe["items"]:
        audio = render(item, source.audio, babble, built)
        if len(audio) != item["samples"]:
            raise RecipeError(f"{item['id']}: {len(audio)} samples, the recipe says {item['samples']}")
        built[item["id"]] = audio
        yield item, audio


def seal(recipe: dict[str, Any], source: ClipSource) -> dict[str, Any]:
    """Record each item's PCM SHA-256 in a drafted recipe (and its content hash), so builds can be checked."""
    for item, audio in render_items(recipe, source):
        item["pcm_sha256"] = hashlib.sha256(to_pcm16(audio)).hexdigest()
    recipe["content_sha256"] = content_sha256(recipe)
    return recipe


def build_blind_set(
    out_dir: Path,
    *,
    recipe: Mapping[str, Any] | None = None,
    source: ClipSource | None = None,
    allow_mismatch: bool = False,
) -> Path:
    """Write the blind set's WAV files (16-bit PCM, 16 kHz mono) and manifest.jsonl into `out_dir`.

    By default the frozen recipe and the installed Debian sounds (`SourceMissing` names the apt
    packages when they are not there). Every item's PCM must hash to the recipe's ``pcm_sha256``
    (`RecipeError` otherwise, unless `allow_mismatch`: then a warning). Returns the manifest's path.
    """
    recipe = load_recipe() if recipe is None else recipe
    if content_sha256(recipe) != recipe["content_sha256"]:
        raise RecipeError("the recipe's content_sha256 does not match its items")
    source = DebianSounds().check() if source is None else source
    verify_sources(recipe, source)
    lines = []
    for item, audio in render_items(recipe, source):
        pcm = to_pcm16(audio)
        expected = item.get("pcm_sha256")
        if expected and hashlib.sha256(pcm).hexdigest() != expected:
            message = f"{item['id']}: the audio differs from the frozen set's"
            if not allow_mismatch:
                raise RecipeError(message + " (numpy or the packages changed?)")
            logger.warning(message)
        relative = f"{item['id']}.wav"
        write_wav(out_dir / relative, pcm)
        entry = {"file": relative, "text": item["text"], "set": item["set"], "corpus": CORPUS}
        entry["duration_s"] = round(len(audio) / SAMPLE_RATE, 3)
        lines.append(json.dumps(entry, ensure_ascii=False))
    manifest = out_dir / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("blind speech set: %d items in %s", len(lines), out_dir)
    return manifest


def summary(manifest: Path) -> list[str]:
    """One line per set: items, seconds, reference words (as the WER counts them)."""
    entries = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = []
    for name in SETS:
        mine = [e for e in entries if e["set"] == name]
        seconds = sum(e["duration_s"] for e in mine)
        count = sum(len(words(e["text"])) for e in mine)
        lines.append(f"{name:<11} {len(mine):3d} items {seconds:7.1f} s {count:5d} words")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.speech_blind", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("out_dir", type=Path, help="where to write the WAV files and manifest.jsonl")
    parser.add_argument(
        "--draft-recipe",
        action="store_true",
        help="maintainers only: draft a new recipe into OUT_DIR/speech_blind.json instead (a new set)",
    )
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="write the set even where its audio differs from the frozen hashes (with a warning)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.draft_recipe:
            sounds = DebianSounds().check()
            recipe = seal(draft_recipe(sounds), sounds)
            args.out_dir.mkdir(parents=True, exist_ok=True)
            target = args.out_dir / "speech_blind.json"
            target.write_text(recipe_json(recipe), encoding="utf-8")
            print(f"{target} sha256 {hashlib.sha256(target.read_bytes()).hexdigest()}")
            return 0
        manifest = build_blind_set(args.out_dir, allow_mismatch=args.allow_mismatch)
    except (SourceMissing, RecipeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(summary(manifest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
