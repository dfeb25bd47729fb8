"""The device side's settings: the outbox (`[outbox]`, kiosk and sync agent) and `[sync]`, on the shared base."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from borne_common.settings import BorneSettings, Section


class OutboxSection(Section):
    """The local SQLite outbox shared by the kiosk (writer) and the sync agent (updater)."""

    path: Path = Field(default=Path("/var/lib/borne/outbox.db"), description="SQLite file of the outbox.")
    retention_days: int = Field(
        default=30, ge=0, le=3650, description="Days an acknowledged record is kept before it is purged."
    )
    busy_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="How long a write waits for the other process's lock."
    )


class SyncSection(Section):
    """How the sync agent reaches the central broker and drains the outbox."""

    broker_host: str = Field(default="localhost", min_length=1, description="Central MQTT broker host name.")
    broker_port: int = Field(default=8883, ge=1, le=65535, description="Broker port (8883 for MQTT over TLS).")
    tls: bool = Field(default=True, description="Use TLS; turn off only for a broker on loopback in a test.")
    tls_ca: Path = Field(default=Path("/etc/borne/tls/ca.crt"), description="CA certificate of the fleet (PEM).")
    tls_cert: Path | None = Field(
        default=Path("/etc/borne/tls/device.crt"),
        description="This device's client certificate (PEM); its common name is the device id.",
    )
    tls_key: Path | None = Field(default=Path("/etc/borne/tls/device.key"), description="The certificate's key.")
    username: str | None = Field(default=None, description="MQTT user name, when the broker uses passwords.")
    password_file: Path | None = Field(
        default=None, description="File holding the MQTT password (kept out of borne.toml)."
    )

    def mqtt_password(self) -> str | None:
        """The password in `password_file` (None: none)."""
        return self.password_file.read_text().strip() if self.password_file else None

    keepalive_s: int = Field(default=60, ge=5, le=3600, description="MQTT keep-alive interval.")
    session_expiry_s: int = Field(
        default=7 * 86400, ge=0, description="How long the broker keeps our session (queued acks) while offline."
    )
    batch_max_records: int = Field(default=200, ge=1, le=200, description="Records per batch at most.")
    batch_max_bytes: int = Field(
        default=256 * 1024, ge=1024, le=256 * 1024, description="JSON bytes of a batch's records at most."
    )
    max_batches_in_flight: int = Field(
        default=4, ge=1, le=64, description="Batches sent and not yet acknowledged at the same time."
    )
    ack_timeout_s: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="A batch without Ack after this long is sent again (same id); each re-send waits twice as long.",
    )
    backoff_min_s: float = Field(default=1, gt=0, le=600, description="First wait after a failure.")
    backoff_max_s: float = Field(default=300, gt=0, le=86400, description="Longest wait between attempts.")
    status_interval_s: float = Field(default=300, gt=0, le=86400, description="How often the Status is refreshed.")


class SyncSettings(BorneSettings):
    """Settings read by `borne sync`."""

    outbox: OutboxSection = Field(default_factory=OutboxSection, description="The outbox to drain.")
    sync: SyncSection = Field(default_factory=SyncSection, description="Broker and batching.")
