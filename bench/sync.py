"""`borne bench sync`: N pending records drained through a local broker into ingest, with Acks.

Two ways on the same input, in the same run, each into a fresh ingest store:
- `borne sync --once`: the real agent (batches, several in flight, acked by the platform);
- naive: one message per record, waiting for the broker's PUBACK of each before the next, then
  waiting until ingest has stored them all.
Reported: records per second end to end (from starting the sender to the last record stored and,
for the agent, acknowledged), the sender's CPU seconds per 1,000 records, peak RSS of sender and ingest.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import click

from bench.results_file import machine, out_option

BORNE = str(Path(sys.executable).with_name("borne"))
SITE, DEVICE = "fs-bench-01", "borne-bench"


@dataclass
class Run:
    method: str
    records: int
    seconds: float
    records_per_s: float
    sender_cpu_s_per_1000: float
    sender_peak_rss_mb: float
    ingest_peak_rss_mb: float
    stored: int


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _stored(store: Path) -> int:
    if not store.exists():
        return 0
    conn = sqlite3.connect(store, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM records").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


class _Setup:
    def __init__(self, root: Path, records: int) -> None:
        from kiosk_app.flow import Identity
        from kiosk_app.settings import KioskSection
        from kiosk_app.simulate import simulate
        from provisioning.broker import FleetDevice
        from provisioning.local_broker import LocalBroker, LocalPKI
        from sync_agent.outbox import Outbox

        self.root = root
        self.pki = LocalPKI(root / "pki")
        self.broker = LocalBroker(
            root / "broker", self.pki, [FleetDevice(SITE, DEVICE)], ingest_identities=("ingest-agent", "ingest-naive")
        ).start()
        self.template = root / "template.db"
        with Outbox.open(self.template) as box:
            simulate(
                KioskSection(),
                Identity(SITE, DEVICE, "bench"),
                box,
                records=records,
                seed=1,
                end=datetime.now().astimezone(),
            )
        self.device_cert, self.device_key = self.pki.client(DEVICE)

    def fresh(self, name: str) -> tuple[Path, Path, Path]:
        """(outbox, sync config, ingest config) for one method, with its own store."""
        directory = self.root / name
        directory.mkdir()
        outbox = directory / "outbox.db"
        shutil.copy(self.template, outbox)
        sync_config = directory / "sync.toml"
        sync_config.write_text(
            f'[device]\nsite_id = "{SITE}"\ndevice_id = "{DEVICE}"\nkiosk_state_path = "{directory}/k.json"\n'
            f'[outbox]\npath = "{outbox}"\n'
            f'[sync]\nbroker_host = "{self.broker.host}"\nbroker_port = {self.broker.port}\n'
            f'tls_ca = "{self.pki.ca_file}"\ntls_cert = "{self.device_cert}"\ntls_key = "{self.device_key}"\n'
            f'device_config_path = "{directory}/device-config.json"\n'
        )
        ingest_config = directory / "ingest.toml"
        ingest_cert, ingest_key = self.pki.client(f"ingest-{name}")  # the broker binds client ids to certificates
        ingest_config.write_text(
            f'[ingest]\nbroker_host = "{self.broker.host}"\nbroker_port = {self.broker.platform_port}\n'
            f'tls_ca = "{self.pki.ca_file}"\ntls_cert = "{ingest_cert}"\ntls_key = "{ingest_key}"\n'
            f'db = "sqlite:///{directory}/ingest.db"\nclient_id = "ingest-{name}"\nshare_group = "bench-{name}"\n'
            # The naive sender (one message per record, never resent) would be throttled as a flood.
            + ("device_rate_per_s = 0\n" if name == "naive" else "")
        )
        return outbox, sync_config, ingest_config

    def start_ingest(self, config: Path) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([BORNE, "ingest", "run", "--config", str(config)])
        time.sleep(1.5)  # connected and subscribed before the sender starts
        if process.poll() is not None:
            raise click.ClickException(f"borne ingest exited at start (code {process.returncode}); see above")
        return process


def _finish_ingest(process: subprocess.Popen[bytes]) -> float:
    rss = _peak_rss_mb(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    return rss


def _run_agent(setup: _Setup, records: int) -> Run:
    _, sync_config, ingest_config = setup.fresh("agent")
    store = sync_config.parent / "ingest.db"
    ingest = setup.start_ingest(ingest_config)
    start = time.perf_counter()
    sender = subprocess.Popen(
        [BORNE, "sync", "--once", "--timeout", "600", "--config", str(sync_config)], stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(sender.pid, 0)
    seconds = time.perf_counter() - start
    sender.returncode = os.waitstatus_to_exitcode(status)
    if sender.returncode != 0:
        raise click.ClickException("borne sync --once failed during the benchmark")
    ingest_rss = _finish_ingest(ingest)
    return Run(
        method="borne sync (batches, acks)",
        records=records,
        seconds=seconds,
        records_per_s=records / seconds,
        sender_cpu_s_per_1000=(usage.ru_utime + usage.ru_stime) * 1000 / records,
        sender_peak_rss_mb=usage.ru_maxrss / 1024,
        ingest_peak_rss_mb=ingest_rss,
        stored=_stored(store),
    )


def _run_naive(setup: _Setup, records: int) -> Run:
    import resource
    import uuid

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from sync_agent.contract import Batch, topic
    from sync_agent.outbox import Outbox

    outbox, _, ingest_config = setup.fresh("naive")
    store = outbox.parent / "ingest.db"
    with Outbox.open(outbox) as box:
        pending = box.records("pending")
    ingest = setup.start_ingest(ingest_config)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=DEVICE, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(setup.pki.ca_file), certfile=str(setup.device_cert), keyfile=str(setup.device_key))
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    client.connect(setup.broker.host, setup.broker.port)
    client.loop_start()
    batch_topic = topic(SITE, DEVICE, "batch")
    for record in pending:
        batch = Batch(
            batch_id=uuid.uuid4(), site_id=SITE, device_id=DEVICE, records=[record], sent_at=datetime.now().astimezone()
        )
        client.publish(batch_topic, batch.to_json(), qos=1).wait_for_publish(30)
    deadline = time.monotonic() + 600
    while _stored(store) < records and time.monotonic() < deadline:
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    client.disconnect()
    client.loop_stop()
    ingest_rss = _finish_ingest(ingest)
    cpu = (usage_after.ru_utime - usage_before.ru_utime) + (usage_after.ru_stime - usage_before.ru_stime)
    return Run(
        method="naive (1 message/record, wait PUBACK)",
        records=records,
        seconds=seconds,
        records_per_s=records / seconds,
        sender_cpu_s_per_1000=cpu * 1000 / records,
        sender_peak_rss_mb=usage_after.ru_maxrss / 1024,  # the bench process itself: an upper bound
        ingest_peak_rss_mb=ingest_rss,
        stored=_stored(store),
    )


@click.command(name="sync")
@click.option(
    "--records", type=click.IntRange(min=100), default=10_000, show_default=True, help="Pending records to drain."
)
@out_option("sync")
def sync(records: int, out: Path) -> None:
    """Drain N records through a local broker into ingest: borne sync vs a naive one-by-one publisher."""
    with tempfile.TemporaryDirectory(prefix="borne-bench-sync-") as directory:
        setup = _Setup(Path(directory), records)
        try:
            runs = [_run_agent(setup, records), _run_naive(setup, records)]
        finally:
            setup.broker.stop()
    header = (
        f"{'method':<40} {'records':>8} {'seconds':>8} {'rec/s':>8} {'cpu s/1k':>9} {'sender MB':>10} {'ingest MB':>10}"
    )
    click.echo(header)
    for run in runs:
        click.echo(
            f"{run.method:<40} {run.stored:>8} {run.seconds:>8.2f} {run.records_per_s:>8.0f} "
            f"{run.sender_cpu_s_per_1000:>9.3f} {run.sender_peak_rss_mb:>10.0f} {run.ingest_peak_rss_mb:>10.0f}"
        )
    click.echo(f"speed-up of borne sync over naive: {runs[0].records_per_s / runs[1].records_per_s:.1f}x")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "sync",
                "machine": machine("paho-mqtt", "sqlite-utils"),
                "runs": [asdict(run) for run in runs],
            },
            indent=2,
        )
    )
    click.echo(f"wrote {out}")
    if any(run.stored != records for run in runs):
        raise click.ClickException("not every record reached the store: the figures above are not valid")
