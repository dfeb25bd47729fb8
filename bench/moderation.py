"""`borne bench moderation`: quality per kind and time per comment, Borne vs plain better-profanity.

Both run on the same labelled French set (tests/edge_models/moderation/eval_fr.jsonl) in the same
process; the baseline is better-profanity loaded with the same word lists and nothing else.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import click

from bench.results_file import machine, out_option
from edge_models.moderation.evaluation import (
    Case,
    Moderator,
    Report,
    baseline_moderator,
    borne_moderator,
    load_cases,
    score,
)
from edge_models.moderation.moderator import INSULT_KIND, warm_up

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = ROOT / "tests" / "edge_models" / "moderation" / "eval_fr.jsonl"


def _timings(cases: list[Case], moderator: Moderator, repeat: int) -> dict[str, float]:
    samples: list[float] = []
    for _ in range(repeat):
        for case in cases:
            start = time.perf_counter()
            moderator(case.text)
            samples.append(time.perf_counter() - start)
    samples.sort()
    return {
        "median_ms": statistics.median(samples) * 1000,
        "p95_ms": samples[int(0.95 * (len(samples) - 1))] * 1000,
        "max_ms": samples[-1] * 1000,
        "comments": len(samples),
    }


def _summary(report: Report) -> dict[str, object]:
    return {
        "kinds": {
            kind: {
                "expected": s.expected,
                "recall": round(s.recall, 4),
                "removal_recall": round(s.removal_recall, 4),
                "predicted": s.predicted,
                "precision": round(s.precision, 4),
            }
            for kind, s in sorted(report.kinds.items())
        },
        "recall_personal_data": round(report.recall(personal=True), 4),
        "recall_insults": round(report.recall(personal=False), 4),
        "benign": report.benign,
        "benign_changed": len(report.benign_changed),
        "benign_change_rate": round(report.benign_change_rate, 4),
        "keep_violations": len(report.keep_violations),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@click.command(name="moderation")
@click.option(
    "--cases",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEFAULT_CASES,
    show_default="tests/edge_models/moderation/eval_fr.jsonl",
    help="Labelled JSONL set.",
)
@out_option("moderation")
@click.option("--repeat", type=click.IntRange(min=1), default=5, show_default=True, help="Timing passes over the set.")
def moderation(cases: Path, out: Path, repeat: int) -> None:
    """Precision/recall per kind and time per comment, beside plain better-profanity."""
    labelled = load_cases(cases)
    start = time.perf_counter()
    warm_up()
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    baseline = baseline_moderator()
    baseline_load_s = time.perf_counter() - start

    ours, theirs = score(labelled, borne_moderator), score(labelled, baseline)
    ours_time = _timings(labelled, borne_moderator, repeat)
    theirs_time = _timings(labelled, baseline, repeat)
    results: dict[str, object] = {
        "cases": str(cases.relative_to(ROOT) if cases.is_relative_to(ROOT) else cases),
        "sentences": len(labelled),
        "machine": machine("better-profanity", "python-stdnum", "text2num"),
        "borne": {
            **_summary(ours),
            "time": ours_time,
            "load_s": round(load_s, 4),
        },
        "better_profanity": {
            **_summary(theirs),
            "time": theirs_time,
            "load_s": round(baseline_load_s, 4),
        },
    }

    kinds = sorted(ours.kinds, key=lambda k: (k == INSULT_KIND, k))
    click.echo(f"{len(labelled)} sentences ({ours.benign} benign) from {results['cases']}")
    click.echo(f"{'kind':<20}{'n':>5}{'recall':>9}{'precision':>11}{'bp recall':>11}{'bp precision':>14}")
    for kind in kinds:
        s = ours.kinds[kind]
        b = theirs.kinds.get(kind)
        click.echo(
            f"{kind:<20}{s.expected:>5}{_fmt(s.recall):>9}{_fmt(s.precision):>11}"
            f"{_fmt(b.recall if b else 0.0):>11}{_fmt(b.precision if b and b.predicted else None):>14}"
        )
    click.echo(f"{'personal data':<20}{'':>5}{_fmt(ours.recall(True)):>9}{'':>11}{_fmt(theirs.recall(True)):>11}")
    click.echo(f"{'insults':<20}{'':>5}{_fmt(ours.recall(False)):>9}{'':>11}{_fmt(theirs.recall(False)):>11}")
    click.echo(
        f"benign sentences changed: borne {len(ours.benign_changed)}/{ours.benign} "
        f"({ours.benign_change_rate:.1%}), better-profanity {len(theirs.benign_changed)}/{theirs.benign} "
        f"({theirs.benign_change_rate:.1%})"
    )
    click.echo(
        f"time per comment: borne median {ours_time['median_ms']:.3f} ms, p95 {ours_time['p95_ms']:.3f} ms; "
        f"better-profanity median {theirs_time['median_ms']:.3f} ms, p95 {theirs_time['p95_ms']:.3f} ms"
    )
    click.echo(
        f"load: borne {load_s * 1000:.0f} ms (word lists + first names), "
        f"better-profanity {baseline_load_s * 1000:.0f} ms"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"wrote {out}")
