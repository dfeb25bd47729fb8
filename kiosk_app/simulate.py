"""Simulated citizens: play sessions through the real flow into the real outbox (tests, benches, demo)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kiosk_app.flow import Flow, Identity, ManualClock, State
from kiosk_app.settings import KioskSection
from sync_agent.contract import Comment, Rating, RecordDraft
from sync_agent.outbox import Outbox

COMMENTS = (
    "Très bon accueil, la conseillère a pris le temps de tout m'expliquer.",
    "J'ai attendu un peu longtemps mais mon dossier de retraite est réglé.",
    "Merci pour l'aide avec ma déclaration de revenus en ligne.",
    "Il faudrait plus de créneaux le samedi matin.",
    "Je n'ai pas pu finir ma démarche, il manquait un document.",
    "Les ordinateurs en libre service sont lents.",
    "Personnel aimable et efficace, je reviendrai.",
    "On m'a bien aidé pour la carte grise.",
)
RATING_WEIGHTS = {
    Rating.VERY_DISSATISFIED: 0.07,
    Rating.DISSATISFIED: 0.13,
    Rating.SATISFIED: 0.35,
    Rating.VERY_SATISFIED: 0.45,
}


@dataclass
class SimulationSummary:
    records: int = 0
    by_rating: Counter[int] = field(default_factory=Counter)
    with_comment: int = 0
    flagged: Counter[str] = field(default_factory=Counter)

    def count(self, draft: RecordDraft) -> None:
        self.records += 1
        self.by_rating[int(draft.rating)] += 1
        self.with_comment += draft.comment is not None
        self.flagged.update(str(flag) for flag in draft.flags)


def simulate(
    settings: KioskSection,
    identity: Identity,
    outbox: Outbox,
    *,
    records: int,
    seed: int = 0,
    end: datetime,
    days: float = 7.0,
) -> SimulationSummary:
    """Play sessions until `records` records are stored, spread over the `days` before `end` (at any hour: the
    settings' opening hours are not applied)."""
    rng = random.Random(seed)  # noqa: S311 — simulation, not security
    clock = ManualClock(end - timedelta(days=days))
    summary = SimulationSummary()

    def store(draft: RecordDraft) -> None:
        outbox.add(draft)
        summary.count(draft)

    always_open = settings.model_copy(update={"opening_hours": {}})
    flow = Flow(always_open, identity, clock=clock, on_record=store, voice_available=lambda: True)
    gap = days * 86400 / max(records, 1)
    pause = settings.debounce_s + 0.4
    while summary.records < records:
        hammering = rng.random() < 0.02
        for _ in range(min(settings.burst_count + 1, records - summary.records) if hammering else 1):
            _play_session(flow, clock, rng, pause)
            if not hammering:
                _walk_away(flow, clock)  # from thanks, or a no-op on attract
                clock.advance(rng.uniform(0.5, 1.5) * gap)
    return summary


def _play_session(flow: Flow, clock: ManualClock, rng: random.Random, pause: float) -> None:
    def tap() -> None:
        clock.advance(pause)

    tap()
    if rng.random() < 0.1 and len(flow.settings.languages) > 1:
        flow.choose_language(rng.choice(flow.settings.languages[1:]))
    else:
        flow.touch()
    tap()
    ratings, weights = zip(*RATING_WEIGHTS.items(), strict=True)
    flow.rate(rng.choices(ratings, weights)[0])
    while flow.state == State.FOLLOW_UP:
        tap()
        question = flow.session.current_follow_up
        if question is None or rng.random() < 0.05:
            _walk_away(flow, clock)
            return
        flow.answer(None if rng.random() < 0.15 else rng.choice(question.choices).id)
    if flow.state == State.VOICE_OFFER:
        tap()
        if rng.random() < 0.7:
            flow.decline_voice()
        else:
            flow.accept_voice()
            clock.advance(rng.uniform(3, 20))
            flow.voice_final(
                Comment(
                    text=rng.choice(COMMENTS),
                    language="fr",
                    asr_model="simulated",
                    confidence=round(rng.uniform(0.7, 0.95), 2),
                )
            )
            tap()
            choice = rng.random()
            if choice < 0.8:
                flow.send()
            elif choice < 0.9:
                flow.delete()
            else:
                _walk_away(flow, clock)
                return


def _walk_away(flow: Flow, clock: ManualClock) -> None:
    limit = flow.timeout_s(flow.state)
    if limit is not None:
        clock.advance(limit + 1)
        flow.tick()
