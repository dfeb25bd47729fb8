"""`borne simulate`: simulated citizens through the real flow into the outbox."""

from __future__ import annotations

from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import click

from kiosk_app.flow import Identity
from kiosk_app.settings import KioskSettings
from kiosk_app.simulate import simulate as run_simulation
from sync_agent.cli import config_option, load_settings, open_outbox
from sync_agent.outbox import OutboxError


@click.command()
@config_option
@click.option("--records", "-n", type=click.IntRange(min=1), required=True, help="How many records to store.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same sessions).")
@click.option(
    "--days",
    type=click.FloatRange(min=0.01),
    default=7.0,
    show_default=True,
    help="Spread the sessions over this many days before now.",
)
def simulate(config_path: Path | None, records: int, seed: int, days: float) -> None:
    """Play simulated citizen sessions through the kiosk flow until --records are stored in the outbox."""
    settings = load_settings(KioskSettings, config_path)
    identity = Identity(settings.device.site_id, settings.device.device_id, version("borne"))
    with open_outbox(settings.outbox.path, settings.outbox.busy_timeout_s) as outbox:
        try:
            summary = run_simulation(
                settings.kiosk,
                identity,
                outbox,
                records=records,
                seed=seed,
                end=datetime.now().astimezone(),
                days=days,
            )
        except OutboxError as error:
            raise click.ClickException(str(error)) from None
    ratings = ", ".join(f"{rating}: {count}" for rating, count in sorted(summary.by_rating.items()))
    flags = ", ".join(f"{flag}: {count}" for flag, count in sorted(summary.flagged.items())) or "none"
    click.echo(
        f"stored {summary.records} record(s) in {settings.outbox.path}\n"
        f"  by rating  {ratings}\n  comments   {summary.with_comment}\n  flags      {flags}"
    )
