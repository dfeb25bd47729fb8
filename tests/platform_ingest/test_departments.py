from __future__ import annotations

import re
from collections import Counter

import pytest

from borne_common.ids import DEPARTMENT_PATTERN
from platform_ingest.departments import DEPARTMENTS, REGIONS, UNKNOWN, normalise_code, region_of


def test_101_departements_in_18_regions() -> None:
    assert len(DEPARTMENTS) == 101
    assert len(REGIONS) == 18
    assert set(REGIONS) == {department.region for department in DEPARTMENTS.values()}


def test_every_code_is_one_the_contract_accepts() -> None:
    assert all(re.match(DEPARTMENT_PATTERN, code) for code in DEPARTMENTS)
    assert {"2A", "2B", "971", "976"} <= set(DEPARTMENTS)
    assert "20" not in DEPARTMENTS and "975" not in DEPARTMENTS  # neither is a département


def test_known_regions_sizes() -> None:
    sizes = Counter(department.region for department in DEPARTMENTS.values())
    assert sizes["Occitanie"] == 13
    assert sizes["Île-de-France"] == 8
    assert sizes["Corse"] == 2
    assert sizes["Mayotte"] == 1


@pytest.mark.parametrize(
    ("code", "region"),
    [
        ("75", "Île-de-France"),
        ("2B", "Corse"),
        ("974", "La Réunion"),
        ("90", "Bourgogne-Franche-Comté"),
        ("99", UNKNOWN),
    ],
)
def test_region_of(code: str, region: str) -> None:
    assert region_of(code) == region


@pytest.mark.parametrize(("given", "expected"), [("1", "01"), (" 2a ", "2A"), ("971", "971"), ("xx", "XX")])
def test_normalise_code(given: str, expected: str) -> None:
    assert normalise_code(given) == expected
