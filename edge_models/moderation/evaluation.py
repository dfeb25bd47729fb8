"""Scoring a moderator on a labelled set: recall and precision per kind, benign sentences changed.

A case is one sentence with the substrings that must go (each with its kind) and the substrings that
must stay. An expected item is *removed* when every non-space character of each of its occurrences
lies inside a redaction, and *typed* when, in addition, a redaction of its kind overlaps it.
A redaction is a true positive when it overlaps an expected item of its kind.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from edge_models.moderation.insults import WORD_LIST_FILES, read_word_list
from edge_models.moderation.moderator import INSULT_KIND, moderate

__all__ = [
    "Case",
    "KindScore",
    "Moderator",
    "Report",
    "Spans",
    "baseline_moderator",
    "borne_moderator",
    "load_cases",
    "score",
]

Spans = list[tuple[str, int, int]]
"""Redactions as (kind, start, end) in the input."""

Moderator = Callable[[str], tuple[str, Spans]]
"""A function from input text to (output text, redactions)."""


@dataclass(frozen=True)
class Case:
    """One labelled sentence."""

    text: str
    remove: tuple[tuple[str, str], ...]
    keep: tuple[str, ...]

    @property
    def benign(self) -> bool:
        """True when nothing must go."""
        return not self.remove


def load_cases(path: Path) -> list[Case]:
    """Cases of a JSONL file: {"text", "remove": [{"kind", "text"}], "keep": [...]} per line."""
    cases: list[Case] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        raw = json.loads(line)
        case = Case(
            text=raw["text"],
            remove=tuple((item["kind"], item["text"]) for item in raw.get("remove", [])),
            keep=tuple(raw.get("keep", [])),
        )
        for _, sub in case.remove:
            if sub not in case.text:
                raise ValueError(f"{path}:{number}: {sub!r} is not in the text")
        cases.append(case)
    return cases


@dataclass
class KindScore:
    """Counts for one kind."""

    expected: int = 0
    removed: int = 0
    typed: int = 0
    predicted: int = 0
    true_positives: int = 0

    @property
    def recall(self) -> float:
        """Share of expected items removed with the right kind."""
        return self.typed / self.expected if self.expected else 1.0

    @property
    def removal_recall(self) -> float:
        """Share of expected items removed, whatever the kind given."""
        return self.removed / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        """Share of redactions of this kind that hit an expected item of this kind."""
        return self.true_positives / self.predicted if self.predicted else 1.0


@dataclass
class Report:
    """Scores of one moderator on a set of cases."""

    kinds: dict[str, KindScore] = field(default_factory=dict)
    cases: int = 0
    benign: int = 0
    benign_changed: list[str] = field(default_factory=list)
    keep_violations: list[tuple[str, str]] = field(default_factory=list)
    misses: list[tuple[str, str, str]] = field(default_factory=list)

    def kind(self, name: str) -> KindScore:
        """Score of one kind, created on first use."""
        return self.kinds.setdefault(name, KindScore())

    def recall(self, personal: bool) -> float:
        """Typed recall over personal-data kinds (personal=True) or over insults."""
        scores = [s for k, s in self.kinds.items() if (k != INSULT_KIND) == personal]
        expected = sum(s.expected for s in scores)
        return sum(s.typed for s in scores) / expected if expected else 1.0

    @property
    def benign_change_rate(self) -> float:
        """Share of benign sentences whose text changed."""
        return len(self.benign_changed) / self.benign if self.benign else 0.0


def _occurrences(text: str, sub: str) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    start = text.find(sub)
    while start >= 0:
        found.append((start, start + len(sub)))
        start = text.find(sub, start + len(sub))
    return found


def _covered(text: str, start: int, end: int, spans: Spans) -> bool:
    return all(text[i].isspace() or any(s <= i < e for _, s, e in spans) for i in range(start, end))


def score(cases: Iterable[Case], moderator: Moderator) -> Report:
    """Run `moderator` on every case and count."""
    report = Report()
    for case in cases:
        report.cases += 1
        output, spans = moderator(case.text)
        if case.benign:
            report.benign += 1
            if output != case.text:
                report.benign_changed.append(case.text)
        expected_spans: list[tuple[str, int, int]] = []
        for kind, sub in case.remove:
            score_ = report.kind(kind)
            score_.expected += 1
            places = _occurrences(case.text, sub)
            expected_spans += [(kind, s, e) for s, e in places]
            removed = all(_covered(case.text, s, e, spans) for s, e in places)
            typed = removed and all(any(k == kind and ps < e and s < pe for k, ps, pe in spans) for s, e in places)
            score_.removed += removed
            score_.typed += typed
            if not typed:
                report.misses.append((kind, sub, case.text))
        for kind, start, end in spans:
            score_ = report.kind(kind)
            score_.predicted += 1
            score_.true_positives += any(k == kind and s < end and start < e for k, s, e in expected_spans)
        for sub in case.keep:
            if sub not in output:
                report.keep_violations.append((sub, case.text))
    return report


def borne_moderator(text: str) -> tuple[str, Spans]:
    """Our moderator in the scoring interface."""
    result = moderate(text)
    return result.text, [(r.kind, r.start, r.end) for r in result.redactions]


def baseline_moderator() -> Moderator:
    """Plain better-profanity loaded with the same word lists, spans recovered by diffing."""
    from better_profanity import Profanity

    words = [word for name in WORD_LIST_FILES for word, _ in read_word_list(name)]
    profanity = Profanity(words)

    def run(text: str) -> tuple[str, Spans]:
        output: str = profanity.censor(text)
        spans: Spans = []
        matcher = difflib.SequenceMatcher(None, text, output, autojunk=False)
        for tag, i1, i2, _, _ in matcher.get_opcodes():
            if tag in {"replace", "delete"}:
                spans.append((INSULT_KIND, i1, i2))
        return output, spans

    return run
