"""The dashboard's exports, for an account's scope: the indicators as CSV (for a spreadsheet), and an open-data
JSON per month listing each site (Licence Ouverte / Etalab 2.0). The web routes (`/export/...`) and
`borne dashboard export` write the same bytes with these functions.

Both hide what the pages hide: under MIN_RATINGS ratings the satisfaction rate is empty (CSV) or null (JSON), and
so is the count of satisfied ratings, from which the rate would be one division away. The open data carries no
comment, not even a count of them.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from platform_ingest.dashboard.accounts import Role
from platform_ingest.dashboard.figures import MIN_RATINGS, Figure, month_label
from platform_ingest.dashboard.geography import CODE_OF_REGION, REGION_CODES
from platform_ingest.departments import DEPARTMENTS, UNKNOWN
from platform_ingest.store import Indicator, Site, Store

CSV_COLUMNS: Final = (
    "niveau",
    "code",
    "nom",
    "departement",
    "region",
    "mois",
    "avis",
    "avis_satisfaits",
    "taux_satisfaction_pct",
    "commentaires",
)
LEVELS: Final = ("national", "region", "departement", "site")
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is a formula (or becomes one) in spreadsheet software: CSV injection."""

OPENDATA_SCHEMA: Final = "borne-satisfaction-france-services-par-site"
OPENDATA_VERSION: Final = 1
LICENCE: Final = {
    "nom": "Licence Ouverte / Open Licence version 2.0",
    "url": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
    "spdx": "etalab-2.0",
}
RATE_DEFINITION: Final = (
    "Taux de satisfaction : part des avis 3 (« satisfait ») et 4 (« très satisfait ») parmi les avis donnés à la "
    f"borne du site dans le mois ; non publié sous {MIN_RATINGS} avis, comme le nombre d'avis satisfaits."
)


@dataclass(frozen=True)
class ExportRow:
    """A line of the CSV: a group of one level in one month (`department` and `region`: the codes it belongs to)."""

    level: str
    code: str
    name: str
    department: str
    region: str
    month: str
    figure: Figure


def scope_slug(role: Role) -> str:
    """The account's scope in a file name: 'national', 'region-53', 'site-fs-35-01'."""
    return role.kind if role.kind == "national" else f"{role.kind}-{role.code}"


def _figure(indicator: Indicator) -> Figure:
    return Figure(indicator.records, indicator.satisfied, indicator.comments)


def _region_code(department: str | None) -> str:
    info = DEPARTMENTS.get(department or "")
    return CODE_OF_REGION.get(info.region, "") if info else ""


def indicator_rows(store: Store, role: Role, month: str | None = None) -> list[ExportRow]:
    """The rows an account of `role` may export, in `month` ('YYYY-MM') or every month: for a national account the
    country, each region, département and site; for a regional one its region, its départements and their sites;
    for a site account its site. By month, then level, then code."""
    directory = {site.site_id: site for site in store.sites()}
    rows: list[ExportRow] = []
    if role.kind in ("national", "region"):
        regions = store.indicators("region", month)
        if role.kind == "national":
            months: dict[str, Figure] = defaultdict(Figure)
            for indicator in regions:  # the country: every record, those of sites the directory lacks included
                months[indicator.month] += _figure(indicator)
            rows += [ExportRow("national", "FR", "France entière", "", "", m, f) for m, f in months.items()]
        for indicator in regions:
            code = CODE_OF_REGION.get(indicator.group, "")
            if code and role.sees_region(code):
                rows.append(ExportRow("region", code, indicator.group, "", code, indicator.month, _figure(indicator)))
        for indicator in store.indicators("department", month):
            department = indicator.group
            if department != UNKNOWN and department in DEPARTMENTS and role.sees_department(department):
                name = DEPARTMENTS[department].name
                region = _region_code(department)
                rows.append(
                    ExportRow("departement", department, name, department, region, indicator.month, _figure(indicator))
                )
    if role.kind == "national":
        site_rows = store.indicators("site", month)
    else:  # only the account's sites' rows of site_month, by its primary key
        mine = [site.site_id for site in directory.values() if role.sees_site(site.site_id, site.department)]
        site_rows = store.site_indicators([*mine, *([role.code] if role.kind == "site" else [])], month)
    for indicator in site_rows:
        known = directory.get(indicator.group)
        site_department = known.department if known else None
        if role.sees_site(indicator.group, site_department):
            rows.append(
                ExportRow(
                    "site",
                    indicator.group,
                    known.name if known else "",
                    site_department or "",
                    _region_code(site_department),
                    indicator.month,
                    _figure(indicator),
                )
            )
    rows.sort(key=lambda row: (row.month, LEVELS.index(row.level), row.code))
    return rows


def _cell(text: str) -> str:
    """`text` made inert for a spreadsheet: a leading apostrophe before a formula's first character."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _percent(figure: Figure) -> str:
    """'75,0' (decimal comma, as a French spreadsheet reads numbers); '' under MIN_RATINGS ratings."""
    rate = figure.rate
    return "" if rate is None else f"{rate * 100:.1f}".replace(".", ",")


def indicators_csv(rows: Iterable[ExportRow]) -> bytes:
    """`rows` as CSV for French spreadsheet software: UTF-8 with a byte order mark, ';' between cells, decimal
    commas, CRLF line ends; text cells neutralised against formulas."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        figure = row.figure
        writer.writerow(
            [
                row.level,
                _cell(row.code),
                _cell(row.name),
                _cell(row.department),
                _cell(row.region),
                row.month,
                figure.records,
                figure.satisfied if figure.shown else "",
                _percent(figure),
                figure.comments,
            ]
        )
    return ("\N{BYTE ORDER MARK}" + buffer.getvalue()).encode("utf-8")


def csv_filename(role: Role, month: str | None) -> str:
    return f"indicateurs-{scope_slug(role)}-{month or 'toutes-periodes'}.csv"


def _site_entry(site_id: str, known: Site | None, indicator: Indicator | None) -> dict[str, Any]:
    department = known.department if known else None
    info = DEPARTMENTS.get(department or "")
    figure = Figure(indicator.records, indicator.satisfied) if indicator else Figure()
    rate = figure.rate
    return {
        "site": site_id,
        "nom": known.name if known else None,
        "departement": department,
        "nom_departement": info.name if info else None,
        "region": _region_code(department) or None,
        "nom_region": info.region if info else None,
        "avis": figure.records,
        "avis_satisfaits": figure.satisfied if figure.shown else None,
        "taux_satisfaction": None if rate is None else round(rate, 4),
    }


def opendata(store: Store, role: Role, month: str, generated_at: datetime) -> dict[str, Any]:
    """The open-data document of `month` for an account of `role`: each site of its scope (every site of the sites
    directory, with 0 ratings if it had none, and any other site that sent ratings), by site id."""
    directory = {site.site_id: site for site in store.sites()}
    counts = {indicator.group: indicator for indicator in store.indicators("site", month)}
    candidates = {*directory, *counts, *([role.code] if role.kind == "site" else [])}
    sites: Sequence[dict[str, Any]] = [
        _site_entry(site_id, directory.get(site_id), counts.get(site_id))
        for site_id in sorted(candidates)
        if role.sees_site(site_id, directory[site_id].department if site_id in directory else None)
    ]
    scope = "France entière" if role.kind == "national" else str(role)
    if role.kind == "region":
        scope = f"région {REGION_CODES[role.code]}"
    elif role.kind == "site":
        scope = f"site {role.code}"
    return {
        "schema": OPENDATA_SCHEMA,
        "version": OPENDATA_VERSION,
        "titre": f"Satisfaction des usagers de France services par site, {month_label(month)} ({scope})",
        "mois": month,
        "perimetre": str(role),
        "licence": LICENCE,
        "genere_le": generated_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "seuil_avis": MIN_RATINGS,
        "definition": RATE_DEFINITION,
        "sites": sites,
    }


def opendata_json(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def opendata_filename(role: Role, month: str) -> str:
    return f"donnees-ouvertes-{scope_slug(role)}-{month}.json"


def export_months(store: Store, role: Role) -> list[str]:
    """The months in which the account's scope received ratings, newest first."""
    return sorted({row.month for row in indicator_rows(store, role) if row.figure.records}, reverse=True)
