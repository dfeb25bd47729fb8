"""Technician screen logic: the corner gesture, the PIN gate and the report read from a real outbox."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pytest

from kiosk_app.flow import ManualClock
from kiosk_app.technician import (
    PIN_HASH_PATTERN,
    Corner,
    CornerGesture,
    PinCheck,
    PinGate,
    gather_report,
    hash_pin,
    verify_pin,
)
from sync_agent.contract import Ack, ComponentState, Rejection
from sync_agent.outbox import Outbox
from tests.conftest import make_draft

W, H = 800, 480


# -- CornerGesture -------------------------------------------------------------------------------


def test_five_quick_taps_in_the_corner_open_the_way(clock: ManualClock) -> None:
    gesture = CornerGesture(corner=Corner.TOP_RIGHT, size_px=80, taps=5, within_s=3, clock=clock.monotonic)
    results = []
    for _ in range(5):
        results.append(gesture.tap(W - 10, H - 10, W, H))
        clock.advance(0.5)
    assert results == [False, False, False, False, True]
    assert not gesture.tap(W - 10, H - 10, W, H)  # the count starts again after success


def test_slow_taps_do_not_add_up(clock: ManualClock) -> None:
    gesture = CornerGesture(taps=5, within_s=3, clock=clock.monotonic)
    outcomes = []
    for _ in range(12):
        outcomes.append(gesture.tap(W - 1, H - 1, W, H))
        clock.advance(0.8)  # five taps span 3.2 s
    assert not any(outcomes)


def test_sliding_window_counts_the_last_taps(clock: ManualClock) -> None:
    gesture = CornerGesture(taps=3, within_s=1, clock=clock.monotonic)
    gesture.tap(W - 1, H - 1, W, H)
    clock.advance(5)
    gesture.tap(W - 1, H - 1, W, H)
    clock.advance(0.3)
    gesture.tap(W - 1, H - 1, W, H)
    clock.advance(0.3)
    assert gesture.tap(W - 1, H - 1, W, H)


def test_a_tap_elsewhere_starts_the_count_again(clock: ManualClock) -> None:
    gesture = CornerGesture(taps=3, within_s=3, clock=clock.monotonic)
    assert not gesture.tap(W - 5, H - 5, W, H)
    assert not gesture.tap(W - 5, H - 5, W, H)
    assert not gesture.tap(W / 2, H / 2, W, H)  # e.g. a rating button
    assert not gesture.tap(W - 5, H - 5, W, H)
    assert not gesture.tap(W - 5, H - 5, W, H)
    assert gesture.tap(W - 5, H - 5, W, H)


@pytest.mark.parametrize(
    ("corner", "inside", "outside"),
    [
        (Corner.TOP_LEFT, (5, H - 5), (W - 5, H - 5)),
        (Corner.TOP_RIGHT, (W - 5, H - 5), (W - 5, 5)),
        (Corner.BOTTOM_LEFT, (5, 5), (5, H - 5)),  # Kivy: y grows upwards
        (Corner.BOTTOM_RIGHT, (W - 5, 5), (5, 5)),
    ],
)
def test_corner_regions_use_kivy_coordinates(
    corner: Corner, inside: tuple[float, float], outside: tuple[float, float]
) -> None:
    gesture = CornerGesture(corner=corner, size_px=60)
    assert gesture.in_corner(*inside, W, H)
    assert not gesture.in_corner(*outside, W, H)
    assert not gesture.in_corner(W / 2, H / 2, W, H)
    assert not gesture.in_corner(61 if "left" in corner else W - 61, inside[1], W, H)


def test_gesture_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        CornerGesture(taps=1)


# -- PinGate -------------------------------------------------------------------------------------


def test_right_pin_accepted_wrong_pin_rejected(clock: ManualClock) -> None:
    gate = PinGate("482913", clock=clock.monotonic)
    assert gate.enabled
    assert gate.check("000000") == PinCheck.REJECTED
    assert gate.check("48291") == PinCheck.REJECTED  # a prefix is not the PIN
    assert gate.check("482913") == PinCheck.ACCEPTED
    # a success clears the count: two more wrong PINs do not lock
    assert gate.check("1") == PinCheck.REJECTED
    assert gate.check("2") == PinCheck.REJECTED
    assert gate.check("482913") == PinCheck.ACCEPTED


def test_three_wrong_pins_lock_for_sixty_seconds(clock: ManualClock) -> None:
    gate = PinGate("4829", clock=clock.monotonic)
    assert [gate.check("0000") for _ in range(3)] == [PinCheck.REJECTED] * 3
    assert gate.locked_for() == pytest.approx(60)
    assert gate.check("4829") == PinCheck.LOCKED  # even the right PIN waits
    clock.advance(59.5)
    assert gate.check("4829") == PinCheck.LOCKED
    assert gate.locked_for() == pytest.approx(0.5)
    clock.advance(0.6)
    assert gate.locked_for() == 0
    assert gate.check("1111") == PinCheck.REJECTED  # a fresh count after the lock
    assert gate.check("4829") == PinCheck.ACCEPTED


def test_lock_comes_back_after_three_more_failures(clock: ManualClock) -> None:
    gate = PinGate("4829", clock=clock.monotonic, max_failures=3, lockout_s=60)
    for _ in range(3):
        gate.check("0")
    clock.advance(61)
    for _ in range(3):
        assert gate.check("0") == PinCheck.REJECTED
    assert gate.check("4829") == PinCheck.LOCKED


def test_each_further_lock_is_twice_as_long_up_to_an_hour(clock: ManualClock) -> None:
    gate = PinGate("4829", clock=clock.monotonic, lockout_s=60)
    locks = []
    for _ in range(8):
        for _ in range(3):
            gate.check("0")
        locks.append(round(gate.locked_for()))
        clock.advance(gate.locked_for() + 0.1)
    assert locks == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert gate.check("4829") == PinCheck.ACCEPTED
    for _ in range(3):
        gate.check("0")
    assert round(gate.locked_for()) == 60  # a right PIN starts the scale again


def test_the_lock_and_the_count_survive_a_restart(clock: ManualClock, tmp_path: Path) -> None:
    wall = [1_800_000_000.0]
    lock_file = tmp_path / "technician-lock.json"

    def gate() -> PinGate:
        return PinGate("4829", clock=clock.monotonic, lock_file=lock_file, wall_clock=lambda: wall[0])

    first = gate()
    first.check("0")
    first.check("0")
    assert gate().failures == 2  # restarted: no fresh tries
    restarted = gate()
    restarted.check("0")
    assert restarted.locked_for() == pytest.approx(60)
    wall[0] += 20  # the kiosk restarts 20 s later
    again = gate()
    assert again.check("4829") == PinCheck.LOCKED and again.locked_for() == pytest.approx(40)
    wall[0] += 41
    assert gate().check("4829") == PinCheck.ACCEPTED
    assert gate().failures == 0
    lock_file.write_text("{garbage")
    assert gate().check("4829") == PinCheck.LOCKED  # a damaged file counts as a lock, never as a reset


def test_a_hashed_pin_is_checked_and_the_hash_does_not_give_it_away(clock: ManualClock) -> None:
    stored = hash_pin("482913")
    assert re.fullmatch(PIN_HASH_PATTERN, stored) and "482913" not in stored
    assert hash_pin("482913") != stored  # salted
    assert verify_pin("482913", stored) and not verify_pin("482914", stored) and not verify_pin("", stored)
    assert not verify_pin("482913", "scrypt$bad")
    gate = PinGate(pin_hash=stored, clock=clock.monotonic)
    assert gate.enabled and gate.check("000000") == PinCheck.REJECTED and gate.check("482913") == PinCheck.ACCEPTED
    both = PinGate("111111", pin_hash=stored, clock=clock.monotonic)
    assert both.check("111111") == PinCheck.REJECTED  # the hash wins over an old plain PIN


def test_empty_configured_pin_disables_the_screen(clock: ManualClock) -> None:
    gate = PinGate("", clock=clock.monotonic)
    assert not gate.enabled
    assert gate.check("") == PinCheck.DISABLED
    assert gate.check("0000") == PinCheck.DISABLED


# -- TechnicianReport ----------------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 15, 40, tzinfo=UTC)


def fill(outbox: Outbox) -> None:
    """Six records: two acked at 14:xx, one rejected, two in flight, one pending."""
    records = [outbox.add(make_draft(rating=1 + i % 4, hour=9 + i)) for i in range(6)]
    first = outbox.claim_batch(max_records=3, max_bytes=1_000_000, now=NOW - timedelta(hours=1))
    assert first is not None
    outbox.apply_ack(
        Ack(
            batch_id=first.batch_id,
            accepted=[records[0].record_id],
            duplicates=[records[1].record_id],
            rejected=[Rejection(record_id=records[2].record_id, reason="schema")],
        ),
        now=NOW - timedelta(hours=1),
    )
    second = outbox.claim_batch(max_records=2, max_bytes=1_000_000, now=NOW)
    assert second is not None and len(second.records) == 2


def test_report_from_a_real_outbox(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        fill(outbox)
        report = gather_report(
            site_id="fs-75-01",
            device_id="borne-01",
            outbox=outbox,
            model=ComponentState.LOADING,
            microphone=ComponentState.MISSING,
            now=NOW,
        )
    assert report.outbox_counts == {"pending": 1, "in_flight": 2, "acked": 2, "rejected": 1}
    assert report.backlog == 3
    assert report.last_ack_hour == datetime(2026, 11, 23, 14, tzinfo=UTC)
    assert report.oldest_pending_age_s is not None and report.oldest_pending_age_s > 0
    assert report.outbox_bytes > 0 and report.disk_free_bytes is not None and report.disk_free_bytes > 0
    assert report.outbox_problem is None
    assert (report.site_id, report.device_id) == ("fs-75-01", "borne-01")
    assert (report.model, report.microphone) == (ComponentState.LOADING, ComponentState.MISSING)
    assert report.software_version == version("borne")
    assert report.outbox_path == str(tmp_path / "outbox.db")


def test_empty_outbox_has_no_last_ack(outbox: Outbox) -> None:
    assert outbox.last_ack_hour() is None
    outbox.add(make_draft())
    report = gather_report(
        site_id="s", device_id="d", outbox=outbox, model=ComponentState.OK, microphone=ComponentState.OK, now=NOW
    )
    assert report.last_ack_hour is None and report.outbox_counts["pending"] == 1


def test_report_reads_acks_written_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with Outbox.open(path) as kiosk_side, Outbox.open(path) as sync_side:
        record = kiosk_side.add(make_draft())
        batch = sync_side.claim_batch(max_records=10, max_bytes=1_000_000, now=NOW)
        assert batch is not None
        sync_side.apply_ack(Ack(batch_id=batch.batch_id, accepted=[record.record_id]), now=NOW)
        report = gather_report(
            site_id="s",
            device_id="d",
            outbox=kiosk_side,
            model=ComponentState.OK,
            microphone=ComponentState.OK,
            now=NOW,
        )
    assert report.outbox_counts["acked"] == 1
    assert report.last_ack_hour == datetime(2026, 11, 23, 15, tzinfo=UTC)


def test_an_unreadable_outbox_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox.open(path)
    outbox.add(make_draft())
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE records")
    report = gather_report(
        site_id="s", device_id="d", outbox=outbox, model=ComponentState.OK, microphone=ComponentState.OK, now=NOW
    )
    outbox.close()
    assert report.outbox_problem is not None and "cannot read the outbox" in report.outbox_problem
    assert report.outbox_counts == {"pending": 0, "in_flight": 0, "acked": 0, "rejected": 0}
    assert report.last_ack_hour is None


def test_the_report_names_records_waiting_in_memory(outbox: Outbox) -> None:
    report = gather_report(
        site_id="s",
        device_id="d",
        outbox=outbox,
        model=ComponentState.OK,
        microphone=ComponentState.OK,
        waiting_records=2,
        waiting_reason="outbox x: disk full",
    )
    assert report.outbox_problem == "2 record(s) wait in memory, refused by the outbox: outbox x: disk full"
