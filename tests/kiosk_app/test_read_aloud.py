"""Read aloud: real espeak-ng renders every language; process handling checked with stand-in programs."""

from __future__ import annotations

import logging
import math
import shutil
import stat
import time
from array import array
from pathlib import Path

import pytest

from kiosk_app.read_aloud import VOICES, ReadAloud, voice_for

PROMPTS = {
    "fr": "Touchez le visage qui correspond à votre avis.",
    "en": "Touch the face that matches how you feel.",
    "es": "Toque la cara que corresponde a su opinión.",
    "de": "Berühren Sie das Gesicht, das Ihrer Meinung entspricht.",
    "it": "Tocchi il viso che corrisponde alla sua opinione.",
    "pt": "Toque no rosto que corresponde à sua opinião.",
    "nl": "Raak het gezicht aan dat bij uw mening past.",
    "ar": "المس الوجه الذي يناسب رأيك",
}


def pcm_samples(wav: bytes) -> array[int]:
    """16-bit samples after the `data` chunk header (espeak-ng's --stdout header carries no real length)."""
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert int.from_bytes(wav[34:36], "little") == 16  # bits per sample
    start = wav.index(b"data") + 8
    body = wav[start : start + (len(wav) - start) // 2 * 2]
    return array("h", body)


def rms(samples: array[int]) -> float:
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


def wait_until(condition, timeout_s: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def stand_in(tmp_path: Path, body: str) -> Path:
    """An executable shell script playing espeak-ng's part."""
    path = tmp_path / "fake-espeak"
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture(scope="module")
def espeak() -> ReadAloud:
    reader = ReadAloud()
    assert reader.available(), "espeak-ng is a system package of this project (scripts/setup.sh installs it)"
    return reader


def test_every_mapped_language_has_a_prompt_here() -> None:
    assert set(PROMPTS) == set(VOICES)


@pytest.mark.parametrize("language", sorted(PROMPTS))
def test_real_espeak_renders_audible_speech_in_each_language(espeak: ReadAloud, language: str) -> None:
    wav = espeak.render_wav(PROMPTS[language], language)
    rate = int.from_bytes(wav[24:28], "little")
    samples = pcm_samples(wav)
    duration_s = len(samples) / rate
    assert 0.5 < duration_s < 20
    assert rms(samples) > 300  # silence renders at 0; speech at 100 % amplitude is in the thousands
    assert max(abs(s) for s in samples) > 3000


def test_slower_rate_makes_longer_speech(espeak: ReadAloud) -> None:
    slow = pcm_samples(ReadAloud(rate_wpm=120).render_wav(PROMPTS["fr"], "fr"))
    fast = pcm_samples(ReadAloud(rate_wpm=260).render_wav(PROMPTS["fr"], "fr"))
    assert len(slow) > len(fast) * 1.4


def test_unknown_language_reads_french(espeak: ReadAloud) -> None:
    assert voice_for("tlh") == voice_for("fr") == "fr-fr"
    assert voice_for("EN_us") == voice_for("en") and voice_for("es-419") == "es"
    text = PROMPTS["fr"]
    assert espeak.render_wav(text, "tlh") == espeak.render_wav(text, "fr")
    assert espeak.render_wav(text, "tlh") != espeak.render_wav(text, "en")


def test_text_reaches_the_program_verbatim_on_stdin_never_through_a_shell(tmp_path: Path) -> None:
    program = stand_in(tmp_path, 'printf "%s\\n" "$@" > "$0.args"\ncat > "$0.heard"')
    reader = ReadAloud(program, rate_wpm=140)
    hostile = '-w /tmp/x "; touch pwned; $(touch pwned2) `touch pwned3`'
    reader.say(hostile, "es")
    heard = Path(f"{program}.heard")
    assert wait_until(lambda: heard.exists() and not reader.speaking())
    assert heard.read_text(encoding="utf-8") == hostile
    args = Path(f"{program}.args").read_text(encoding="utf-8").split()
    assert args == ["-v", "es", "-s", "140", "--stdin"]
    assert not list(Path.cwd().glob("pwned*")) and not list(tmp_path.glob("pwned*"))


def test_a_new_say_stops_the_previous_utterance(tmp_path: Path) -> None:
    program = stand_in(tmp_path, 'cat > /dev/null\necho $$ >> "$0.pids"\nexec sleep 60')
    reader = ReadAloud(program)
    reader.say("premier", "fr")
    first = reader._process
    assert first is not None
    assert wait_until(lambda: Path(f"{program}.pids").exists())
    reader.say("second", "fr")
    second = reader._process
    assert first.poll() is not None and first.returncode < 0  # terminated by a signal, not finished
    assert second is not None and second is not first and second.poll() is None
    assert reader.speaking()
    reader.stop()
    assert second.poll() is not None and not reader.speaking()
    reader.stop()  # stopping twice is harmless


def test_say_returns_while_the_program_still_runs(tmp_path: Path) -> None:
    program = stand_in(tmp_path, "cat > /dev/null\nexec sleep 60")
    reader = ReadAloud(program)
    try:
        reader.say("bonjour", "fr")
        assert reader.speaking()
    finally:
        reader.stop()


def test_missing_program_is_a_state_logged_once_without_the_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reader = ReadAloud(tmp_path / "no-such-espeak-ng")
    assert not reader.available()
    by_name = ReadAloud("borne-no-such-espeak-ng")
    assert not by_name.available()
    with caplog.at_level(logging.DEBUG, logger="kiosk_app.read_aloud"):
        reader.say("Votre avis compte", "fr")
        reader.say("Votre avis compte encore", "en")
        reader.stop()
    assert len(caplog.records) == 1
    assert "espeak-ng" in caplog.records[0].getMessage()
    assert "avis" not in caplog.text
    assert not reader.speaking()
    with pytest.raises(FileNotFoundError, match="install the espeak-ng package"):
        reader.render_wav("x", "fr")


def test_real_espeak_say_never_logs_the_text(espeak: ReadAloud, caplog: pytest.LogCaptureFixture) -> None:
    # Without a sound card espeak-ng ends at once; with one it plays. Either way nothing is logged.
    reader = ReadAloud(shutil.which("espeak-ng") or "espeak-ng")
    with caplog.at_level(logging.DEBUG):
        reader.say("Merci pour votre réponse", "fr")
        reader.stop()
    assert "Merci" not in caplog.text


def test_rate_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="80 to 450"):
        ReadAloud(rate_wpm=20)
