"""The whole delivery chain on one machine: simulated kiosk -> outbox -> borne sync -> mosquitto (TLS,
ACL) -> borne ingest -> SQLite store, each a real process the test can kill."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from kiosk_app.flow import Identity
from kiosk_app.settings import KioskSection
from kiosk_app.simulate import simulate
from provisioning.broker import FleetDevice
from sync_agent.outbox import Outbox
from tests.support.broker import Broker, TestPKI
from tests.support.proxy import LinkProxy

BORNE = str(Path(sys.executable).with_name("borne"))
SITE, DEVICE = "fs-23-01", "borne-a"
PUBLISHER = "platform-config"  # `borne fleet config publish`'s identity


@dataclass
class Chain:
    root: Path
    sync_options: dict[str, object] = field(default_factory=dict)
    use_proxy: bool = False

    def __post_init__(self) -> None:
        self.pki = TestPKI(self.root / "pki")
        self.broker = Broker(
            self.root / "broker", self.pki, [FleetDevice(SITE, DEVICE)], ingest_identities=("ingest", PUBLISHER)
        ).start()
        self.proxy = LinkProxy(self.broker.host, self.broker.port) if self.use_proxy else None
        self.outbox_path = self.root / "outbox.db"
        self.store_path = self.root / "ingest.db"
        self.sync_config = self.root / "sync.toml"
        self.ingest_config = self.root / "ingest.toml"
        self._write_configs()
        self.sync_process: subprocess.Popen[bytes] | None = None
        self.ingest_process: subprocess.Popen[bytes] | None = None

    # -- configuration ----------------------------------------------------------------------------

    def _write_configs(self) -> None:
        device_cert, device_key = self.pki.client(DEVICE)
        ingest_cert, ingest_key = self.pki.client("ingest")
        publisher_cert, publisher_key = self.pki.client(PUBLISHER)
        port = self.proxy.port if self.proxy else self.broker.port
        sync_values: dict[str, object] = {
            "broker_host": "127.0.0.1",
            "broker_port": port,
            "tls_ca": str(self.pki.ca_file),
            "tls_cert": str(device_cert),
            "tls_key": str(device_key),
            "backoff_min_s": 0.1,
            "backoff_max_s": 1.0,
            "ack_timeout_s": 3.0,
            "keepalive_s": 5,
            "device_config_path": str(self.root / "device-config.json"),
            **self.sync_options,
        }
        self.sync_config.write_text(
            f'[device]\nsite_id = "{SITE}"\ndevice_id = "{DEVICE}"\n'
            f'kiosk_state_path = "{self.root / "kiosk-state.json"}"\n\n'
            f'[outbox]\npath = "{self.outbox_path}"\n\n[sync]\n' + _toml(sync_values)
        )
        self.ingest_config.write_text(
            "[ingest]\n"
            + _toml(
                {
                    "broker_host": self.broker.host,
                    "broker_port": self.broker.platform_port,
                    "tls_ca": str(self.pki.ca_file),
                    "tls_cert": str(ingest_cert),
                    "tls_key": str(ingest_key),
                    "db": f"sqlite:///{self.store_path}",
                    "reconnect_min_s": 0.1,
                    "reconnect_max_s": 1.0,
                }
            )
            + "\n[fleet]\n"
            + _toml({"client_id": PUBLISHER, "tls_cert": str(publisher_cert), "tls_key": str(publisher_key)})
        )

    # -- processes --------------------------------------------------------------------------------

    def write_records(self, count: int, *, days: float = 7.0, seed: int = 1) -> None:
        with Outbox.open(self.outbox_path) as box:
            simulate(
                KioskSection(),
                Identity(SITE, DEVICE, "0.1.0"),
                box,
                records=count,
                seed=seed,
                end=datetime.now().astimezone(),
                days=days,
            )

    def start_ingest(self) -> None:
        self.ingest_process = subprocess.Popen(
            [BORNE, "-v", "ingest", "run", "--config", str(self.ingest_config)], stderr=self._log("ingest")
        )

    def start_sync(self) -> None:
        self.sync_process = subprocess.Popen(
            [BORNE, "-v", "sync", "--config", str(self.sync_config)], stderr=self._log("sync")
        )

    def _log(self, name: str) -> IO[bytes]:
        return (self.root / f"{name}.log").open("ab")

    def logs(self) -> str:
        """The last lines each process wrote, to explain a failure."""
        parts = []
        for name in ("sync", "ingest"):
            path = self.root / f"{name}.log"
            if path.exists():
                parts.append(f"--- {name}.log ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)

    @staticmethod
    def kill(process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        for process in (self.sync_process, self.ingest_process):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.kill(process)
        if self.proxy:
            self.proxy.close()
        self.broker.stop()

    # -- observation ------------------------------------------------------------------------------

    def outbox_counts(self) -> dict[str, int]:
        conn = sqlite3.connect(self.outbox_path, timeout=30)
        try:
            return dict(conn.execute("SELECT state, count(*) FROM records GROUP BY state").fetchall())
        finally:
            conn.close()

    def acked(self) -> int:
        return self.outbox_counts().get("acked", 0)

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str, *, every: float = 0.1) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; outbox {self.outbox_counts()}\n{self.logs()}"
                )
            time.sleep(every)

    def drained(self) -> bool:
        counts = self.outbox_counts()
        return counts.get("pending", 0) == 0 and counts.get("in_flight", 0) == 0

    def assert_store_matches_outbox(self) -> None:
        """Every record the kiosk wrote is in the central store exactly once, with the same content."""
        with Outbox.open(self.outbox_path) as box:
            written = {
                (record.device_id, record.record_id): (int(record.rating), record.period.isoformat(), record.answers)
                for record in box.records()
            }
        conn = sqlite3.connect(self.store_path, timeout=30)
        try:
            rows = conn.execute("SELECT device_id, record_id, rating, period, answers FROM records").fetchall()
        finally:
            conn.close()
        stored = {
            (device, uuid.UUID(str(record_id))): (rating, period, json.loads(answers))
            for device, record_id, rating, period, answers in rows
        }
        assert len(rows) == len(stored), "a record is stored twice"
        missing = written.keys() - stored.keys()
        extra = stored.keys() - written.keys()
        assert not missing, f"{len(missing)} record(s) lost"
        assert not extra, f"{len(extra)} record(s) in the store that the kiosk never wrote"
        different = [key for key in written if written[key] != stored[key]]
        assert not different, f"{len(different)} record(s) differ between kiosk and store"


def _toml(values: dict[str, object]) -> str:
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"
