"""Helpers shared by the kiosk tests."""

from __future__ import annotations

from kiosk_app.flow import Flow, Identity, ManualClock, State
from kiosk_app.settings import KioskSection
from sync_agent.contract import Rating, RecordDraft
from tests.conftest import manual_clock


def listening_flow() -> tuple[Flow, ManualClock, list[RecordDraft]]:
    """A flow with voice available, a rating given, listening: (flow, clock, records saved)."""
    records: list[RecordDraft] = []
    clock = manual_clock()
    flow = Flow(
        KioskSection(follow_ups=[]),
        Identity("fs-1", "b-1", "0.1"),
        clock=clock,
        on_record=records.append,
        voice_available=lambda: True,
    )
    for step in (flow.touch, lambda: flow.rate(Rating.VERY_SATISFIED), flow.accept_voice):
        clock.advance(1)
        assert step()
    assert flow.state == State.LISTENING
    return flow, clock, records
