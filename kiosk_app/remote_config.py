"""The configuration the platform published, as the kiosk takes it.

The sync agent keeps the newest valid `DeviceConfig` it received in `[sync] device_config_path` (the
kiosk has no network). The kiosk looks at that file when it is idle (`RemoteConfig.newer`), and runs a
newer version with its question, follow-ups, languages and opening hours in place of its local
settings' (the rest of `[kiosk]` stays). A version that does not fit the kiosk (for instance a language
the screens cannot show) is refused with a warning in the log, and the kiosk keeps what it runs; the
platform sees the version still not run (`borne fleet status`, alert `config`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from kiosk_app.settings import KioskSection
from sync_agent.contract import DeviceConfig

logger = logging.getLogger(__name__)


def apply(local: KioskSection, config: DeviceConfig) -> KioskSection:
    """`local` with the configuration's question, follow-ups, languages and opening hours; ValidationError
    when they do not fit the kiosk's settings."""
    values = local.model_dump()
    values.update(config.model_dump(include={"question", "follow_ups", "languages", "opening_hours"}))
    return KioskSection.model_validate(values)


class RemoteConfig:
    """The version the kiosk runs (None: its local settings), and the newer one waiting in the file."""

    def __init__(self, path: Path, local: KioskSection) -> None:
        self.path = path
        self.local = local
        self.version: int | None = None
        self._seen: tuple[int, int] | None = None

    def newer(self) -> tuple[int, KioskSection] | None:
        """(version, the kiosk's settings with it) when the file holds a newer version that fits; None
        otherwise. The file is read again only when it changed."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        if self._seen == (stat.st_mtime_ns, stat.st_size):
            return None
        self._seen = (stat.st_mtime_ns, stat.st_size)
        try:
            config = DeviceConfig.model_validate_json(self.path.read_bytes())
        except (OSError, ValidationError) as error:
            logger.warning("ignored the configuration file %s: %s", self.path, _first(error))
            return None
        if self.version is not None and config.config_version <= self.version:
            return None
        try:
            settings = apply(self.local, config)
        except ValidationError as error:
            logger.warning(
                "refused configuration version %d (keeping %s): %s",
                config.config_version,
                f"version {self.version}" if self.version else "the local settings",
                _first(error),
            )
            return None
        return config.config_version, settings

    def accept(self, version: int) -> None:
        """The kiosk now runs `version`."""
        self.version = version
        logger.info("running configuration version %d", version)


def _first(error: Exception) -> str:
    if isinstance(error, ValidationError):
        problem = error.errors(include_url=False)[0]
        return f"{'.'.join(str(part) for part in problem['loc']) or 'file'}: {problem['msg']}"
    return str(error)
