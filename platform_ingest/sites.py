"""The sites directory: which département each France services site is in, imported from CSV."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from borne_common.ids import IDENTIFIER_PATTERN
from platform_ingest.departments import DEPARTMENTS, normalise_code
from platform_ingest.store import Site

COLUMNS = ("site_id", "name", "department")
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class SitesFileError(ValueError):
    """A sites file that cannot be imported; the message names the file, the line and the problem."""


def read_sites(path: Path) -> list[Site]:
    """Sites from a CSV file with a header `site_id,name,department` (other columns are ignored)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _parse(path, csv.DictReader(handle))
    except OSError as error:
        raise SitesFileError(f"{path}: cannot read the sites file ({error.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise SitesFileError(f"{path}: not a UTF-8 CSV file ({error})") from None


def _parse(path: Path, reader: csv.DictReader[str]) -> list[Site]:
    if reader.fieldnames is None or not set(COLUMNS) <= {name.strip() for name in reader.fieldnames}:
        raise SitesFileError(f"{path}: expected a CSV header with the columns {','.join(COLUMNS)}")
    sites: dict[str, Site] = {}
    for line, row in enumerate(reader, start=2):
        row = {(key or "").strip(): (value or "").strip() for key, value in row.items() if isinstance(value, str)}
        site_id, name, department = (
            row.get("site_id", ""),
            row.get("name", ""),
            normalise_code(row.get("department", "")),
        )
        if not _IDENTIFIER.fullmatch(site_id):
            raise SitesFileError(f"{path}:{line}: site_id {site_id!r} is not an identifier (letters, digits, - or _)")
        if not name:
            raise SitesFileError(f"{path}:{line}: site {site_id} has no name")
        if department not in DEPARTMENTS:
            raise SitesFileError(
                f"{path}:{line}: department {department!r} of site {site_id} is not a département code "
                "('01'..'95', '2A', '2B', '971'..'974', '976')"
            )
        if site_id in sites:
            raise SitesFileError(f"{path}:{line}: site {site_id} appears twice")
        sites[site_id] = Site(site_id, name, department)
    return list(sites.values())
