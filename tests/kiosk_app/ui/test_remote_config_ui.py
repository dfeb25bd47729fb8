"""The configuration the platform publishes, as the real kiosk (Kivy offscreen) takes it from the file the
sync agent keeps: question, languages and opening hours run, the closed screen, between visits only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.kiosk_app.ui.test_screens import base_settings, run_driver

CONFIG = {
    "question": {"fr": "Question de la plateforme ?", "en": "The platform's question?"},
    "languages": ["fr", "en"],
    "opening_hours": {"mon": ["08:00-12:00"]},
}


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path: Path = tmp_path_factory.mktemp("remote-config")
    settings = base_settings(tmp_path)
    settings["device"]["device_config_path"] = str(tmp_path / "device-config.json")
    (tmp_path / "device-config.json").write_text(json.dumps({**CONFIG, "config_version": 3}))
    return run_driver(tmp_path, {"scenario": "remote_config", "settings": settings, "config": CONFIG})


def test_the_configuration_kept_by_the_sync_agent_runs_from_the_start(observed: dict[str, Any]) -> None:
    assert observed["at_start"] == {
        "question": "Question de la plateforme ?",
        "languages": ["fr", "en"],
        "state_file_version": 3,  # the sync agent reports it in the Status
    }


def test_outside_its_hours_the_screen_closes_takes_no_rating_and_lets_the_technician_in(
    observed: dict[str, Any],
) -> None:
    assert observed["closed"] == {"screen": "closed", "state": "closed"}
    assert observed["technician_kept"] == "technician_gate"  # opening time did not pull the PIN pad away
    # Nothing stored: not the tap on the closed screen, nor the later visit left on the rating screen.
    assert observed["stored"] == []


def test_a_newer_configuration_waits_for_the_end_of_a_visit(observed: dict[str, Any]) -> None:
    assert observed["during_visit"] == {"state": "rating", "version": 3}
    assert observed["after_visit"] == {"question": "Nouvelle question ?", "state_file_version": 4}


def test_a_third_language_gets_a_flag_as_wide_as_the_others(observed: dict[str, Any]) -> None:
    # The row grows with its flags (up to the window's width): two flags in the first configuration, three after
    # version 4, none squeezed into the room of two (each was 2/3 as wide when the row kept its first width).
    assert len(observed["flags_at_start"]) == 2
    assert len(observed["flags_after_visit"]) == 3
    assert min(observed["flags_after_visit"]) >= 0.9 * min(observed["flags_at_start"])


def test_a_configuration_the_screens_cannot_show_is_refused(observed: dict[str, Any]) -> None:
    assert observed["unfit"] == {"version": 4, "languages": ["fr", "en", "es"]}
