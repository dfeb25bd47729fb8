"""`borne bench ingest`: N simulated terminals send M records through a local Mosquitto to 1, 2, 4… `borne
ingest run` consumers sharing one subscription group, into a fresh PostgreSQL schema.

The terminals are one MQTT client publishing real `Batch` payloads (built beforehand from the contract's
models, as the sync agent sends them: up to 200 records a batch, QoS 1) on each terminal's batch topic, and
keeping at most 4 batches a terminal waiting for the platform's Ack, as the agent does; each Ack lets that
terminal send its next batch. Time runs from the first publish to the last Ack (an Ack goes out only after its
batch is committed); then the records are counted in the database and must all be there.

The alternative, on the same payloads in the same run: the same consumers (IngestService, the same settings)
on a store that does not keep `site_month` up to date, records only, as a store whose indicators come from a
scan or from a materialised view refreshed later would ingest. It answers what keeping the aggregate in each
batch's transaction costs ingest, consumers contending on the same site-month rows included.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import click

from bench.kiosk import cpu_seconds
from bench.network import DEFAULT_POSTGRES_URL, fresh_schema, synthetic_sites
from bench.results_file import machine, out_option

ROOT = Path(__file__).resolve().parents[1]
GROUP = "bench"
IN_FLIGHT = 4  # the sync agent's max_batches_in_flight
PARIS = timezone(timedelta(hours=1))
QUICK_TERMINALS, QUICK_RECORDS, QUICK_CONSUMERS = 20, 4000, "1,2"
STORES = {"site_month": "site_month (shipped)", "records_only": "records only (no aggregate)"}


@dataclass
class Run:
    store: str
    consumers: int
    terminals: int
    batches: int
    records: int
    seconds: float
    records_per_s: float
    records_per_s_per_consumer: float
    consumer_cpu_s_per_1000: float
    acked: int
    stored: int
    counted: int
    """Records counted in site_month (0 for the records-only store)."""


def build_payloads(
    terminals: int, records: int, batch_records: int, seed: int = 14
) -> list[list[tuple[str, str, bytes]]]:
    """Per terminal, its batches (topic, batch id, JSON) in sending order: `records` records dealt to `terminals`
    terminals of the synthetic sites, over the 12 months of 2026, a fifth with a comment, 2 % flagged."""
    from sync_agent.contract import Batch, Comment, Flag, Rating, Record, new_record_id, topic

    rng = random.Random(seed)
    sites = synthetic_sites()
    sent_at = datetime.now(UTC)
    plan: list[list[tuple[str, str, bytes]]] = []
    for index in range(terminals):
        site = sites[index % len(sites)].site_id
        device = f"bench-{index:05d}"
        own = records // terminals + (1 if index < records % terminals else 0)
        made: list[Record] = []
        for _ in range(own):
            period = datetime(2026, rng.randint(1, 12), rng.randint(1, 28), rng.randint(9, 17), tzinfo=PARIS)
            made.append(
                Record(
                    record_id=new_record_id(period),
                    site_id=site,
                    device_id=device,
                    period=period,
                    rating=Rating(rng.choices((1, 2, 3, 4), (1, 1, 3, 5))[0]),
                    answers={"resolved": rng.choice(("yes", "no"))},
                    comment=Comment(
                        text="Accueil rapide, merci.", language="fr", asr_model="whisper-base", confidence=0.8
                    )
                    if rng.random() < 0.2
                    else None,
                    flags=[Flag.BURST_SUSPECTED] if rng.random() < 0.02 else [],
                    app_version="0.9.0",
                )
            )
        batches = []
        for start in range(0, own, batch_records):
            batch = Batch(
                batch_id=uuid.uuid4(), site_id=site, device_id=device, records=made[start : start + batch_records],
                sent_at=sent_at,
            )  # fmt: skip
            batches.append((topic(site, device, "batch"), str(batch.batch_id), batch.to_json().encode()))
        plan.append(batches)
    return plan


class Terminals:
    """One MQTT client sending every terminal's batches, at most IN_FLIGHT unacknowledged per terminal."""

    def __init__(
        self, host: str, port: int, plan: list[list[tuple[str, str, bytes]]], in_flight: int = IN_FLIGHT
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.plan = plan
        self.in_flight = in_flight
        self.total = sum(len(batches) for batches in plan)
        self.next = [0] * len(plan)
        self.device_index = {f"bench-{index:05d}": index for index in range(len(plan))}
        self.waiting: set[str] = set()
        self.acked = self.accepted = self.duplicates = self.rejected = 0
        self.first_publish = self.last_ack = 0.0
        self.done = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-terminals", protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(65535)
        self.client.max_queued_messages_set(0)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = self._on_ack
        self.client.connect(host, port)
        connection = self.client.socket()
        if isinstance(connection, socket.socket):  # paho leaves Nagle on: each Ack would wait for a delayed ACK
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.loop_start()
        self.client.subscribe("borne/v1/+/+/ack", qos=1)
        if not subscribed.wait(10):
            raise click.ClickException("the simulated terminals could not subscribe to their Acks")

    def _send(self, index: int) -> None:
        batches = self.plan[index]
        if self.next[index] < len(batches):
            batch_topic, batch_id, payload = batches[self.next[index]]
            self.next[index] += 1
            self.waiting.add(batch_id)
            self.client.publish(batch_topic, payload, qos=1)

    def start(self) -> None:
        with self._lock:
            self.first_publish = time.perf_counter()
            for index in range(len(self.plan)):
                for _ in range(self.in_flight):
                    self._send(index)

    def _on_ack(self, client: object, userdata: object, message: object) -> None:
        ack = json.loads(message.payload)  # type: ignore[attr-defined]
        device = message.topic.split("/")[3]  # type: ignore[attr-defined]
        with self._lock:
            if ack["batch_id"] not in self.waiting:
                return  # an Ack delivered twice
            self.waiting.discard(ack["batch_id"])
            self.acked += 1
            self.accepted += len(ack["accepted"])
            self.duplicates += len(ack["duplicates"])
            self.rejected += len(ack["rejected"])
            self._send(self.device_index[device])
            if self.acked == self.total:
                self.last_ack = time.perf_counter()
                self.done.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _mosquitto(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A plain-TCP, anonymous Mosquitto on a free loopback port (the benchmark measures ingest, not TLS)."""
    from provisioning.local_broker import free_port, start_mosquitto

    port = free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 100\n"
        f"max_queued_messages 100000\nset_tcp_nodelay true\nlog_dest file {directory / 'mosquitto.log'}\n"
        "log_type error\nlog_type warning\n" + ("user root\n" if os.geteuid() == 0 else "")
    )
    return start_mosquitto(config, port, log=directory / "mosquitto.log"), port


def _start_consumers(
    directory: Path, port: int, db: str, count: int, store: str
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    consumers = []
    for index in range(count):
        config = directory / f"ingest-{store}-{index}.toml"
        config.write_text(
            f'[ingest]\nbroker_host = "127.0.0.1"\nbroker_port = {port}\ntls = false\n'
            f'client_id = "ingest-{store}-{index}"\nshare_group = "{GROUP}"\ndb = "{db}"\n'
        )
        log = directory / f"ingest-{store}-{index}.log"
        if store == "site_month":  # the command as shipped
            command = [sys.executable, "-m", "borne_cli", "-v", "ingest", "run", "--config", str(config)]
        else:
            command = [sys.executable, "-m", "bench.ingest", str(config)]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=output, stderr=output
            )
        consumers.append((process, log))
    deadline = time.monotonic() + 60
    for process, log in consumers:
        while "subscribed to" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise click.ClickException(f"a consumer did not subscribe: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
    return consumers


def _count(db: str) -> tuple[int, int]:
    """(records stored, records counted in site_month)."""
    import psycopg

    with psycopg.connect(db, autocommit=True) as connection:
        stored = connection.execute("SELECT count(*) FROM records").fetchone()
        counted = connection.execute("SELECT COALESCE(SUM(records), 0) FROM site_month").fetchone()
    return int(stored[0]) if stored else 0, int(counted[0]) if counted else 0


def _run(root: Path, server: str, plan: list[list[tuple[str, str, bytes]]], consumers: int, store: str) -> Run:
    """One run with its own broker (no session left by another run) and its own schema."""
    from platform_ingest.store import open_store

    directory = root / f"{store}-{consumers}"
    directory.mkdir()
    records = sum(payload.count(b'"record_id"') for batches in plan for _, _, payload in batches)
    broker, port = _mosquitto(directory)
    with fresh_schema(server, "borne_bench_ingest") as db:
        with open_store(db) as opened:
            opened.upsert_sites(synthetic_sites())
        processes = _start_consumers(directory, port, db, consumers, store)
        terminals = Terminals("127.0.0.1", port, plan)
        try:
            cpu_before = sum(cpu_seconds(process.pid) for process, _ in processes)
            terminals.start()
            terminals.done.wait(max(60.0, records / 200))
            cpu = sum(cpu_seconds(process.pid) for process, _ in processes) - cpu_before
        finally:
            terminals.close()
            for process, _ in processes:
                process.send_signal(signal.SIGTERM)
            for process, _ in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            broker.terminate()
            broker.wait(timeout=10)
        seconds = (terminals.last_ack if terminals.done.is_set() else time.perf_counter()) - terminals.first_publish
        stored, counted = _count(db)
    return Run(
        store=STORES[store],
        consumers=consumers,
        terminals=len(plan),
        batches=terminals.total,
        records=records,
        seconds=seconds,
        records_per_s=stored / seconds,
        records_per_s_per_consumer=stored / seconds / consumers,
        consumer_cpu_s_per_1000=cpu * 1000 / max(stored, 1),
        acked=terminals.accepted,
        stored=stored,
        counted=counted,
    )


@click.command(name="ingest")
@click.option("--terminals", type=click.IntRange(min=1), default=1000, show_default=True, help="Simulated terminals.")
@click.option(
    "--records", type=click.IntRange(min=1), default=1_000_000, show_default=True, help="Records sent in each run."
)
@click.option(
    "--consumers", default="1,2,4", show_default=True, help="Consumer counts to run, comma-separated (one run each)."
)
@click.option(
    "--batch-records",
    type=click.IntRange(1, 200),
    default=200,
    show_default=True,
    help="Records per batch (the sync agent's batch_max_records).",
)
@click.option(
    "--compare/--no-compare",
    default=True,
    show_default=True,
    help="Also run each consumer count on the records-only store (no site_month).",
)
@click.option("--postgres-url", default=DEFAULT_POSTGRES_URL, show_default=True, help="PostgreSQL server to use.")
@click.option(
    "--quick",
    is_flag=True,
    help=f"A small run for tests: {QUICK_TERMINALS} terminals, {QUICK_RECORDS} records, consumers {QUICK_CONSUMERS}.",
)
@out_option("ingest")
def ingest(
    terminals: int,
    records: int,
    consumers: str,
    batch_records: int,
    compare: bool,
    postgres_url: str,
    quick: bool,
    out: Path,
) -> None:
    """M records from N simulated terminals through Mosquitto into 1, 2, 4 consumers of one share group,
    PostgreSQL: records per second, against the same consumers without the site_month update."""
    if quick:
        terminals, records, consumers = QUICK_TERMINALS, QUICK_RECORDS, QUICK_CONSUMERS
    try:
        counts = [int(value) for value in consumers.split(",")]
    except ValueError:
        raise click.BadParameter("expected numbers separated by commas, e.g. 1,2,4", param_hint="--consumers") from None
    if records < terminals:
        raise click.BadParameter("at least one record per terminal", param_hint="--records")
    started = time.perf_counter()
    plan = build_payloads(terminals, records, batch_records)
    click.echo(
        f"built {sum(len(b) for b in plan)} batches of {records} records for {terminals} terminals in "
        f"{time.perf_counter() - started:.1f} s",
        err=True,
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="borne-bench-ingest-") as name:
        for count in counts:
            for store in ("site_month", "records_only") if compare else ("site_month",):
                runs.append(_run(Path(name), postgres_url, plan, count, store))
                run = runs[-1]
                click.echo(f"  {run.store}, {count} consumer(s): {run.records_per_s:.0f} records/s", err=True)
    header = (
        f"{'store':<28} {'consumers':>9} {'records':>9} {'seconds':>8} {'rec/s':>8} {'rec/s/cons':>10} "
        f"{'cpu s/1k':>8} {'stored':>9} {'counted':>9}"
    )
    click.echo(header)
    for run in runs:
        click.echo(
            f"{run.store:<28} {run.consumers:>9} {run.records:>9} {run.seconds:>8.2f} {run.records_per_s:>8.0f} "
            f"{run.records_per_s_per_consumer:>10.0f} {run.consumer_cpu_s_per_1000:>8.3f} {run.stored:>9} "
            f"{run.counted:>9}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "ingest",
                "machine": machine("paho-mqtt", "psycopg", "pydantic"),
                "terminals": terminals,
                "records": records,
                "batch_records": batch_records,
                "runs": [asdict(run) for run in runs],
            },
            indent=2,
        )
    )
    click.echo(f"wrote {out}")
    if any(run.stored != records or run.acked != records for run in runs):
        raise click.ClickException("not every record was stored and acknowledged: the figures above are not valid")
    if any(run.counted != records for run in runs if run.store == STORES["site_month"]):
        raise click.ClickException("site_month does not count every record stored")


def _consume_records_only(config: Path) -> None:
    """The alternative's consumer: `borne ingest run`'s service on a PostgreSQL store without site_month."""
    import logging

    from borne_common.cli import load_settings
    from platform_ingest.ingest.service import IngestService
    from platform_ingest.settings import IngestSettings
    from platform_ingest.store import PostgresStore

    class RecordsOnly(PostgresStore):
        def _add_counts(self, cursor: object, counts: object) -> None:
            pass

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    section = load_settings(IngestSettings, config).ingest
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *args: stop.set())
    IngestService(section, lambda: RecordsOnly(section.db)).run(stop)


if __name__ == "__main__":
    _consume_records_only(Path(sys.argv[1]))
