"""What the central platform's commands share (`borne ingest`, `borne fleet`, `borne dashboard`): the `--db`
option and the settings it overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import click

from borne_common.cli import load_settings
from platform_ingest.settings import IngestSettings

S = TypeVar("S", bound=IngestSettings)

db_option = click.option(
    "--db",
    "db",
    default=None,
    metavar="URL",
    help="Database URL (sqlite:////path.db or postgresql://...); overrides [ingest] db.",
)


def platform_settings(cls: type[S], config_path: Path | None, db: str | None, **sections: dict[str, Any]) -> S:
    """`cls` loaded from `config_path`, with `--db` over `[ingest] db` and the non-empty `sections` overrides."""
    overrides = {name: values for name, values in sections.items() if values}
    if db:
        overrides["ingest"] = {**overrides.get("ingest", {}), "db": db}
    return load_settings(cls, config_path, **overrides)
