"""`borne ingest run | stats | health | sites import | dead-letters`: the central consumer, indicators, health."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from borne_common.cli import config_option, load_settings
from platform_ingest.cli import db_option
from platform_ingest.settings import IngestSettings
from platform_ingest.sites import SitesFileError, read_sites
from platform_ingest.store import GROUPS, Indicator, Store, StoreError, iso_month, open_store

logger = logging.getLogger(__name__)


def _settings(config_path: Path | None, **ingest_overrides: Any) -> IngestSettings:
    overrides = {key: value for key, value in ingest_overrides.items() if value is not None}
    return load_settings(IngestSettings, config_path, **({"ingest": overrides} if overrides else {}))


def _open(url: str) -> Store:
    try:
        return open_store(url)
    except StoreError as error:
        raise click.ClickException(str(error)) from None


@click.group()
def ingest() -> None:
    """Central consumer: store the batches terminals send, acknowledge them, report indicators."""


@ingest.command("run")
@config_option
@click.option("--broker", default=None, metavar="HOST[:PORT]", help="Broker address; overrides [ingest] broker_host.")
@db_option
@click.option("--client-id", default=None, help="MQTT client id; overrides [ingest] client_id.")
@click.option("--group", default=None, help="Shared subscription group; overrides [ingest] share_group.")
def run(config_path: Path | None, broker: str | None, db: str | None, client_id: str | None, group: str | None) -> None:
    """Consume batches from the broker until SIGTERM: validate, store, acknowledge, dead-letter."""
    from borne_common.mqtt import BrokerConfigError
    from platform_ingest.ingest.service import IngestService

    host, port = _split_broker(broker)
    settings = _settings(config_path, broker_host=host, broker_port=port, db=db, client_id=client_id, share_group=group)
    section = settings.ingest
    if section.db.startswith(("postgresql://", "postgres://")):
        _require_psycopg()
    sites = None
    if section.sites_file is not None:
        try:
            sites = read_sites(section.sites_file)
        except SitesFileError as error:
            raise click.ClickException(f"[ingest] sites_file: {error}") from None

    def on_ready(store: Store) -> None:
        if sites is not None:
            logger.info("imported %d site(s) from %s", store.upsert_sites(sites), section.sites_file)

    try:
        service = IngestService(section, lambda: open_store(section.db), on_ready=on_ready)
    except BrokerConfigError as error:
        raise click.ClickException(str(error)) from None
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        logger.info("signal %d: stopping after the current message", signum)
        stop.set()

    previous = {number: signal.signal(number, request_stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.run(stop)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _require_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "[ingest] db is a PostgreSQL URL, which requires the psycopg package: pip install 'borne[ingest-pg]'"
        ) from None


def _split_broker(broker: str | None) -> tuple[str | None, int | None]:
    if broker is None:
        return None, None
    host, colon, port = broker.rpartition(":")
    if not colon or not port.isdigit() or "]" in port:
        return broker, None
    return host.strip("[]"), int(port)


@ingest.command("stats")
@config_option
@db_option
@click.option(
    "--by",
    "group_by",
    type=click.Choice(GROUPS),
    default="site",
    show_default=True,
    help="Group by site, département or region.",
)
@click.option("--month", default=None, metavar="YYYY-MM", help="Only this month (local time of the sites).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def stats(config_path: Path | None, db: str | None, group_by: str, month: str | None, as_json: bool) -> None:
    """Satisfaction indicators per site, département or region and month."""
    if month is not None:
        try:
            month = iso_month(month)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--month") from None
    settings = _settings(config_path, db=db)
    with _open(settings.ingest.db) as store:
        try:
            indicators = store.indicators(group_by, month)  # type: ignore[arg-type]
        except StoreError as error:
            raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps({"by": group_by, "month": month, "indicators": [_as_dict(i) for i in indicators]}))
    else:
        click.echo(_table(group_by, indicators))


def _as_dict(indicator: Indicator) -> dict[str, Any]:
    return {
        "group": indicator.group,
        "label": indicator.label,
        "month": indicator.month,
        "records": indicator.records,
        "satisfied": indicator.satisfied,
        "satisfaction_rate": round(indicator.satisfaction_rate, 4),
        "comments": indicator.comments,
        "bursts": indicator.bursts,
    }


def _table(group_by: str, indicators: list[Indicator]) -> str:
    if not indicators:
        return "no records"
    header = (group_by, "name", "month", "records", "satisfied %", "comments", "bursts")
    rows = [
        (
            i.group,
            i.label,
            i.month,
            str(i.records),
            f"{100 * i.satisfaction_rate:.1f}",
            str(i.comments),
            str(i.bursts),
        )
        for i in indicators
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


@ingest.group("sites")
def sites_group() -> None:
    """The sites directory: which département (and region) each site is in."""


@sites_group.command("import")
@config_option
@db_option
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def sites_import(config_path: Path | None, db: str | None, file: Path) -> None:
    """Insert or update sites from a CSV file with the columns site_id,name,department."""
    try:
        sites = read_sites(file)
    except SitesFileError as error:
        raise click.ClickException(str(error)) from None
    settings = _settings(config_path, db=db)
    with _open(settings.ingest.db) as store:
        try:
            written = store.upsert_sites(sites)
        except StoreError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"imported {written} site(s) from {file}")


@ingest.command("purge-dead-letters")
@config_option
@db_option
@click.option(
    "--older-than-days",
    type=click.IntRange(0, 3650),
    default=None,
    help="Delete those received more than this many days ago [default: [ingest] dead_letter_retention_days].",
)
def purge_dead_letters(config_path: Path | None, db: str | None, older_than_days: int | None) -> None:
    """Delete old dead letters now (the running service does it at start and daily)."""
    settings = _settings(config_path, db=db)
    days = settings.ingest.dead_letter_retention_days if older_than_days is None else older_than_days
    before = datetime.now(UTC) - timedelta(days=days)
    with _open(settings.ingest.db) as store:
        try:
            purged = store.purge_dead_letters(before)
        except StoreError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"deleted {purged} dead letter(s) received before {before:%Y-%m-%d %H:%M} UTC")


@ingest.command("dead-letters")
@config_option
@db_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000), help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (payload as text, replaced if not UTF-8).")
def dead_letters(config_path: Path | None, db: str | None, limit: int, as_json: bool) -> None:
    """Payloads ingest could not use, newest first, with the reason."""
    settings = _settings(config_path, db=db)
    with _open(settings.ingest.db) as store:
        letters = store.dead_letters(limit)
    for letter in letters:
        if as_json:
            entry = {
                "id": letter.id,
                "topic": letter.topic,
                "received_at": letter.received_at.isoformat(),
                "payload_bytes": letter.payload_bytes,
                "reason": letter.reason,
                "payload": letter.payload.decode("utf-8", "replace"),
            }
            click.echo(json.dumps(entry, ensure_ascii=False))
        else:
            click.echo(f"#{letter.id} {letter.received_at:%Y-%m-%d %H:%M} {letter.topic} ({letter.payload_bytes} B)")
            click.echo(f"    {letter.reason}")


@ingest.command("health")
@config_option
@db_option
@click.option(
    "--hours", default=1.0, show_default=True, type=click.FloatRange(0.01, 24 * 90), help="How far back to look."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def health(config_path: Path | None, db: str | None, hours: float, as_json: bool) -> None:
    """Dead letters per terminal and reason, redeliveries to ingest, and the oldest record a terminal still
    waits to have acknowledged (from the terminals' Status)."""
    from platform_ingest.ingest.health import render, summarise

    settings = _settings(config_path, db=db)
    now = datetime.now(UTC)
    since = now - timedelta(hours=hours)
    with _open(settings.ingest.db) as store:
        try:
            rows = store.health_rows(since)
        except StoreError as error:
            raise click.ClickException(str(error)) from None
    report = summarise(rows, since, now)
    click.echo(json.dumps(report.to_json(), ensure_ascii=False) if as_json else render(report))
