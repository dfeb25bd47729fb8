"""The microphone check through the real PortAudio path: a private PulseAudio null sink whose monitor is
the microphone. Playing the French sample into it makes the check pass; silence makes it fail."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_models.samples import FRENCH_SAMPLE
from tests.edge_models.test_microphone_pulse import pulse_env  # noqa: F401 — the private PulseAudio server
from tests.provisioning.helpers import borne, init_args

pytestmark = pytest.mark.slow
ROOT_DIR = Path(__file__).resolve().parents[2]
OTHER_CHECKS = ("settings", "disk", "clock", "certificate", "model", "display", "broker", "units")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    assert borne(*init_args(tmp_path / "root")).exit_code == 0
    return tmp_path / "root/etc/borne/borne.toml"


@pytest.fixture
def playing(pulse_env: dict[str, str]) -> Iterator[None]:  # noqa: F811
    """The French sample played into the null sink over and over while the test runs."""
    stop = threading.Event()

    def play() -> None:
        while not stop.is_set():
            subprocess.run(
                ["paplay", "--device=borne_null", str(FRENCH_SAMPLE)], env=pulse_env, check=False, timeout=30
            )

    player = threading.Thread(target=play, daemon=True)
    player.start()
    try:
        yield
    finally:
        stop.set()
        player.join(timeout=30)


def run_microphone_check(config: Path, env: dict[str, str]) -> dict[str, str]:
    skips = [arg for name in OTHER_CHECKS for arg in ("--skip", name)]
    command = ["provision", "check", "--config", str(config), "--json", "--microphone", "pulse", *skips]
    proc = subprocess.run(
        [sys.executable, "-m", "borne_cli", *command],
        env={**env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        cwd=ROOT_DIR,
        timeout=120,
        check=False,
    )
    report = json.loads(proc.stdout)
    assert proc.returncode == (0 if report["ok"] else 1)
    return next(check for check in report["checks"] if check["name"] == "microphone")


def test_microphone_hearing_the_sample_passes(config: Path, pulse_env: dict[str, str], playing: None) -> None:  # noqa: F811
    result = run_microphone_check(config, pulse_env)
    assert result["result"] == "pass", result
    level = float(result["detail"].split("level ")[1].split(" dBFS")[0])
    assert level > -60


def test_silent_microphone_fails(config: Path, pulse_env: dict[str, str]) -> None:  # noqa: F811
    result = run_microphone_check(config, pulse_env)
    assert result["result"] == "fail", result
    assert "hears nothing" in result["detail"] and "alsamixer" in result["fix"]
