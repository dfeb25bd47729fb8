"""Where a terminal's files live: the settings' own default paths, optionally below another root.

`--root DIR` (tests, preparing a mounted SD card) puts the same tree under DIR: `DIR/etc/borne/...`,
`DIR/var/lib/borne/...`. The defaults come from the settings models themselves, so the enrolment
and the processes can never disagree on a path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from borne_common.settings import DEFAULT_CONFIG_PATH, DeviceSection
from edge_models.options import DEFAULT_MODELS_DIR
from sync_agent.settings import OutboxSection, SyncSection

SYSTEM_ROOT = Path("/")
_SYNC_DEFAULTS = SyncSection()


def under(root: Path, path: Path) -> Path:
    """`path` (absolute, as on the terminal) placed below `root`."""
    return root / path.relative_to(SYSTEM_ROOT) if root != SYSTEM_ROOT else path


@dataclass(frozen=True)
class DeviceLayout:
    """The files of one terminal below `root` (`/` on the terminal itself)."""

    root: Path = SYSTEM_ROOT

    def _at(self, path: Path | None, fallback: str) -> Path:
        return under(self.root, path if path is not None else Path(fallback))

    @property
    def config(self) -> Path:
        return under(self.root, DEFAULT_CONFIG_PATH)

    @property
    def tls_dir(self) -> Path:
        return self.ca.parent

    @property
    def ca(self) -> Path:
        return under(self.root, _SYNC_DEFAULTS.tls_ca)

    @property
    def certificate(self) -> Path:
        return self._at(_SYNC_DEFAULTS.tls_cert, "/etc/borne/tls/device.crt")

    @property
    def key(self) -> Path:
        return self._at(_SYNC_DEFAULTS.tls_key, "/etc/borne/tls/device.key")

    @property
    def csr(self) -> Path:
        return self.tls_dir / "device.csr"

    @property
    def outbox(self) -> Path:
        return under(self.root, OutboxSection().path)

    @property
    def device_config(self) -> Path:
        return under(self.root, DeviceSection().device_config_path)

    @property
    def kiosk_state(self) -> Path:
        return under(self.root, DeviceSection().kiosk_state_path)

    @property
    def models_dir(self) -> Path:
        return under(self.root, DEFAULT_MODELS_DIR)


@contextmanager
def created_directories(path: Path, mode: int = 0o755) -> Iterator[list[Path]]:
    """Create `path` and its missing parents; if the block fails, remove those left empty."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        directory.mkdir(mode=mode)
    try:
        yield missing
    except BaseException:
        for directory in missing:
            try:
                directory.rmdir()
            except OSError:
                break  # not empty (or gone): keep it and its parents
        raise


def free_space_path(path: Path) -> Path:
    """The nearest existing directory at or above `path`, whose filesystem `path` will live on."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe if probe.is_dir() else probe.parent


def running_as_root() -> bool:
    return os.geteuid() == 0
