"""The kiosk state file: read back by the sync agent's own reader, atomic, and harmless when it cannot be written."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge_models.audio import SourceState
from edge_models.bundles import BundleError, read_manifest
from kiosk_app.runtime import model_state, state_of_source
from kiosk_app.state_file import write_kiosk_state
from sync_agent.agent import KioskState, _read_kiosk_state
from sync_agent.contract import ComponentState


@pytest.mark.parametrize("microphone", list(ComponentState))
@pytest.mark.parametrize("model", list(ComponentState))
def test_round_trip_through_the_sync_agents_reader(
    tmp_path: Path, microphone: ComponentState, model: ComponentState
) -> None:
    path = tmp_path / "run" / "borne" / "kiosk-state.json"  # parent directories created
    write_kiosk_state(path, microphone=microphone, model=model)
    assert _read_kiosk_state(path) == KioskState(microphone, model, 0)


def test_file_is_world_readable_whatever_the_umask_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "kiosk-state.json"
    previous = os.umask(0o077)
    try:
        write_kiosk_state(path, microphone=ComponentState.OK, model=ComponentState.LOADING)
        write_kiosk_state(path, microphone=ComponentState.MISSING, model=ComponentState.OK)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["kiosk-state.json"]
    assert _read_kiosk_state(path) == KioskState(ComponentState.MISSING, ComponentState.OK, 0)


READER = """
import json, sys
from pathlib import Path
path = Path(sys.argv[1])
reads = partial = 0
while not Path(sys.argv[2]).exists():
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        continue
    reads += 1
    try:
        data = json.loads(text)
        assert set(data) == {"microphone", "model", "technician_pin_failures"}
    except (ValueError, AssertionError):
        partial += 1
print(reads, partial)
"""


def test_a_concurrent_reader_never_sees_a_partial_or_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "kiosk-state.json"
    done = tmp_path / "done"
    write_kiosk_state(path, microphone=ComponentState.OK, model=ComponentState.OK)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(done)], stdout=subprocess.PIPE, text=True)
    states = list(ComponentState)
    for i in range(600):
        write_kiosk_state(path, microphone=states[i % len(states)], model=states[(i // 2) % len(states)])
    done.touch()
    out, _ = reader.communicate(timeout=60)
    reads, partial = map(int, out.split())
    assert reads > 0
    assert partial == 0
    assert not list(tmp_path.glob(".kiosk-state.json.*"))


def test_unwritable_location_logs_a_warning_and_does_not_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x", encoding="utf-8")
    path = blocker / "kiosk-state.json"
    with caplog.at_level(logging.WARNING, logger="kiosk_app.state_file"):
        write_kiosk_state(path, microphone=ComponentState.OK, model=ComponentState.OK)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert str(path) in message and "kiosk_state_path" in message
    assert blocker.read_text(encoding="utf-8") == "x"
    assert _read_kiosk_state(path) == KioskState()


FULL_DISK = """
import logging, resource, signal, sys
from pathlib import Path
from kiosk_app.state_file import write_kiosk_state
from sync_agent.contract import ComponentState
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(message)s")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (8, 8))  # no file may grow past 8 bytes: writes fail like a full disk
write_kiosk_state(Path(sys.argv[1]), microphone=ComponentState.FAILED, model=ComponentState.FAILED)
print("still running")
"""


def test_a_write_that_fails_midway_keeps_the_previous_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "kiosk-state.json"
    write_kiosk_state(path, microphone=ComponentState.OK, model=ComponentState.LOADING)
    before = path.read_bytes()
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING cannot write the kiosk state file" in result.stdout
    assert result.stdout.strip().endswith("still running")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["kiosk-state.json"]


def test_microphone_mapping() -> None:
    assert state_of_source(SourceState.READY) == ComponentState.OK
    assert state_of_source(SourceState.NO_DEVICE) == ComponentState.MISSING
    assert state_of_source(SourceState.DISCONNECTED) == ComponentState.FAILED
    # a source stopped at the end of a session says nothing new about the device
    assert state_of_source(SourceState.ENDED) is None


def test_model_mapping(tmp_path: Path) -> None:
    with pytest.raises(BundleError) as missing:
        read_manifest(tmp_path / "no-bundle")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "manifest.json").write_text("{", encoding="utf-8")  # a bundle, unusable
    with pytest.raises(BundleError) as partial:
        read_manifest(tmp_path / "partial")
    assert model_state(tmp_path / "partial", None) == ComponentState.OK
    assert model_state(tmp_path / "no-bundle", missing.value) == ComponentState.MISSING
    assert model_state(tmp_path / "partial", partial.value) == ComponentState.FAILED
    assert model_state(tmp_path / "no-bundle", MemoryError()) == ComponentState.FAILED


def test_wrong_technician_pins_reach_the_sync_agent(tmp_path: Path) -> None:
    path = tmp_path / "kiosk-state.json"
    write_kiosk_state(path, microphone=ComponentState.OK, model=ComponentState.OK, pin_failures=4)
    assert _read_kiosk_state(path).pin_failures == 4
    path.write_text('{"microphone": "ok", "model": "ok", "technician_pin_failures": "many"}')
    assert _read_kiosk_state(path) == KioskState(ComponentState.OK, ComponentState.OK, None)
