"""Kivy's configuration as the kiosk sets it, read back in a fresh process (Kivy's config is per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import json
from kiosk_app.ui.env import prepare_kivy
prepare_kivy(width=800, height=480, offscreen=True)
from kivy.config import Config
from kivy.clock import Clock
observed = {"input": Config.items("input"), "clock": Clock.__class__.__name__}
print(json.dumps(observed | {"next_only": Clock.interupt_next_only}))
"""


def test_the_only_input_is_sdls_pointer_and_the_clock_is_interruptible(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIVY_")} | {"KIVY_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    kivy = json.loads(done.stdout.strip().splitlines()[-1])
    # Kivy's own default adds `%(name)s = probesysfs`, which on a multitouch panel (the Pi's 7" display) adds an
    # mtdev or hidinput reader beside SDL's pointer: every tap twice.
    assert kivy["input"] == [["mouse", "mouse,disable_multitouch"]]
    assert kivy["clock"] == "ClockBaseInterrupt" and kivy["next_only"] is True
