"""Word error rate with the normalisation the speech fixtures' README prescribes.

Both sides: lower case, apostrophes, hyphens and punctuation to spaces, digits written out as words of
the speech's language (num2words, French by default, a dev dependency). Shared by the self-test
(`borne provision check`), the tests and the benchmarks.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def _spell(match: re.Match[str], language: str) -> str:
    from num2words import num2words  # type: ignore[import-untyped]

    raw = match.group(0).replace(",", ".")
    value: float | int = float(raw) if "." in raw else int(raw)
    return f" {num2words(value, lang=language)} "


def normalize(text: str, language: str = "fr") -> list[str]:
    """Words of `text` after the fixtures' normalisation (ImportError without num2words if it holds digits)."""
    text = unicodedata.normalize("NFC", text).lower()
    text = _NUMBER.sub(lambda match: _spell(match, language), text)
    text = _NON_WORD.sub(" ", text.replace("_", " "))
    return text.split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance on words (substitutions, deletions, insertions)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def wer(pairs: Iterable[tuple[str, str]], language: str = "fr") -> float:
    """Corpus word error rate (errors / reference words) over (reference, hypothesis) pairs in `language`."""
    errors = 0
    words = 0
    for ref, hyp in pairs:
        r = normalize(ref, language)
        errors += edit_distance(r, normalize(hyp, language))
        words += len(r)
    return errors / words if words else 0.0


def word_error_rate(reference: str, hypothesis: str) -> float:
    """One pair's word error rate; without num2words (not installed on a terminal) digits stay as they are."""
    try:
        ref, hyp = normalize(reference), normalize(hypothesis)
    except ImportError:

        def plain(text: str) -> list[str]:
            return _NON_WORD.sub(" ", text.lower().replace("_", " ")).split()

        ref, hyp = plain(reference), plain(hypothesis)
    return edit_distance(ref, hyp) / len(ref) if ref else 0.0


__all__ = ["edit_distance", "normalize", "wer", "word_error_rate"]
