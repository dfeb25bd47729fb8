"""Opening hours ('HH:MM-HH:MM' ranges per weekday, as `DeviceConfig.opening_hours` and the settings write
them): whether a moment is inside them, and how much opening time lies between two moments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SPAN = timedelta(days=366)
"""Opening time is counted over at most the last year."""

OpeningHours = Mapping[Any, Sequence[str]]  # weekday ('mon'…'sun') -> ranges; a day not listed is closed


def parse_range(text: str) -> tuple[time, time | None]:
    """'09:00-12:30' -> (09:00, 12:30); an end of 24:00 is None (midnight at the end of the day)."""
    start, end = text.split("-")
    hours, minutes = (int(part) for part in end.split(":"))
    return time.fromisoformat(start), None if hours == 24 else time(hours, minutes)


def is_open(opening_hours: OpeningHours, moment: datetime) -> bool:
    """Whether `moment` (aware, or naive in local time) falls in one of its weekday's ranges."""
    local = moment.astimezone() if moment.tzinfo is None else moment
    now = local.time()
    for text in opening_hours.get(WEEKDAYS[local.weekday()], []):
        opens, closes = parse_range(text)
        if opens <= now and (closes is None or now < closes):
            return True
    return False


def open_hours_between(start: datetime, end: datetime, opening_hours: OpeningHours, zone: ZoneInfo) -> float:
    """Hours of opening time between `start` and `end` (aware datetimes), read in the time zone `zone`."""
    if end <= start:
        return 0.0
    # Aware datetimes that share a tzinfo subtract as wall-clock times: compare and subtract in UTC.
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    total = timedelta()
    day: date = max(start, end - MAX_SPAN).astimezone(zone).date()
    while day <= end.astimezone(zone).date():
        for text in opening_hours.get(WEEKDAYS[day.weekday()], []):
            opens, closes = parse_range(text)
            range_start = datetime.combine(day, opens, zone).astimezone(UTC)
            closing_day, closing = (day + timedelta(days=1), time(0)) if closes is None else (day, closes)
            range_end = datetime.combine(closing_day, closing, zone).astimezone(UTC)
            overlap = min(range_end, end) - max(range_start, start)
            if overlap > timedelta():
                total += overlap
        day += timedelta(days=1)
    return total.total_seconds() / 3600
