"""`moderate(text, language)`: insults and personal data replaced by tokens, with the spans that were replaced.

Insults are looked up in the word lists of the comment's language; personal data are French formats
(phones, NIR, IBAN, addresses, names…) whatever the language, since the terminal is in France."""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass

from edge_models.moderation.insults import LANGUAGES, check_language, find_insults, lexicon
from edge_models.moderation.normalise import tokenize
from edge_models.moderation.personal_data import KINDS, Span, find_personal_data, first_names

__all__ = ["INSULT_KIND", "INSULT_TOKEN", "TOKENS", "ModerationResult", "Redaction", "moderate", "warm_up"]

logger = logging.getLogger(__name__)

INSULT_KIND = "insult"
"""Kind key of a masked insult."""
INSULT_TOKEN = "[…]"  # noqa: S105 - a display token, not a secret
"""What a masked insult becomes in the moderated text."""

TOKENS: dict[str, str] = {**KINDS, INSULT_KIND: INSULT_TOKEN}
"""Every kind key (ascii, usable as a record's `comment.redactions` key) -> replacement token."""

_PLACEHOLDER_RE = re.compile("|".join(re.escape(token) for token in sorted(set(TOKENS.values()), key=len)[::-1]))


@dataclass(frozen=True, slots=True)
class Redaction:
    """One replaced stretch: its kind key and its offsets [start, end) in the input text."""

    kind: str
    start: int
    end: int

    @property
    def token(self) -> str:
        """The replacement shown in the moderated text."""
        return TOKENS[self.kind]


@dataclass(frozen=True, slots=True)
class ModerationResult:
    """The moderated text, what was replaced (offsets in the input), and the number of insults."""

    text: str
    redactions: tuple[Redaction, ...]
    insults: int

    @property
    def changed(self) -> bool:
        """True when anything was replaced."""
        return bool(self.redactions)

    def counts(self) -> dict[str, int]:
        """Number of redactions per kind key, only kinds that occurred (e.g. {"telephone": 1})."""
        return dict(Counter(r.kind for r in self.redactions))

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form: text, redactions (kind, start, end, token), insults, counts."""
        return {
            "text": self.text,
            "redactions": [{"kind": r.kind, "start": r.start, "end": r.end, "token": r.token} for r in self.redactions],
            "insults": self.insults,
            "counts": self.counts(),
        }


def warm_up(languages: tuple[str, ...] = LANGUAGES) -> None:
    """Load the word lists and the first-name list now rather than on the first comment."""
    for language in languages:
        lexicon(language)
    first_names()


def moderate(text: str, language: str = "fr") -> ModerationResult:
    """Replace insults (of `language`: fr, en or es) by `[…]` and personal data by a typed token such as
    `[téléphone]`.

    Personal data wins where it overlaps an insult. Offsets in `redactions` refer to `text`.
    """
    if not isinstance(text, str):
        raise TypeError(f"moderate() expects str, got {type(text).__name__}")
    check_language(language)
    # Tokens already in the text ("[nom]") are left alone, so moderating twice changes nothing more.
    protected = [(m.start(), m.end()) for m in _PLACEHOLDER_RE.finditer(text)]

    def is_protected(start: int, end: int) -> bool:
        return any(start < p_end and p_start < end for p_start, p_end in protected)

    tokens = [t for t in tokenize(text) if not is_protected(t.start, t.end)]
    personal = [s for s in find_personal_data(text, tokens) if not is_protected(s.start, s.end)]
    spans: list[Span] = list(personal)
    insults = 0
    for start, end in find_insults(text, tokens, language):
        if is_protected(start, end) or any(start < p.end and p.start < end for p in personal):
            continue
        spans.append(Span(INSULT_KIND, start, end))
        insults += 1
    spans.sort(key=lambda s: s.start)
    pieces: list[str] = []
    cursor = 0
    for span in spans:
        pieces.append(text[cursor : span.start])
        pieces.append(TOKENS[span.kind])
        cursor = span.end
    pieces.append(text[cursor:])
    redactions = tuple(Redaction(s.kind, s.start, s.end) for s in spans)
    if redactions:
        logger.debug("moderation: %s", dict(Counter(r.kind for r in redactions)))
    return ModerationResult(text="".join(pieces), redactions=redactions, insults=insults)
