"""`borne`: one command, a subcommand per process; each subcommand lives in its package's `cli.py`.

Subcommands are imported only when called, so `borne --help` stays fast and a process never
imports what another needs (Kivy, faster-whisper, psycopg).
"""

from __future__ import annotations

import importlib
import logging
import os

import click

# command name -> "module:attribute" of a click command or group.
SUBCOMMANDS: dict[str, str] = {
    "simulate": "kiosk_app.cli:simulate",
    "kiosk": "kiosk_app.cli:kiosk",
    "outbox": "sync_agent.cli:outbox",
    "schema": "sync_agent.cli:schema",
    "sync": "sync_agent.cli:sync",
    "provision": "provisioning.cli:provision",
    "bench": "bench.cli:bench",
    "moderate": "edge_models.moderation.cli:moderate",
    "transcribe": "edge_models.cli:transcribe",
    "models": "edge_models.cli:models",
    "ingest": "platform_ingest.ingest.cli:ingest",
    "fleet": "platform_ingest.fleet.cli:fleet",
    "dashboard": "platform_ingest.dashboard.cli:dashboard",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module_name, attribute = self._lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{self._lazy[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
@click.version_option(package_name="borne")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Borne: satisfaction terminal for France services offices."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
