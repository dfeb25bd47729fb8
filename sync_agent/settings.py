"""Settings shared by every process: one TOML file (`/etc/borne/borne.toml`) plus `BORNE_*` overrides.

Each process has its own settings class built on `BorneSettings` and reads only the sections it
needs. Precedence, highest first: values given by the CLI, `BORNE_<SECTION>__<KEY>` environment
variables, the TOML file, the defaults. Anything wrong fails at start with a `SettingsError` that
names the file (or variable), the key, the value and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from sync_agent.contract import DEPARTMENT_PATTERN, IDENTIFIER_PATTERN, is_platform_identity

DEFAULT_CONFIG_PATH = Path("/etc/borne/borne.toml")
ENV_PREFIX = "BORNE_"
ENV_NESTED_DELIMITER = "__"

# Every section any process reads; a section outside this set is a typo and is reported as such.
KNOWN_SECTIONS = frozenset({"device", "outbox", "kiosk", "models", "voice", "sync", "ingest"})

_file_values: ContextVar[Mapping[str, Any]] = ContextVar("_file_values", default=MappingProxyType({}))


class SettingsError(Exception):
    """Settings that cannot be used; the message says where, what and what was expected."""


class Section(BaseModel):
    """A `[section]` of the TOML file: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSection(Section):
    """Identity of this terminal, written at enrolment."""

    site_id: str = Field(
        default="demo-site",
        pattern=IDENTIFIER_PATTERN,
        description="France services site identifier (letters, digits, '-' or '_', at most 64).",
    )
    device_id: str = Field(
        default="demo-device",
        pattern=IDENTIFIER_PATTERN,
        description="Identifier of this terminal, unique in the fleet; also its MQTT identity.",
    )

    @field_validator("device_id")
    @classmethod
    def _not_a_platform_identity(cls, value: str) -> str:
        if is_platform_identity(value):
            raise ValueError(
                f"{value!r} is reserved to the central platform (names starting with 'ingest' or 'platform'): "
                "choose another device id"
            )
        return value

    department: str = Field(
        default="75",
        pattern=DEPARTMENT_PATTERN,
        description="Département code of the site: '01'..'95' (not '20'), '2A', '2B', '971'..'974' or '976'.",
    )


class OutboxSection(Section):
    """The local SQLite outbox shared by the kiosk (writer) and the sync agent (updater)."""

    path: Path = Field(default=Path("/var/lib/borne/outbox.db"), description="SQLite file of the outbox.")
    retention_days: int = Field(
        default=30, ge=0, le=3650, description="Days an acknowledged record is kept before it is purged."
    )
    busy_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="How long a write waits for the other process's lock."
    )


class _FileSource(PydanticBaseSettingsSource):
    """Values read from the TOML file by `BorneSettings.load`, below the environment in precedence."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _file_values.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {key: value for key, value in _file_values.get().items() if key in self.settings_cls.model_fields}


class BorneSettings(BaseSettings):
    """Base of the per-process settings classes."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="ignore",
        frozen=True,
    )
    source_path: ClassVar[str] = "<defaults>"

    device: DeviceSection = Field(default_factory=DeviceSection, description="This terminal's identity.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> Self:
        """Read `path` (default `/etc/borne/borne.toml`; a missing default file means defaults only).

        A path given explicitly must exist. `overrides` come from the command line and win.
        """
        explicit = path is not None
        path = DEFAULT_CONFIG_PATH if path is None else path
        values = read_toml(path, required=explicit)
        token = _file_values.set(values)
        try:
            return cls(**overrides)
        except ValidationError as error:
            raise SettingsError(describe_validation_error(error, path)) from None
        finally:
            _file_values.reset(token)


def read_toml(path: Path, *, required: bool) -> dict[str, Any]:
    """The TOML file's content as a dict, with unknown sections refused."""
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise SettingsError(
                f"{path}: settings file not found; create it (see docs/settings.md) or pass --config"
            ) from None
        return {}
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML ({error}); fix the syntax at that line") from None
    except UnicodeDecodeError as error:
        raise SettingsError(
            f"{path}: not UTF-8 (byte {error.start} is 0x{error.object[error.start]:02x}); save the file as UTF-8"
        ) from None
    except OSError as error:
        raise SettingsError(f"{path}: cannot read settings file ({error.strerror})") from None
    unknown = sorted(set(values) - KNOWN_SECTIONS)
    if unknown:
        raise SettingsError(
            f"{path}: unknown section(s) {', '.join(f'[{name}]' for name in unknown)}; "
            f"expected some of {', '.join(f'[{name}]' for name in sorted(KNOWN_SECTIONS))}"
        )
    for name, section in values.items():
        if not isinstance(section, dict):
            raise SettingsError(f"{path}: '{name}' must be a [{name}] section, not a plain value")
    return values


def describe_validation_error(error: ValidationError, path: Path) -> str:
    """One line per problem: where it came from, the dotted key, the value and what is expected."""
    lines = []
    for problem in error.errors(include_url=False):
        location = [str(part) for part in problem["loc"]]
        key = ".".join(location)
        env_name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(location).upper()
        origin = f"environment variable {env_name}" if env_name in os.environ else str(path)
        value = problem.get("input")
        shown = "(missing)" if problem["type"] == "missing" else repr(value)
        if problem["type"] == "extra_forbidden":
            expected = "unknown key; remove it or check its spelling (docs/settings.md lists every key)"
        else:
            expected = problem["msg"]
        lines.append(f"{origin}: {key} = {shown}: {expected}")
    return "invalid settings:\n  " + "\n  ".join(lines)


class SyncSection(Section):
    """How the sync agent reaches the central broker and drains the outbox."""

    broker_host: str = Field(default="localhost", min_length=1, description="Central MQTT broker host name.")
    broker_port: int = Field(default=8883, ge=1, le=65535, description="Broker port (8883 for MQTT over TLS).")
    tls: bool = Field(default=True, description="Use TLS; turn off only for a broker on loopback in a test.")
    tls_ca: Path = Field(default=Path("/etc/borne/tls/ca.crt"), description="CA certificate of the fleet (PEM).")
    tls_cert: Path | None = Field(
        default=Path("/etc/borne/tls/device.crt"),
        description="This device's client certificate (PEM); its common name is the device id.",
    )
    tls_key: Path | None = Field(default=Path("/etc/borne/tls/device.key"), description="The certificate's key.")
    username: str | None = Field(default=None, description="MQTT user name, when the broker uses passwords.")
    password_file: Path | None = Field(
        default=None, description="File holding the MQTT password (kept out of borne.toml)."
    )
    keepalive_s: int = Field(default=60, ge=5, le=3600, description="MQTT keep-alive interval.")
    session_expiry_s: int = Field(
        default=7 * 86400, ge=0, description="How long the broker keeps our session (queued acks) while offline."
    )
    batch_max_records: int = Field(default=200, ge=1, le=200, description="Records per batch at most.")
    batch_max_bytes: int = Field(
        default=256 * 1024, ge=1024, le=256 * 1024, description="JSON bytes of a batch's records at most."
    )
    max_batches_in_flight: int = Field(
        default=4, ge=1, le=64, description="Batches sent and not yet acknowledged at the same time."
    )
    ack_timeout_s: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="A batch without Ack after this long is sent again (same id); each re-send waits twice as long.",
    )
    backoff_min_s: float = Field(default=1, gt=0, le=600, description="First wait after a failure.")
    backoff_max_s: float = Field(default=300, gt=0, le=86400, description="Longest wait between attempts.")
    status_interval_s: float = Field(default=300, gt=0, le=86400, description="How often the Status is refreshed.")
    device_config_path: Path = Field(
        default=Path("/var/lib/borne/device-config.json"),
        description="Where the last valid DeviceConfig from the platform is kept for the kiosk.",
    )
    kiosk_state_path: Path = Field(
        default=Path("/run/borne/kiosk-state.json"),
        description="Microphone and model state written by the kiosk, reported in the Status.",
    )


class SyncSettings(BorneSettings):
    """Settings read by `borne sync`."""

    outbox: OutboxSection = Field(default_factory=OutboxSection, description="The outbox to drain.")
    sync: SyncSection = Field(default_factory=SyncSection, description="Broker and batching.")
