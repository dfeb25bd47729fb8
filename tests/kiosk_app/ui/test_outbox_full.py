"""A visit that ends while the outbox cannot grow (SQLite's real "disk full") is kept in memory, shown to the
technician, and stored once there is room: real Kivy offscreen, a real outbox file, synthesised touches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sync_agent.contract import Rating
from tests.kiosk_app.ui.test_screens import base_settings, run_driver


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path: Path = tmp_path_factory.mktemp("outbox-full")
    return run_driver(tmp_path, {"scenario": "outbox_full", "settings": base_settings(tmp_path)})


def test_the_visit_waits_in_memory_while_the_outbox_is_full(full: dict[str, Any]) -> None:
    assert full["while_full"]["waiting"] == 1
    assert full["while_full"]["visits_in_outbox"] == []
    assert "1 record(s) wait in memory, refused by the outbox" in full["while_full"]["technician_outbox"]
    assert "disk full" in full["while_full"]["technician_outbox"]


def test_the_visit_is_stored_once_there_is_room(full: dict[str, Any]) -> None:
    assert full["after_room"] == {"waiting": 0, "visits_in_outbox": [int(Rating.SATISFIED)]}
    assert [record["rating"] for record in full["stored"]] == [int(Rating.SATISFIED)]
