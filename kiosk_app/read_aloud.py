"""Prompts read aloud on demand, offline, with espeak-ng.

One utterance at a time: a new `say` stops the one still playing, `stop` silences it. The text goes
to espeak-ng on its standard input (never through a shell, never as a command-line word that could be
read as an option), and is never logged. A missing espeak-ng is a state (`available()` is False), not
an error: the kiosk simply hides the read-aloud button.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_COMMAND = "espeak-ng"
DEFAULT_RATE_WPM = 150  # espeak-ng speaks 175 words a minute by default; a little slower is clearer
FALLBACK_LANGUAGE = "fr"

# Interface language code -> espeak-ng voice.
VOICES: dict[str, str] = {
    "fr": "fr-fr",
    "en": "en-gb",
    "es": "es",
    "de": "de",
    "it": "it",
    "pt": "pt",
    "nl": "nl",
    "ar": "ar",
}

_STOP_GRACE_S = 1.0


def voice_for(language: str) -> str:
    """The espeak-ng voice for an interface language ('fr', 'en-GB', 'es_ES'…); unknown ones read French."""
    base = language.strip().lower().replace("_", "-").split("-", 1)[0]
    return VOICES.get(base, VOICES[FALLBACK_LANGUAGE])


class ReadAloud:
    """Speak short fixed prompts through espeak-ng; `say` returns at once, the audio plays in a child process."""

    def __init__(self, command: str | Path = DEFAULT_COMMAND, *, rate_wpm: int = DEFAULT_RATE_WPM) -> None:
        if not 80 <= rate_wpm <= 450:
            raise ValueError(f"rate_wpm={rate_wpm}: espeak-ng speaks 80 to 450 words a minute; pick a value in range")
        self.rate_wpm = rate_wpm
        self.executable = _resolve(command)
        self._command = str(command)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._reported_missing = False

    def available(self) -> bool:
        return self.executable is not None

    def arguments(self, language: str, *, wav_to_stdout: bool = False) -> list[str]:
        """The espeak-ng command line (the text itself is written to its standard input)."""
        if self.executable is None:
            raise FileNotFoundError(f"{self._command}: espeak-ng not found; install the espeak-ng package")
        args = [self.executable, "-v", voice_for(language), "-s", str(self.rate_wpm)]
        if wav_to_stdout:
            args.append("--stdout")
        return [*args, "--stdin"]

    def say(self, text: str, language: str) -> None:
        """Start reading `text` aloud in `language`, stopping whatever was being read; returns at once."""
        with self._lock:
            self._stop_locked()
            if self.executable is None:
                if not self._reported_missing:
                    logger.warning("read aloud unavailable: %s not found (install espeak-ng)", self._command)
                    self._reported_missing = True
                return
            if not text.strip():
                return
            try:
                process = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell; text on stdin
                    self.arguments(language),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    close_fds=True,
                )
            except OSError as error:
                logger.warning("read aloud: cannot start %s (%s)", self.executable, error.strerror)
                return
            self._process = process
            try:
                if process.stdin is not None:
                    process.stdin.write(text.encode("utf-8"))
                    process.stdin.close()
            except OSError:  # it died at once (e.g. no audio device): nothing to read aloud
                self._stop_locked()

    def stop(self) -> None:
        """Silence the utterance in progress, if any."""
        with self._lock:
            self._stop_locked()

    def speaking(self) -> bool:
        with self._lock:
            return self._process is not None and self._process.poll() is None

    def render_wav(self, text: str, language: str, *, timeout_s: float = 30.0) -> bytes:
        """The WAV espeak-ng makes for `text` (for the self-test and the tests; nothing is played)."""
        result = subprocess.run(  # noqa: S603 - fixed argument list, no shell; text on stdin
            self.arguments(language, wav_to_stdout=True),
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
        if result.returncode != 0 or not result.stdout:
            raise RuntimeError(f"espeak-ng failed (exit {result.returncode}) for voice {voice_for(language)}")
        return result.stdout

    def _stop_locked(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _resolve(command: str | Path) -> str | None:
    """Absolute path of an executable `command` (a name looked up on PATH, or a path), or None."""
    text = str(command)
    if os.sep in text:
        return text if os.path.isfile(text) and os.access(text, os.X_OK) else None
    return shutil.which(text)
