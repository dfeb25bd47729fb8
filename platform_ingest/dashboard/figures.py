"""The figures a page shows, from the store's indicators (`Store.indicators`, aggregated by SQL per group and
month): satisfaction rate (share of ratings 3 and 4), volume, trend by month, per sub-group. A rate computed on
fewer than MIN_RATINGS ratings is not shown, as official statistics do."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from platform_ingest.store import Indicator

MIN_RATINGS = 30
MONTHS_FR = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.")


@dataclass(frozen=True)
class Figure:
    """Ratings behind a figure and how many of them are 3 or 4."""

    records: int = 0
    satisfied: int = 0
    comments: int = 0

    @property
    def shown(self) -> bool:
        return self.records >= MIN_RATINGS

    @property
    def rate(self) -> float | None:
        """The satisfaction rate, or None under MIN_RATINGS ratings."""
        return self.satisfied / self.records if self.shown else None

    def __add__(self, other: Figure) -> Figure:
        return Figure(self.records + other.records, self.satisfied + other.satisfied, self.comments + other.comments)


@dataclass(frozen=True)
class Row:
    """A line of a table: a group (or a month) and its figure."""

    key: str
    label: str
    figure: Figure
    href: str | None = None


def figure_of(indicators: Iterable[Indicator]) -> Figure:
    total = Figure()
    for indicator in indicators:
        total += Figure(indicator.records, indicator.satisfied, indicator.comments)
    return total


def by_month(indicators: Iterable[Indicator]) -> list[Row]:
    """One row per month, oldest first."""
    months: dict[str, list[Indicator]] = defaultdict(list)
    for indicator in indicators:
        months[indicator.month].append(indicator)
    return [Row(month, month_label(month), figure_of(months[month])) for month in sorted(months)]


def by_group(indicators: Iterable[Indicator]) -> dict[str, Figure]:
    groups: dict[str, list[Indicator]] = defaultdict(list)
    for indicator in indicators:
        groups[indicator.group].append(indicator)
    return {group: figure_of(members) for group, members in groups.items()}


def month_label(month: str) -> str:
    """'2026-11' -> 'nov. 2026'."""
    year, number = month.split("-")
    return f"{MONTHS_FR[int(number) - 1]} {year}"


def percent(rate: float | None) -> str:
    """0.875 -> '87,5 %' (French typography, narrow no-break space); None -> 'moins de 30 avis'."""
    if rate is None:
        return f"moins de {MIN_RATINGS} avis"
    return f"{rate * 100:.1f}".replace(".", ",") + "\N{NARROW NO-BREAK SPACE}%"


def difference(rate: float | None, reference: float | None) -> str:
    """'+2,1 pts' / '−3,0 pts' against `reference`; '—' when either is hidden."""
    if rate is None or reference is None:
        return "—"
    points = (rate - reference) * 100
    sign = "+" if points >= 0.05 else ("\N{MINUS SIGN}" if points <= -0.05 else "±")
    return f"{sign}{abs(points):.1f}".replace(".", ",") + "\N{NO-BREAK SPACE}pt" + ("s" if abs(points) >= 2 else "")


def count(value: int) -> str:
    """12345 -> '12 345' (narrow no-break space between thousands)."""
    return f"{value:,}".replace(",", "\N{NARROW NO-BREAK SPACE}")


@dataclass(frozen=True)
class Bar:
    """A bar of the monthly chart, in the SVG's coordinates."""

    x: float
    y: float
    height: float
    label: str
    value: str
    shown: bool


CHART_WIDTH, CHART_HEIGHT, CHART_TOP, CHART_BOTTOM = 720, 240, 20, 200


def chart(rows: list[Row], months: int = 12) -> list[Bar]:
    """The last `months` months as bars of the satisfaction rate (0 to 100 %); a hidden rate is a flat grey bar."""
    rows = rows[-months:]
    if not rows:
        return []
    step = (CHART_WIDTH - 60) / len(rows)
    bars = []
    for index, row in enumerate(rows):
        rate = row.figure.rate
        height = (CHART_BOTTOM - CHART_TOP) * (rate if rate is not None else 0.0)
        bars.append(
            Bar(
                x=50 + index * step + step * 0.15,
                y=CHART_BOTTOM - height,
                height=height,
                label=row.label,
                value=percent(rate) if rate is not None else f"< {MIN_RATINGS}",
                shown=rate is not None,
            )
        )
    return bars
