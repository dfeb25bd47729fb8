"""Opening hours: whether a moment is inside them, and the opening time between two moments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from borne_common.opening_hours import is_open, open_hours_between

PARIS = ZoneInfo("Europe/Paris")
OFFICE = {day: ["09:00-12:00", "13:30-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
FRIDAY_4PM = datetime(2026, 12, 4, 16, 0, tzinfo=PARIS)
MONDAY = datetime(2026, 12, 7, tzinfo=PARIS)


def test_only_opening_hours_count() -> None:
    # Friday 16:00 -> Monday 10:30: one hour on Friday, the weekend closed, 1.5 h on Monday.
    assert open_hours_between(FRIDAY_4PM, MONDAY.replace(hour=10, minute=30), OFFICE, PARIS) == 2.5
    # The lunch break does not count either.
    noon, two_pm = MONDAY.replace(hour=11), MONDAY.replace(hour=14)
    assert open_hours_between(noon, two_pm, OFFICE, PARIS) == 1.5
    assert open_hours_between(two_pm, noon, OFFICE, PARIS) == 0.0


def test_opening_time_is_counted_in_real_hours_across_a_clock_change() -> None:
    # 29 March 2026: clocks go from 02:00 to 03:00 in Paris. Open 00:00-24:00 on Sunday: 23 real hours.
    always_sunday = {"sun": ["00:00-24:00"]}
    start = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    assert open_hours_between(start, start + timedelta(days=2), always_sunday, PARIS) == 23.0


def test_a_moment_is_open_or_closed() -> None:
    assert is_open(OFFICE, MONDAY.replace(hour=9))  # the opening minute is open
    assert not is_open(OFFICE, MONDAY.replace(hour=12))  # the closing minute is not
    assert is_open(OFFICE, MONDAY.replace(hour=16, minute=59))
    assert not is_open(OFFICE, MONDAY.replace(hour=12, minute=30))  # lunch
    assert not is_open(OFFICE, MONDAY - timedelta(hours=12))  # Sunday noon
    assert is_open({"sun": ["20:00-24:00"]}, MONDAY - timedelta(minutes=1))  # 23:59 on Sunday
    assert not is_open({}, MONDAY.replace(hour=10))
    # Read in the moment's own time zone (the kiosk gives its local time): the same instant is 08:30 in UTC,
    # closed, and 09:30 in Paris, open.
    instant = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
    assert not is_open(OFFICE, instant) and is_open(OFFICE, instant.astimezone(PARIS))
