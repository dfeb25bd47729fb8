"""`borne bench NAME`: run one benchmark; each prints a table and writes JSON (default under bench/results/)."""

from __future__ import annotations

import click

from borne_cli.main import LazyGroup

BENCHMARKS: dict[str, str] = {
    "moderation": "bench.moderation:moderation",
    "asr": "bench.asr:asr",
    "sync": "bench.sync:sync",
    "kiosk": "bench.kiosk:kiosk",
    "model-load": "bench.model_load:model_load",
    "ingest": "bench.ingest:ingest",
    "dashboard": "bench.dashboard:dashboard",
}


@click.group(cls=LazyGroup, lazy=BENCHMARKS)
def bench() -> None:
    """Speed, memory and quality benchmarks (see docs/benchmarks.md)."""
