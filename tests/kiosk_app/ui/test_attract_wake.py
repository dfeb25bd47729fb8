"""The attract screen sleeps and a touch wakes it: real Kivy offscreen, a FIFO standing in for the touchscreen's
evdev node, the touch itself queued in a Kivy input provider (read only when the event loop turns)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from kiosk_app.ui.env import ACTIVE_FPS, ATTRACT_FPS_WOKEN, IDLE_FPS
from tests.kiosk_app.ui.test_screens import base_settings, run_driver

MINUTE_FPS = 1 / 60  # the attract frame a minute away: only a wake can turn the loop sooner


def spec(tmp_path: Path, devices: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "scenario": "input_wake",
        "settings": base_settings(tmp_path, input_devices=devices),
        "quiet_fps": MINUTE_FPS,
        **extra,
    }


@pytest.fixture(scope="module")
def woken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp_path = tmp_path_factory.mktemp("woken")
    node = tmp_path / "event0"
    os.mkfifo(node)
    return run_driver(tmp_path, spec(tmp_path, [str(tmp_path / "event*")], node=str(node)))


def test_the_attract_screen_sleeps_while_an_input_device_is_watched(woken: dict[str, Any]) -> None:
    assert woken["watching"] == 1
    assert woken["attract_fps"] == ATTRACT_FPS_WOKEN
    # a touch queued with no wake is not read: the loop sleeps on
    assert woken["without_wake"] == {"screen": "attract", "queued": 1, "turns": 0}


def test_input_on_the_watched_node_wakes_the_loop_and_the_touch_goes_through(woken: dict[str, Any]) -> None:
    # the next attract frame was a minute away: only the wake can have read the touch
    assert woken["reached"] is True and woken["screen"] == "rating"
    assert woken["rating_fps"] == ACTIVE_FPS


def test_without_a_readable_input_device_the_attract_screen_polls(tmp_path: Path) -> None:
    observed = run_driver(tmp_path, spec(tmp_path, [str(tmp_path / "no-such-event*")]))
    assert observed["watching"] == 0
    assert observed["attract_fps"] == IDLE_FPS
    assert observed["reached"] is True  # read by the 10 fps poll, no wake needed
