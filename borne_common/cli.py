"""The `--config` option every process command shares, and settings loaded as a click error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from borne_common.settings import DEFAULT_CONFIG_PATH, BorneSettings, SettingsError

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=BorneSettings)


def config_option(function: F) -> F:
    """`--config FILE` (env BORNE_CONFIG), default /etc/borne/borne.toml."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="BORNE_CONFIG",
        default=None,
        help=f"Settings file (TOML). Default: {DEFAULT_CONFIG_PATH} if it exists, else built-in defaults.",
    )(function)


def load_settings(cls: type[S], config_path: Path | None, **overrides: Any) -> S:
    """The process's settings, or a click error that names the file, key, value and expectation."""
    try:
        return cls.load(config_path, **overrides)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


__all__ = ["config_option", "load_settings"]
