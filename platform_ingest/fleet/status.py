"""The fleet's status: one row per terminal from its latest Status, and the alerts computed from it.

Alerts are computed when asked, never stored:
- `silent`: no Status for more than `[fleet] silent_after_h` hours of the site's opening hours (a terminal
  refreshes its Status every few minutes while it runs; nights and closed days do not count);
- `microphone`, `model`: the kiosk reports its microphone or speech model missing or failed (while online);
- `backlog`: a record has waited for its acknowledgement longer than `[fleet] backlog_after_h` hours;
- `config`: a configuration published `[fleet] config_after_h` hours of opening time ago is still not the
  one the terminal runs (the kiosk refused it, or has not been idle since).

Opening hours are those of the latest configuration published to the terminal (`borne fleet config publish`)
when it gives any, else the `[fleet] opening_hours` of the settings; either is read in the site's time zone: the
`[fleet] timezone` (Europe/Paris), or the overseas département's own when the sites directory places the site
in one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from borne_common.opening_hours import open_hours_between
from platform_ingest.settings import FleetSection
from platform_ingest.store import TerminalStatus
from sync_agent.contract import DeviceConfig

OVERSEAS_TIMEZONES = {
    "971": "America/Guadeloupe",
    "972": "America/Martinique",
    "973": "America/Cayenne",
    "974": "Indian/Reunion",
    "976": "Indian/Mayotte",
}
NOT_READY = ("missing", "failed")


@dataclass(frozen=True)
class Alert:
    kind: str
    message: str


@dataclass(frozen=True)
class Hours:
    """The opening hours a terminal's alerts count in: those of the configuration `config_version` published to
    it, or `[fleet] opening_hours` (`config_version` None)."""

    days: Mapping[str, Sequence[str]]
    config_version: int | None = None

    def __str__(self) -> str:
        if self.config_version is None:
            return "[fleet] opening hours"
        return f"opening hours of configuration {self.config_version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": "fleet" if self.config_version is None else "config",
            "config_version": self.config_version,
            "days": {day: list(ranges) for day, ranges in self.days.items()},
        }


def hours_of(settings: FleetSection, published: DeviceConfig | None) -> Hours:
    """The opening hours of `published`, the latest configuration sent to the terminal, if it gives any (an empty
    `opening_hours` says nothing of the site: the kiosk stays open, and the fleet's hours are the better guess);
    else `[fleet] opening_hours`."""
    if published is not None and published.opening_hours:
        return Hours({str(day): ranges for day, ranges in published.opening_hours.items()}, published.config_version)
    return Hours({str(day): ranges for day, ranges in settings.opening_hours.items()})


@dataclass(frozen=True)
class TerminalRow:
    """A terminal as `borne fleet status` shows it, with the opening hours its alerts counted in."""

    status: TerminalStatus
    alerts: tuple[Alert, ...]
    hours: Hours

    @property
    def terminal(self) -> str:
        return f"{self.status.site_id}/{self.status.device_id}"

    def to_json(self, now: datetime) -> dict[str, Any]:
        status = self.status

        def moment(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "site_id": status.site_id,
            "device_id": status.device_id,
            "site_name": status.site_name,
            "department": status.department,
            "state": status.state,
            "last_seen": moment(status.last_seen),
            "offline_since": moment(status.offline_since),
            "app_version": status.app_version,
            "config_version": status.config_version,
            "config_sent": status.config_sent,
            "config_sent_at": moment(status.config_sent_at),
            "backlog": status.backlog,
            "oldest_pending_age_s": oldest_pending_age_s(status, now),
            "last_ack_at": moment(status.last_ack_at),
            "disk_free_bytes": status.disk_free_bytes,
            "microphone": status.microphone,
            "model": status.model,
            "technician_pin_failures": status.technician_pin_failures,
            "opening_hours": self.hours.to_json(),
            "alerts": [{"kind": alert.kind, "message": alert.message} for alert in self.alerts],
        }


def oldest_pending_age_s(status: TerminalStatus, now: datetime) -> float | None:
    """How long the terminal's oldest unacknowledged record has waited by `now` (None: nothing waits)."""
    if status.backlog <= 0 or status.oldest_pending_age_s is None:
        return None
    return status.oldest_pending_age_s + max(0.0, (now - status.sent_at).total_seconds())


def zone_of(status: TerminalStatus, settings: FleetSection) -> ZoneInfo:
    return ZoneInfo(OVERSEAS_TIMEZONES.get(status.department or "", settings.timezone))


def alerts_of(
    status: TerminalStatus, now: datetime, settings: FleetSection, hours: Hours | None = None
) -> tuple[Alert, ...]:
    """The terminal's alerts at `now`, counting opening time in `hours` (default: `[fleet] opening_hours`)."""
    hours = hours or hours_of(settings, None)
    found = []
    seen = status.last_seen or status.received_at
    silent_h = open_hours_between(seen, now, hours.days, zone_of(status, settings))
    if silent_h > settings.silent_after_h:
        where = f"offline since {_when(status.offline_since)}, " if status.offline_since else ""
        found.append(
            Alert(
                "silent",
                f"{where}no Status for {silent_h:.1f} h of opening time ({hours}; last seen {_when(seen)})",
            )
        )
    if status.state == "online":
        if status.microphone in NOT_READY:
            found.append(Alert("microphone", f"microphone {status.microphone}"))
        if status.model in NOT_READY:
            found.append(Alert("model", f"speech model {status.model}"))
    if status.config_sent is not None and status.config_sent_at is not None:
        running = status.config_version or 0
        pending_h = open_hours_between(status.config_sent_at, now, hours.days, zone_of(status, settings))
        if running < status.config_sent and pending_h > settings.config_after_h:
            found.append(
                Alert(
                    "config",
                    f"runs {'version ' + str(running) if running else 'its local settings'}, version "
                    f"{status.config_sent} published {_when(status.config_sent_at)}",
                )
            )
    waited = oldest_pending_age_s(status, now)
    if waited is not None and waited > settings.backlog_after_h * 3600:
        found.append(
            Alert("backlog", f"oldest record waiting {waited / 3600:.1f} h ({status.backlog} not acknowledged)")
        )
    return tuple(found)


def fleet_rows(
    statuses: list[TerminalStatus],
    now: datetime,
    settings: FleetSection,
    published: Mapping[tuple[str, str], DeviceConfig] | None = None,
) -> list[TerminalRow]:
    """A row per terminal; `published`: the latest configuration sent to each (`Store.latest_device_configs`),
    whose opening hours count for its alerts."""
    rows = []
    for status in statuses:
        hours = hours_of(settings, (published or {}).get((status.site_id, status.device_id)))
        rows.append(TerminalRow(status, alerts_of(status, now, settings, hours), hours))
    return rows


def _config(status: TerminalStatus) -> str:
    """The version the terminal runs, and the one sent when it differs: '4', 'local', '4 (5 sent)'."""
    running = str(status.config_version or "local")
    if status.config_sent is not None and status.config_sent != status.config_version:
        return f"{running} ({status.config_sent} sent)"
    return running


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def render(rows: list[TerminalRow], now: datetime) -> str:
    """The fleet as a text table, a line per terminal, then its alerts indented under it."""
    if not rows:
        return "no terminal has reported a Status yet"
    header = ("terminal", "site", "state", "last seen", "version", "config", "backlog", "mic", "model")
    table = [
        (
            row.terminal,
            (row.status.site_name or "?")[:30],
            row.status.state,
            _age(row.status.last_seen, now),
            row.status.app_version or "?",
            _config(row.status),
            str(row.status.backlog),
            row.status.microphone,
            row.status.model,
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in (header, *table)) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    for row, cells in zip(rows, table, strict=True):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())
        lines += [f"    ! {alert.kind}: {alert.message}" for alert in row.alerts]
    alerted = sum(1 for row in rows if row.alerts)
    online = sum(1 for row in rows if row.status.state == "online")
    lines.append(f"{len(rows)} terminal(s), {online} online, {alerted} with alerts")
    return "\n".join(lines)
