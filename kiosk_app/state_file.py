"""The kiosk's microphone and model state, written for the sync agent to report in its `Status`.

The kiosk has no network; the sync agent reads this small JSON file
(`sync_agent.agent._read_kiosk_state`, path `[device] kiosk_state_path`) and puts both states, and the
count of wrong technician PINs in a row, in the retained Status message. The file is replaced
atomically, so the agent never reads half of it. A full disk or an unwritable directory costs a
warning, never the kiosk. The states come from `kiosk_app.runtime` (`state_of_source`, `model_state`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

from sync_agent.contract import ComponentState

logger = logging.getLogger(__name__)

FILE_MODE = 0o644


def write_kiosk_state(
    path: Path,
    *,
    microphone: ComponentState,
    model: ComponentState,
    pin_failures: int = 0,
    config_version: int | None = None,
) -> None:
    """Replace `path` with the two states, the wrong technician PINs in a row and the DeviceConfig version
    the kiosk runs (None: its local settings only): temp file in the same directory, fsync, rename (mode 0644).

    Never raises for a file-system problem: it logs a warning naming the path and the cause, and the
    previous file (if any) stays whole.
    """
    _try_write(Path(path), microphone=microphone, model=model, pin_failures=pin_failures, config_version=config_version)


def _try_write(
    path: Path,
    *,
    microphone: ComponentState,
    model: ComponentState,
    pin_failures: int = 0,
    config_version: int | None = None,
) -> bool:
    """`write_kiosk_state`, telling whether the file now holds these states."""
    state: dict[str, object] = {
        "microphone": ComponentState(microphone).value,
        "model": ComponentState(model).value,
        "technician_pin_failures": pin_failures,
    }
    if config_version is not None:
        state["config_version"] = config_version
    content = json.dumps(state)
    temp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content + "\n")
            handle.flush()
            os.fchmod(handle.fileno(), FILE_MODE)
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
        temp_name = None
        _fsync_directory(path.parent)
        return True
    except OSError as error:
        logger.warning(
            "cannot write the kiosk state file %s (%s); the sync agent will report the microphone and "
            "model as unknown until it can be written: check free space and [device] kiosk_state_path",
            path,
            error.strerror or error,
        )
        return False
    finally:
        if temp_name is not None:
            _remove_quietly(temp_name)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_quietly(name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)
