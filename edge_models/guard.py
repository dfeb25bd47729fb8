"""Hallucination guard: decides whether a transcribed phrase is speech or something Whisper invented.

Whisper produces fluent text on silence, noise, hum or beeps ("Sous-titres réalisés par la
communauté d'Amara.org", "Merci d'avoir regardé"). A phrase is dropped on a high no-speech
probability with a low log-probability, a low log-probability, a high compression ratio, a repeated
n-gram (a word or a few said again and again, or a sentence said three times), or when its normalised
text is a known phantom phrase. Speech Whisper cannot place in French (reversed speech, a foreign voice
in the lobby's babble) comes out as fluent French with an average log-probability below about −0.7,
where French speech, even in lobby noise, stays above about −0.55 (measured: docs/voice.md).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from edge_models.options import GuardOptions

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
SENTENCE_WORDS = 3  # a run of this many words or more, said again and again, is a loop, not speech


def normalize_phrase(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces: for comparing with phantom phrases."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    no_accents = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", no_accents).split())


def repeated_ngram(words: list[str], max_repeats: int, max_n: int = 4, min_n: int = 1) -> bool:
    """True if some n-gram (min_n ≤ n ≤ max_n) occurs `max_repeats` times in a row."""
    for n in range(min_n, max_n + 1):
        for start in range(len(words) - n * max_repeats + 1):
            gram = words[start : start + n]
            if all(words[start + k * n : start + (k + 1) * n] == gram for k in range(1, max_repeats)):
                return True
    return False


@dataclass(frozen=True)
class Verdict:
    keep: bool
    reason: str  # "ok" or why the phrase was dropped (never the text itself)


class HallucinationGuard:
    """Applies `GuardOptions` to a phrase's text and scores."""

    def __init__(self, options: GuardOptions) -> None:
        self.options = options
        self._phantoms = {normalize_phrase(p) for p in options.phantom_phrases}
        self._phantoms.discard("")

    def check(self, text: str, *, avg_logprob: float, no_speech_prob: float, compression_ratio: float) -> Verdict:
        opt = self.options
        normal = normalize_phrase(text)
        if not normal:
            return Verdict(False, "empty")
        if normal in self._phantoms:
            return Verdict(False, "phantom_phrase")
        if no_speech_prob > opt.no_speech_prob and avg_logprob < opt.low_logprob:
            return Verdict(False, "no_speech")
        if avg_logprob < opt.min_avg_logprob:
            return Verdict(False, "low_logprob")
        if compression_ratio > opt.max_compression_ratio:
            return Verdict(False, "compression_ratio")
        words = normal.split()
        if repeated_ngram(words, opt.max_repeats) or repeated_ngram(
            words, opt.max_sentence_repeats, max_n=len(words) // 2, min_n=SENTENCE_WORDS
        ):
            return Verdict(False, "repetition")
        return Verdict(True, "ok")


__all__ = ["HallucinationGuard", "Verdict", "normalize_phrase", "repeated_ngram"]
