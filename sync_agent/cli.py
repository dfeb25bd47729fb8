"""`borne sync`, `borne outbox ...` and `borne schema ...`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import Field

from borne_common.cli import config_option, load_settings
from borne_common.settings import BorneSettings
from sync_agent.contract import json_schemas, schema_text
from sync_agent.outbox import Outbox, OutboxError, OutboxStats
from sync_agent.settings import OutboxSection, SyncSettings


def open_outbox(path: Path, busy_timeout_s: float) -> Outbox:
    try:
        return Outbox.open(path, busy_timeout_s=busy_timeout_s)
    except OutboxError as error:
        raise click.ClickException(str(error)) from None


class OutboxSettings(BorneSettings):
    """The part of the settings that outbox commands read."""

    outbox: OutboxSection = Field(default_factory=OutboxSection)


@click.group()
def outbox() -> None:
    """Inspect and maintain the local outbox (SQLite)."""


@outbox.command("stats")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def outbox_stats(config_path: Path | None, as_json: bool) -> None:
    """Counts by state, oldest pending age and file size."""
    settings = load_settings(OutboxSettings, config_path)
    with open_outbox(settings.outbox.path, settings.outbox.busy_timeout_s) as box:
        stats = box.stats(now=datetime.now(UTC))
    if as_json:
        click.echo(json.dumps(_stats_dict(stats), sort_keys=True))
    else:
        click.echo(_stats_table(stats))


@outbox.command("purge")
@config_option
def outbox_purge(config_path: Path | None) -> None:
    """Delete acknowledged and rejected records older than [outbox] retention_days."""
    settings = load_settings(OutboxSettings, config_path)
    with open_outbox(settings.outbox.path, settings.outbox.busy_timeout_s) as box:
        removed = box.purge(now=datetime.now(UTC), retention_days=settings.outbox.retention_days)
    click.echo(f"purged {removed} record(s) older than {settings.outbox.retention_days} day(s)")


def _stats_dict(stats: OutboxStats) -> dict[str, Any]:
    return {
        "path": stats.path,
        "counts": stats.counts,
        "backlog": stats.backlog,
        "oldest_pending_age_s": stats.oldest_pending_age_s,
        "file_bytes": stats.file_bytes,
        "recovery": stats.recovery,
    }


def _stats_table(stats: OutboxStats) -> str:
    age = "-" if stats.oldest_pending_age_s is None else f"{stats.oldest_pending_age_s / 3600:.1f} h"
    rows = [("outbox", stats.path)]
    rows += [(state, str(count)) for state, count in stats.counts.items()]
    rows += [("oldest pending", age), ("file size", f"{stats.file_bytes / 1024:.0f} KiB")]
    if stats.recovery:
        rows.append(("recovery", stats.recovery))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


@click.group()
def schema() -> None:
    """JSON Schemas of the wire contract."""


@schema.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def schema_export(directory: Path) -> None:
    """Write one `<name>.schema.json` per wire model into DIRECTORY."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in json_schemas().items():
        target = directory / f"{name}.schema.json"
        target.write_text(schema_text(content), encoding="utf-8")
        click.echo(f"wrote {target}")


@click.command()
@config_option
@click.option("--once", is_flag=True, help="Drain the outbox, wait for every Ack, then exit (0: nothing left).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    help="With --once: give up after this many seconds (exit 1, records stay in the outbox).",
)
def sync(config_path: Path | None, once: bool, timeout: float | None) -> None:
    """Send the outbox's records to the central platform over MQTT until each is acknowledged."""
    import signal
    import sys
    import threading

    from sync_agent.agent import DrainProgress, SyncAgent

    settings = load_settings(SyncSettings, config_path)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    if timeout is not None:
        timer = threading.Timer(timeout, stop.set)
        timer.daemon = True
        timer.start()
    with open_outbox(settings.outbox.path, settings.outbox.busy_timeout_s) as box:
        agent = SyncAgent(settings, box)
        backlog = box.stats(now=datetime.now(UTC)).backlog
        if once and sys.stdout.isatty():
            with click.progressbar(length=backlog, label="records acknowledged") as bar:
                shown = 0

                def update(progress: DrainProgress) -> None:
                    nonlocal shown
                    done = progress.acked + progress.rejected
                    bar.update(done - shown)
                    shown = done

                drained = agent.run(stop, once=True, on_progress=update)
        else:
            drained = agent.run(stop, once=once)
        left = box.stats(now=datetime.now(UTC)).backlog
    if once:
        progress = agent.progress
        click.echo(
            f"acknowledged {progress.acked} record(s), rejected {progress.rejected}, "
            f"{progress.batches_sent} batch(es) sent ({progress.resent} again); {left} left in the outbox"
        )
        if not drained:
            raise click.ClickException(f"{left} record(s) not acknowledged yet; they stay in the outbox")
