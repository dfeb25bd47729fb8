"""French personal data: detectors returning typed spans of the input.

Each detector looks for one family of French formats, written or spoken as Whisper writes them:
e-mails (also "arobase ... point ..."), numbers read in words or digits (phones, NIR, numéro
fiscal, allocataire numbers, long identifiers), IBANs, licence plates, passports, street
addresses, and person names after a cue ("je m'appelle", "madame", "ma fille", "la conseillère")
or from a first-name list. Checksums come from python-stdnum (NIR key with 2A/2B, IBAN mod-97,
numéro fiscal); spoken numbers become digits with text2num.

Dates, durations, amounts, counts, postal codes alone, short service numbers (3939, 3646) and
form numbers (cerfa 12100*02) are left alone: a number is only taken when its shape, its checksum
or a cue word says what it is.
"""

from __future__ import annotations

import functools
import logging
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from stdnum import iban as stdnum_iban
from stdnum.fr import nif as stdnum_nif
from stdnum.fr import nir as stdnum_nir
from text_to_num import alpha2digit

from edge_models.moderation.normalise import Token, fold

__all__ = ["KINDS", "Span", "find_personal_data", "first_names"]

logger = logging.getLogger(__name__)

KINDS: dict[str, str] = {
    "telephone": "[téléphone]",
    "email": "[email]",
    "nir": "[nir]",
    "iban": "[iban]",
    "numero_fiscal": "[numéro fiscal]",
    "plaque": "[plaque]",
    "passeport": "[passeport]",
    "numero_allocataire": "[numéro allocataire]",
    "adresse": "[adresse]",
    "nom": "[nom]",
    "numero": "[numéro]",
}
"""Personal-data kinds: ascii key (stored in records) -> French token shown in place of the data.

`numero` is the fallback for a long number (9 digits or more) that no other kind claims.
"""


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of the input to replace: kind key and offsets in the input."""

    kind: str
    start: int
    end: int


# ---------------------------------------------------------------- vocabularies


def _load_words() -> dict[str, Any]:
    """The word lists of `data/personal_data_fr.toml` (shipped with the package)."""
    text = resources.files("edge_models.moderation").joinpath("data", "personal_data_fr.toml").read_text("utf-8")
    return tomllib.loads(text)


_WORDS = _load_words()
_NUMBER_WORDS = frozenset(_WORDS["number_words"])
_UNITS = frozenset(_WORDS["units"])
_CUES: dict[str, frozenset[str]] = {kind: frozenset(words) for kind, words in _WORDS["cues"].items()}
_CUE_WINDOW = 10

_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_AT_WORDS = frozenset(_WORDS["at_words"])
_EMAIL_CONNECTORS = frozenset(_WORDS["email_connectors"])
_EMAIL_LEFT_STOP = frozenset(_WORDS["email_left_stop"])

_IBAN_FR_RE = re.compile(r"\b(?:[Ff]\s?[Rr])\s?\d{2}(?:[ ]?[0-9A-Z]{1,4}){5,8}\b")
_IBAN_ANY_RE = re.compile(r"\b[A-Z]{2}\s?\d{2}(?:[ ]?[0-9A-Z]{1,4}){3,8}\b")
_NIR_RE = re.compile(r"\b[1-478]\s?\d{2}\s?\d{2}\s?(?:2[ABab]|\d{2})\s?\d{3}\s?\d{3}(?:\s?\d{2})?\b")
_PLATE_LETTER = "A-HJ-NP-TV-Z"
_PLATE_SIV_RE = re.compile(
    rf"\b[{_PLATE_LETTER}]\s?[{_PLATE_LETTER}][\s-]?\d{{3}}[\s-]?[{_PLATE_LETTER}]\s?[{_PLATE_LETTER}]\b"
)
_PLATE_SIV_HYPHEN_RE = re.compile(r"\b[a-hj-np-tv-z]{2}-\d{3}-[a-hj-np-tv-z]{2}\b", re.IGNORECASE)
_PLATE_ANY_RE = re.compile(
    r"\b(?:[a-z]{2}[\s-]?\d{3}[\s-]?[a-z]{2}|\d{1,4}[\s-]?[a-z]{1,3}[\s-]?(?:\d{2}|2[ab]|97\d))\b",
    re.IGNORECASE,
)
_PASSPORT_RE = re.compile(r"\b\d{2}\s?[A-Za-z]{2}\s?\d{5}\b")
_ALNUM_ID_RE = re.compile(r"\b(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{8,12}\b")

_STREET_TYPES = frozenset(_WORDS["street_types"])
_ADDRESS_CUES = frozenset(_WORDS["address_cues"])
_ADDRESS_PARTICLES = frozenset(_WORDS["address_particles"])
_ADDRESS_STOP = frozenset(_WORDS["address_stop"])

_NAME_STOP = frozenset(_WORDS["name_stop"])
_ORDINARY_WORD_NAMES = frozenset(_WORDS["ordinary_word_names"])
"""First names that are also ordinary words: names only when capitalised inside a sentence."""
_NAME_PARTICLES = frozenset(_WORDS["name_particles"])
_TITLE_CUES = frozenset(_WORDS["title_cues"])
# Words never part of a name, even capitalised right after "Madame" / "Monsieur".
_FUNCTION_WORDS = frozenset(_WORDS["function_words"])
_PLACE_PREFIXES = frozenset(_WORDS["place_prefixes"])
_AGENT_CUES = frozenset(_WORDS["agent_cues"])
_KIN_CUES = frozenset(_WORDS["kin_cues"])
_STRONG_NAME_CUES: tuple[tuple[str, ...], ...] = tuple(tuple(cue) for cue in _WORDS["name_cues"]["strong"])
"""After these, the next words are a name even in lower case ("je m'appelle jean")."""
_WEAK_NAME_CUES: tuple[tuple[str, ...], ...] = tuple(tuple(cue) for cue in _WORDS["name_cues"]["weak"])
"""After these, the next words are a name when capitalised or in the first-name list."""


# ---------------------------------------------------------------- first names


@functools.lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """Folded first names common in France, from the gender-guesser package's name dictionary.

    Kept: names with a frequency in France, Belgium, Luxembourg, Switzerland, or in the Arabic,
    Turkish, Portuguese, Spanish and Italian columns (names of many French residents). Loaded once.
    """
    try:
        from gender_guesser import detector  # type: ignore[import-untyped]
    except ImportError as error:  # pragma: no cover - dependency of the package
        raise RuntimeError("name detection requires the gender-guesser package") from error
    columns = [detector.Detector.COUNTRIES.index(c) for c in ("france", "belgium", "luxembourg", "swiss")]
    wide = [detector.Detector.COUNTRIES.index(c) for c in ("arabia", "turkey", "portugal", "spain", "italy")]
    data = resources.files("gender_guesser").joinpath("data", "nam_dict.txt")
    names: set[str] = set()
    with data.open(encoding="utf-8") as handle:
        for line in handle:
            if not line or line[0] in "#=":
                continue
            values = line[30:-1]
            parts = line.split()
            if len(parts) < 2:
                continue

            def freq(index: int, values: str = values) -> int:
                char = values[index] if index < len(values) else " "
                return int(char, 16) if char.strip() else 0

            if any(freq(c) >= 1 for c in columns) or any(freq(c) >= 3 for c in wide):
                for variant in parts[1].replace("+", "-").split("-"):
                    folded = fold(variant)
                    if len(folded) >= 3:
                        names.add(folded)
    logger.debug("first names: %d", len(names))
    return frozenset(names - _NAME_STOP)


# ---------------------------------------------------------------- helpers


def _gap(text: str, left: Token, right: Token) -> str:
    return text[left.end : right.start]


def _nearest_cue(tokens: list[Token], start: int, end: int) -> str | None:
    """Kind whose cue word is nearest before token `start` (or right after `end`), if any."""
    for k in range(start - 1, max(-1, start - 1 - _CUE_WINDOW), -1):
        for kind, words in _CUES.items():
            if tokens[k].norm in words:
                return kind
    for k in range(end, min(len(tokens), end + 3)):
        for kind, words in _CUES.items():
            if tokens[k].norm in words and kind != "telephone":
                return kind
    return None


def _is_number_token(token: Token) -> bool:
    return token.norm.isdigit() or token.norm in _NUMBER_WORDS


def _digits_of(text: str) -> str:
    return re.sub(r"\D", "", alpha2digit(text, "fr") if re.search(r"[^\d\s.,()+-]", text) else text)


def _classify_number(digits: str, plus: bool, cue: str | None, shape_only: bool = False) -> str | None:
    """Kind of a number from its digits, whether "+" preceded it, and the nearest cue word.

    With `shape_only`, only kinds that the digits prove by themselves (phone shape, checksums).
    """
    n = len(digits)
    if n == 10 and digits.startswith("08"):
        return None  # 08 numbers are service numbers (0 800, 0 809 ...), not a person's line
    if n == 10 and digits[0] == "0" and digits[1] != "0":
        return "telephone"
    if (plus and digits.startswith("33") and n in (11, 12)) or (digits.startswith("0033") and n in (13, 14)):
        return "telephone"
    if n == 15 and stdnum_nir.is_valid(digits):
        return "nir"
    if n == 13 and stdnum_nif.is_valid(digits) and cue != "nir":
        return "numero_fiscal"
    if shape_only:
        return None
    if cue == "nir" and n in (13, 15) and digits[0] in "12378":
        return "nir"
    if cue == "numero_fiscal" and n == 13:
        return "numero_fiscal"
    if cue == "numero_allocataire" and 5 <= n <= 9:
        return "numero_allocataire"
    if cue == "passeport" and n >= 6:
        return "passeport"
    if cue == "iban" and n >= 10:
        return "iban"
    if cue == "telephone" and 8 <= n <= 13 and (plus or digits[0] == "0") and not digits.startswith("08"):
        return "telephone"
    if n >= 9:
        return "numero"
    return None


# ---------------------------------------------------------------- detectors


def _emails(text: str, tokens: list[Token]) -> list[Span]:
    spans = [Span("email", m.start(), m.end()) for m in _EMAIL_RE.finditer(text)]
    for k, token in enumerate(tokens):
        if token.norm not in _AT_WORDS or k == 0 or k + 1 >= len(tokens):
            continue
        # Right: the domain, then ". xxx" or "point xxx" pairs.
        j = k + 1
        while j + 1 < len(tokens):
            if _gap(text, tokens[j], tokens[j + 1]).strip() in {".", "-"}:
                j += 1
            elif tokens[j + 1].norm in _EMAIL_CONNECTORS and j + 2 < len(tokens):
                j += 2
            else:
                break
        # Left: the local part, joined by "." / "-" / "_" or spoken connectors, and one more bare word.
        i = k - 1
        if tokens[i].norm in _EMAIL_LEFT_STOP:
            continue
        bare_left = 1
        while i - 1 >= 0:
            gap = _gap(text, tokens[i - 1], tokens[i]).strip()
            if gap in {".", "-", "_"}:
                i -= 1
            elif tokens[i - 1].norm in _EMAIL_CONNECTORS and i - 2 >= 0:
                i -= 2
            elif tokens[i - 1].norm in {"bas"} and i - 3 >= 0 and tokens[i - 2].norm in {"tiret", "du"}:
                i -= 3 if tokens[i - 2].norm == "tiret" else 4
            elif bare_left and not gap and tokens[i - 1].norm not in _EMAIL_LEFT_STOP:
                bare_left -= 1
                i -= 1
            else:
                break
        spans.append(Span("email", tokens[max(i, 0)].start, tokens[j].end))
    return spans


def _ibans(text: str) -> list[Span]:
    spans: list[Span] = []
    for match in _IBAN_FR_RE.finditer(text):
        compact = re.sub(r"\s", "", match.group()).upper()
        if len(compact) >= 27:
            compact = compact[:27]
            end = match.start()
            seen = 0
            for pos, char in enumerate(match.group()):
                if not char.isspace():
                    seen += 1
                if seen == 27:
                    end = match.start() + pos + 1
                    break
            spans.append(Span("iban", match.start(), end))
        elif len(compact) >= 20:
            spans.append(Span("iban", match.start(), match.end()))
    for match in _IBAN_ANY_RE.finditer(text):
        if stdnum_iban.is_valid(match.group()):
            spans.append(Span("iban", match.start(), match.end()))
    return spans


def _nirs(text: str, tokens: list[Token]) -> list[Span]:
    spans: list[Span] = []
    for match in _NIR_RE.finditer(text):
        compact = re.sub(r"\s", "", match.group()).upper()
        if (len(compact) == 15 and stdnum_nir.is_valid(compact)) or any(c in "AB" for c in compact):
            spans.append(Span("nir", match.start(), match.end()))
    return spans


def _plates_and_passports(text: str, tokens: list[Token]) -> list[Span]:
    spans = [Span("plaque", m.start(), m.end()) for m in _PLATE_SIV_RE.finditer(text)]
    spans += [Span("plaque", m.start(), m.end()) for m in _PLATE_SIV_HYPHEN_RE.finditer(text)]
    spans += [Span("passeport", m.start(), m.end()) for m in _PASSPORT_RE.finditer(text)]
    folded = [t.norm for t in tokens]
    if any(w in _CUES["plaque"] for w in folded):
        spans += [Span("plaque", m.start(), m.end()) for m in _PLATE_ANY_RE.finditer(text)]
    if "passeport" in folded:
        for match in _ALNUM_ID_RE.finditer(text):
            before = [t.norm for t in tokens if t.end <= match.start()][-_CUE_WINDOW:]
            if "passeport" in before:
                spans.append(Span("passeport", match.start(), match.end()))
    return spans


def _numbers(text: str, tokens: list[Token], taken: list[bool]) -> list[Span]:
    """Runs of number tokens (digits or French number words) classified by length, checksum and cue."""
    spans: list[Span] = []
    k = 0
    while k < len(tokens):
        if taken[k] or not _is_number_token(tokens[k]):
            k += 1
            continue
        j = k + 1
        while j < len(tokens) and not taken[j]:
            gap = _gap(text, tokens[j - 1], tokens[j])
            if re.fullmatch(r"[\s.,()\-]*", gap) is None or gap.count(",") + gap.count(".") > 1:
                break
            if _is_number_token(tokens[j]):
                j += 1
            elif tokens[j].norm == "et" and j + 1 < len(tokens) and tokens[j + 1].norm in _NUMBER_WORDS:
                j += 2
            else:
                break
        spans.extend(_classify_run(text, tokens, k, j))
        k = j
    return spans


def _classify_run(text: str, tokens: list[Token], k: int, j: int) -> list[Span]:
    # A lone article "un"/"une" is not a number; trim it unless it is spoken digits.
    while k < j and tokens[k].norm in {"un", "une"} and (k + 1 >= j or tokens[k + 1].norm.isdigit()):
        k += 1
    if k >= j:
        return []
    # A number followed by a unit is an amount, a duration or a count: its last group belongs to the
    # unit, and what comes before counts only when its shape proves it (a phone number, a checksum).
    amount = j < len(tokens) and (
        tokens[j].norm in _UNITS or (tokens[j].norm == "pour" and j + 1 < len(tokens) and tokens[j + 1].norm == "cent")
    )
    start = tokens[k].start
    plus = text[max(0, start - 2) : start].strip().endswith("+") or (k > 0 and tokens[k - 1].norm == "plus")
    if plus and k > 0 and tokens[k - 1].norm == "plus":
        start = tokens[k - 1].start
    elif plus:
        start = text.rindex("+", 0, start)
    cue = _nearest_cue(tokens, k, j)
    whole = _digits_of(text[tokens[k].start : tokens[j - 1].end])
    if len(whole) == 10 and whole.startswith("08"):
        return []  # 08 numbers are service numbers (0 800, 0 809 ...), not a person's line
    # Try the whole run, then the run trimmed by up to three tokens on either side.
    for trim_left in range(0, min(4, j - k)):
        for trim_right in range(int(amount), min(4, j - k - trim_left)):
            a, b = k + trim_left, j - trim_right
            digits = _digits_of(text[tokens[a].start : tokens[b - 1].end])
            kind = _classify_number(digits, plus and trim_left == 0, cue, shape_only=amount)
            if kind is not None and (kind != "numero" or (trim_left, trim_right) == (0, 0)):
                begin = start if trim_left == 0 else tokens[a].start
                return [Span(kind, begin, tokens[b - 1].end)]
    return []


def _addresses(text: str, tokens: list[Token]) -> list[Span]:
    spans: list[Span] = []
    for k, token in enumerate(tokens):
        if token.norm not in _STREET_TYPES:
            continue
        # Start: a house number (digits, "bis"/"ter", or number words) right before the street type.
        i = k
        while i - 1 >= 0 and (
            _is_number_token(tokens[i - 1]) or tokens[i - 1].norm in {"bis", "ter", "quater", "b", "c"}
        ):
            if re.search(r"[^\s,]", _gap(text, tokens[i - 1], tokens[i])):
                break
            i -= 1
        while i < k and tokens[i].norm in {"un", "une", "b", "c"}:
            i += 1
        has_number = i < k
        cue = any(t.norm in _ADDRESS_CUES for t in tokens[max(0, k - 5) : k])
        if not has_number and not cue:
            continue
        # End: the street name, up to five words, stopping at punctuation, a stop word or a postcode.
        end = k
        m = k + 1
        words = 0
        while m < len(tokens) and words < 5:
            if re.search(r"[,;:!?()]|\.\s", _gap(text, tokens[m - 1], tokens[m]) + " "):
                break
            norm = tokens[m].norm
            if norm in _ADDRESS_STOP or (norm.isdigit() and len(norm) == 5):
                break
            if norm not in _ADDRESS_PARTICLES:
                words += 1
                end = m
            m += 1
        if end == k:
            continue
        spans.append(Span("adresse", tokens[i].start, tokens[end].end))
    return spans


def _name_like(token: Token, strong: bool, titled: bool = False) -> bool:
    """Could `token` be (part of) a name? `strong` after "je m'appelle", `titled` after "Madame"."""
    if not token.text.isalpha() or len(token.norm) < 2:
        return False
    if titled:
        return token.is_capitalised and token.norm not in _FUNCTION_WORDS
    if token.norm in _NAME_STOP:
        return False
    if strong or token.is_capitalised:
        return True
    return token.norm in first_names() and token.norm not in _ORDINARY_WORD_NAMES


def _name_span(text: str, tokens: list[Token], k: int, strong: bool, titled: bool = False) -> tuple[int, int] | None:
    """Tokens [k, end) forming a name: up to three name words, particles before capitalised ones."""
    if k >= len(tokens):
        return None
    end = k
    if (
        titled
        and tokens[k].norm in _NAME_PARTICLES
        and tokens[k].is_capitalised
        and k + 1 < len(tokens)
        and _name_like(tokens[k + 1], strong=False, titled=True)
    ):
        end = k + 1  # "Madame Le Goff", "Monsieur De Sousa"
    if not _name_like(tokens[end], strong, titled):
        return None
    end += 1
    while end < len(tokens) and end - k < 4:
        gap = _gap(text, tokens[end - 1], tokens[end])
        if gap not in {" ", "-"}:
            break
        nxt = tokens[end]
        if nxt.is_capitalised and nxt.text.isalpha() and nxt.norm not in _NAME_STOP:
            end += 1
        elif (
            nxt.norm in _NAME_PARTICLES
            and end + 1 < len(tokens)
            and tokens[end + 1].is_capitalised
            and tokens[end + 1].norm not in _NAME_STOP
        ):
            end += 2
        else:
            break
    return k, end


def _sentence_start(text: str, token: Token) -> bool:
    before = text[: token.start].rstrip()
    return not before or before[-1] in ".!?…\n:"


def _place_name_at(tokens: list[Token], k: int) -> bool:
    """True when token k starts a street or place name ("rue Jean Jaurès", "Saint-Denis")."""
    prev = tokens[k - 1].norm if k > 0 else ""
    prev2 = tokens[k - 2].norm if k > 1 else ""
    return prev in _STREET_TYPES or prev in _PLACE_PREFIXES or (prev in _ADDRESS_PARTICLES and prev2 in _STREET_TYPES)


def _names(text: str, tokens: list[Token]) -> list[Span]:
    spans: list[Span] = []
    names = first_names()
    norms = [t.norm for t in tokens]
    k = 0
    while k < len(tokens):
        if _place_name_at(tokens, k) and tokens[k].is_capitalised:
            k += 1
            while k < len(tokens) and (tokens[k].is_capitalised or norms[k] in _ADDRESS_PARTICLES):
                k += 1
            continue
        found: tuple[int, int] | None = None
        for cues, strong in ((_STRONG_NAME_CUES, True), (_WEAK_NAME_CUES, False)):
            for cue in cues:
                if found is None and tuple(norms[k : k + len(cue)]) == cue:
                    found = _name_span(text, tokens, k + len(cue), strong=strong)
        is_title = norms[k] in _TITLE_CUES and (
            norms[k] != "m" or (tokens[k].text == "M" and text[tokens[k].end : tokens[k].end + 1] == ".")
        )
        if found is None and is_title:
            found = _name_span(text, tokens, k + 1, strong=False, titled=True)
        if found is None and (norms[k] in _KIN_CUES or norms[k] in _AGENT_CUES):
            nxt = k + 1
            if nxt < len(tokens) and (
                tokens[nxt].is_capitalised or (norms[nxt] in names and norms[nxt] not in _ORDINARY_WORD_NAMES)
            ):
                found = _name_span(text, tokens, nxt, strong=False)
        if found is None and tokens[k].is_capitalised and norms[k] in names and tokens[k].text.isalpha():
            following = tokens[k + 1] if k + 1 < len(tokens) else None
            if (
                not _sentence_start(text, tokens[k])
                or norms[k] not in _ORDINARY_WORD_NAMES
                or (following is not None and following.is_capitalised and following.norm not in _NAME_STOP)
            ):
                found = _name_span(text, tokens, k, strong=False)
        if found is not None:
            spans.append(Span("nom", tokens[found[0]].start, tokens[found[1] - 1].end))
            k = found[1]
        else:
            k += 1
    return spans


# ---------------------------------------------------------------- all together

_PRIORITY = {
    "email": 0,
    "iban": 1,
    "nir": 2,
    "plaque": 3,
    "passeport": 3,
    "adresse": 4,
    "telephone": 5,
    "numero_fiscal": 5,
    "numero_allocataire": 5,
    "nom": 6,
    "numero": 7,
}


def _overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def find_personal_data(text: str, tokens: list[Token]) -> list[Span]:
    """Non-overlapping personal-data spans of `text`, sorted by start."""
    candidates: list[Span] = []
    candidates += _emails(text, tokens)
    candidates += _ibans(text)
    candidates += _nirs(text, tokens)
    candidates += _plates_and_passports(text, tokens)
    candidates += _addresses(text, tokens)
    taken = [any(c.start < t.end and t.start < c.end for c in candidates) for t in tokens]
    candidates += _numbers(text, tokens, taken)
    candidates += _names(text, tokens)
    chosen: list[Span] = []
    for span in sorted(candidates, key=lambda s: (_PRIORITY[s.kind], s.start - s.end)):
        # A span overlapping one already chosen keeps its parts outside it: nothing of it is dropped.
        pieces = [span]
        for other in chosen:
            pieces = [part for piece in pieces for part in _subtract(text, piece, other)]
        chosen += pieces
    return sorted(chosen, key=lambda s: s.start)


def _subtract(text: str, span: Span, other: Span) -> list[Span]:
    """Parts of `span` outside `other`, trimmed of spaces and punctuation, dropped when empty."""
    if not _overlaps(span, other):
        return [span]
    parts: list[Span] = []
    for start, end in ((span.start, min(span.end, other.start)), (max(span.start, other.end), span.end)):
        while start < end and not text[start].isalnum():
            start += 1
        while end > start and not text[end - 1].isalnum():
            end -= 1
        if start < end:
            parts.append(Span(span.kind, start, end))
    return parts
