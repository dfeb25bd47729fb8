"""`borne fleet status`: every terminal's latest Status and the alerts computed from it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from borne_common.cli import config_option
from platform_ingest.cli import db_option, platform_settings
from platform_ingest.settings import IngestSettings
from platform_ingest.store import StoreError, open_store


@click.group()
def fleet() -> None:
    """The terminals as the central platform sees them (their Status, kept by `borne ingest run`)."""


@fleet.command("status")
@config_option
@db_option
@click.option("--alerts", "alerts_only", is_flag=True, help="Only the terminals with an alert.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per terminal, a line each.")
@click.option("--check", is_flag=True, help="Exit with status 1 when a terminal has an alert (for a monitoring probe).")
def status(config_path: Path | None, db: str | None, alerts_only: bool, as_json: bool, check: bool) -> None:
    """One line per terminal (site, state, last seen, version, configuration, backlog, microphone, model) and
    its alerts: silent during opening hours (those of the latest configuration sent to it, else [fleet]'s),
    microphone or model not ready, records waiting too long."""
    from platform_ingest.fleet.status import fleet_rows, render

    settings = platform_settings(IngestSettings, config_path, db)
    now = datetime.now(UTC)
    try:
        with open_store(settings.ingest.db) as store:
            statuses = store.terminals()
            published = store.latest_device_configs()
    except StoreError as error:
        raise click.ClickException(str(error)) from None
    rows = fleet_rows(statuses, now, settings.fleet, published)
    if alerts_only:
        rows = [row for row in rows if row.alerts]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.to_json(now), ensure_ascii=False))
    else:
        click.echo(render(rows, now))
    if check and any(row.alerts for row in rows):
        raise SystemExit(1)


@fleet.group("config")
def config() -> None:
    """Configurations published to the terminals (question, follow-ups, languages, opening hours)."""


@config.command("publish")
@config_option
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--site", default=None, help="Every terminal of this site.")
@click.option("--device", default=None, help="This terminal (with --site if two sites have one of that name).")
@click.option("--all", "every", is_flag=True, help="Every terminal that has reported a Status.")
@click.option("--dry-run", is_flag=True, help="Check the file and show what would be published, publish nothing.")
@db_option
def publish(
    config_path: Path | None,
    file: Path,
    site: str | None,
    device: str | None,
    every: bool,
    dry_run: bool,
    db: str | None,
) -> None:
    """Check FILE (a DeviceConfig in TOML, without config_version) and publish it, with the next version,
    retained on the config topic of the chosen terminals; each kiosk applies it at its next idle moment."""
    from platform_ingest.fleet.config import ConfigError, choose_terminals, next_version, read_config_file
    from platform_ingest.fleet.config import publish as publish_config

    settings = platform_settings(IngestSettings, config_path, db)
    try:
        with open_store(settings.ingest.db) as store:
            document = read_config_file(file, next_version(store))
            targets = choose_terminals(store.terminals(), site=site, device=device, every=every)
            if dry_run:
                click.echo(f"would publish version {document.config_version} to {len(targets)} terminal(s):")
                click.echo("\n".join(f"  {s}/{d}" for s, d in targets))
                return
            reached = publish_config(settings, document, targets, store)
    except (ConfigError, StoreError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"published version {document.config_version} to {len(reached)} terminal(s)")
