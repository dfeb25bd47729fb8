"""The labelled French set: size, balance, and the recall / benign-change targets of the issue."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from edge_models.moderation import KINDS, TOKENS
from edge_models.moderation.evaluation import Case, Report, borne_moderator, load_cases, score

EVAL_SET = Path(__file__).with_name("eval_fr.jsonl")


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_cases(EVAL_SET)


@pytest.fixture(scope="module")
def report(cases: list[Case]) -> Report:
    return score(cases, borne_moderator)


def test_set_is_large_balanced_and_labelled_with_known_kinds(cases: list[Case]) -> None:
    assert len(cases) >= 300
    benign = sum(case.benign for case in cases)
    assert 0.45 <= benign / len(cases) <= 0.55
    kinds = Counter(kind for case in cases for kind, _ in case.remove)
    assert set(kinds) <= set(TOKENS)
    # Every personal-data kind (but the fallback) and insults are represented.
    assert set(KINDS) - {"numero"} <= set(kinds)
    assert all(count >= 4 for count in kinds.values()), kinds
    assert len({case.text for case in cases}) == len(cases), "duplicate sentences"


def _summary(report: Report) -> str:
    lines = [
        f"{kind:<20} n={s.expected:<3} recall={s.recall:.3f} precision={s.precision:.3f}"
        for kind, s in sorted(report.kinds.items())
    ]
    lines.append(f"personal data recall={report.recall(True):.3f} insults recall={report.recall(False):.3f}")
    lines.append(f"benign changed={len(report.benign_changed)}/{report.benign}")
    lines += [f"MISS {kind}: {sub!r} in {text!r}" for kind, sub, text in report.misses]
    lines += [f"CHANGED {text!r}" for text in report.benign_changed]
    return "\n".join(lines)


def test_recall_and_benign_change_targets(report: Report) -> None:
    summary = _summary(report)
    print(summary)  # shown with pytest -s or -rA: the figures behind the targets
    assert report.recall(personal=True) >= 0.98, summary
    assert report.recall(personal=False) >= 0.95, summary
    assert report.benign_change_rate <= 0.01, summary


def test_what_must_stay_stays(report: Report) -> None:
    assert report.keep_violations == []


def test_scoring_detects_a_moderator_that_misses_everything(cases: list[Case]) -> None:
    blind = score(cases, lambda text: (text, []))
    assert blind.recall(personal=True) == 0.0
    assert blind.recall(personal=False) == 0.0
    assert blind.benign_change_rate == 0.0


def test_scoring_detects_a_moderator_that_masks_everything(cases: list[Case]) -> None:
    def wipe(text: str) -> tuple[str, list[tuple[str, int, int]]]:
        return "[…]", [("insult", 0, len(text))]

    report = score(cases, wipe)
    assert report.recall(personal=False) == 1.0
    assert report.recall(personal=True) == 0.0  # removed, but typed as insults
    assert report.kinds["telephone"].removal_recall == 1.0
    assert report.benign_change_rate == 1.0
    assert report.kinds["insult"].precision < 0.5
