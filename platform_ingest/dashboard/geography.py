"""Region codes (INSEE) for the dashboard's roles and addresses: `region:53` is Bretagne."""

from __future__ import annotations

from typing import Final

from platform_ingest.departments import DEPARTMENTS

REGION_CODES: Final[dict[str, str]] = {
    "84": "Auvergne-Rhône-Alpes",
    "27": "Bourgogne-Franche-Comté",
    "53": "Bretagne",
    "24": "Centre-Val de Loire",
    "94": "Corse",
    "44": "Grand Est",
    "32": "Hauts-de-France",
    "11": "Île-de-France",
    "28": "Normandie",
    "75": "Nouvelle-Aquitaine",
    "76": "Occitanie",
    "52": "Pays de la Loire",
    "93": "Provence-Alpes-Côte d'Azur",
    "01": "Guadeloupe",
    "02": "Martinique",
    "03": "Guyane",
    "04": "La Réunion",
    "06": "Mayotte",
}
"""INSEE code -> region name as `platform_ingest.departments` spells it."""
CODE_OF_REGION: Final[dict[str, str]] = {name: code for code, name in REGION_CODES.items()}


def departments_of(region_code: str) -> list[str]:
    """The département codes of the region `region_code`, in code order."""
    name = REGION_CODES[region_code]
    return sorted(code for code, department in DEPARTMENTS.items() if department.region == name)
