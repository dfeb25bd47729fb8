"""Settings base shared by every process: one TOML file (`/etc/borne/borne.toml`) plus `BORNE_*` overrides.

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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from borne_common.ids import DEPARTMENT_PATTERN, IDENTIFIER_PATTERN, is_platform_identity

DEFAULT_CONFIG_PATH = Path("/etc/borne/borne.toml")
ENV_PREFIX = "BORNE_"
ENV_NESTED_DELIMITER = "__"

# Every section any process reads; a section outside this set is a typo and is reported as such.
DEFAULT_KIOSK_STATE_PATH = Path("/run/borne/kiosk-state.json")
DEFAULT_DEVICE_CONFIG_PATH = Path("/var/lib/borne/device-config.json")
# Keys both processes read live in [device]. Before that, the kiosk read kiosk_state_path from [kiosk] and the
# sync agent from [sync], and device_config_path was [sync]'s; settings files written then (by `borne provision
# init`) still load: each process takes the old key as the new one.
_FORMER_DEVICE_KEYS = {"kiosk_state_path": ("kiosk", "sync"), "device_config_path": ("sync",)}
KNOWN_SECTIONS = frozenset({"device", "outbox", "kiosk", "models", "voice", "sync", "ingest", "fleet", "dashboard"})

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
    kiosk_state_path: Path = Field(
        default=DEFAULT_KIOSK_STATE_PATH,
        description="Where the kiosk writes its microphone and model state and the sync agent reads it for its Status.",
    )
    device_config_path: Path = Field(
        default=DEFAULT_DEVICE_CONFIG_PATH,
        description="Where the sync agent keeps the last valid DeviceConfig from the platform and the kiosk reads it.",
    )


def _moved_device_keys(data: dict[str, Any]) -> dict[str, Any]:
    """`[kiosk]`/`[sync] kiosk_state_path` and `[sync] device_config_path` of older settings files, moved to
    `[device]` (where a value already there wins)."""
    for key, sections in _FORMER_DEVICE_KEYS.items():
        for name in sections:
            section = data.get(name)
            if not isinstance(section, Mapping) or key not in section:
                continue
            section = dict(section)
            former = section.pop(key)
            device = data.get("device", {})
            if isinstance(device, BaseModel):
                device = device.model_dump()
            elif isinstance(device, Mapping):
                device = dict(device)
            if isinstance(device, dict):
                device.setdefault(key, former)
            data = {**data, name: section, "device": device}
    return data


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

    @model_validator(mode="before")
    @classmethod
    def _former_device_keys(cls, data: Any) -> Any:
        return _moved_device_keys(data) if isinstance(data, dict) else data

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
        # Moved before the sections are picked: a process without [sync] still finds its former keys.
        values = _moved_device_keys(read_toml(path, required=explicit))
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
