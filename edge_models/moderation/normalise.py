"""French normaliser: tokens with offsets into the original text, and folded forms for matching.

Matching never happens on the raw text: each token is folded (lower case, accents removed,
ligatures expanded, digit/symbol substitutions undone, letter elongations reduced) and the
folded forms point back to the token's offsets, so a match becomes a span of the input.
Elisions (l', d', qu', t', j', s', m', n') split naturally because the apostrophe is a separator.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "Token",
    "fold",
    "join_spaced_letters",
    "match_forms",
    "squeeze",
    "tokenize",
]

# A token is a run of characters that are not separators. "@$*€" stay inside tokens (s@lope, p*tain).
_TOKEN_RE = re.compile(r"[^\s'’`´\-_.,;:!?()\[\]{}\"«»/\\…|+=<>~^#&%]+")
# Characters that may separate spelled-out letters: "p u t a i n", "p.u.t.a.i.n", "c-o-n".
_SPACED_SEPARATOR_RE = re.compile(r"[\s.\-_*]{1,3}")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "€": "e"})
_LEET_L = str.maketrans({"1": "l"})
_RUN3_RE = re.compile(r"(.)\1{2,}")
_RUN2_RE = re.compile(r"(.)\1+")


@dataclass(frozen=True, slots=True)
class Token:
    """One token of the input: its text, its offsets, and its folded form (see `fold`)."""

    text: str
    start: int
    end: int
    norm: str

    @property
    def is_capitalised(self) -> bool:
        """True when the token starts with an upper-case letter."""
        return self.text[:1].isupper()


def _strip_accents(text: str) -> str:
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Lower case, accents and ligatures folded: "Enculée" -> "enculee", "œuvre" -> "oeuvre"."""
    return _strip_accents(text.lower())


def squeeze(text: str) -> str:
    """Every run of a repeated character reduced to one: "connnnard" -> "conard"."""
    return _RUN2_RE.sub(r"\1", text)


def match_forms(norm: str) -> tuple[list[str], bool]:
    """Forms of a folded token to look up, and whether the token shows an elongation.

    Digit and symbol substitutions are undone only in tokens that also hold a letter, so
    numbers stay numbers. Runs of three or more identical letters ("putainnn") are reduced
    to two; the caller may then compare squeezed forms when the token was elongated.
    """
    forms = [norm]
    has_letter = any(c.isalpha() for c in norm)
    if has_letter and any(c in "0134557@$€" for c in norm):
        forms.append(norm.translate(_LEET_L).translate(_LEET))
        forms.append(norm.translate(_LEET))
    elongated = any(_RUN3_RE.search(f) for f in forms)
    if elongated:
        forms.extend(_RUN3_RE.sub(r"\1\1", f) for f in list(forms))
    return list(dict.fromkeys(forms)), elongated


def tokenize(text: str) -> list[Token]:
    """Tokens of `text` with offsets; punctuation, apostrophes and hyphens separate tokens."""
    tokens: list[Token] = []
    for match in _TOKEN_RE.finditer(text):
        raw = match.group()
        # Leading or trailing "*" / "@" / "$" belong to punctuation, not to the word.
        left = len(raw) - len(raw.lstrip("*@$€"))
        right = len(raw.rstrip("*@$€"))
        if right <= left:
            continue
        start, end = match.start() + left, match.start() + right
        word = text[start:end]
        tokens.append(Token(word, start, end, fold(word)))
    return tokens


def join_spaced_letters(text: str, tokens: list[Token]) -> list[tuple[int, int, str]]:
    """Runs of at least three one-character tokens ("p u t a i n"): (first index, last index + 1, joined).

    Only runs whose separators are short ("p.u.t.a.i.n", "c o n") are joined.
    """
    runs: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        if len(tokens[i].norm) != 1:
            i += 1
            continue
        j = i + 1
        while (
            j < len(tokens)
            and len(tokens[j].norm) == 1
            and _SPACED_SEPARATOR_RE.fullmatch(text[tokens[j - 1].end : tokens[j].start]) is not None
        ):
            j += 1
        if j - i >= 3:
            runs.append((i, j, "".join(t.norm for t in tokens[i:j])))
        i = j
    return runs
