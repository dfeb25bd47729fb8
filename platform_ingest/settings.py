"""Settings of the central platform: `[ingest]` (the broker it consumes from, the database it writes to, its
limits) and `[fleet]` (when a terminal's silence or backlog is an alert)."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from borne_common.ids import IDENTIFIER_PATTERN, is_platform_identity
from borne_common.settings import BorneSettings, Section
from platform_ingest.ingest.consumer import DEFAULT_MAX_PAYLOAD_BYTES
from sync_agent.contract import MAX_BATCH_BYTES, OpeningRange, Weekday

DEFAULT_DB = "sqlite:////var/lib/borne-ingest/ingest.db"


class IngestSection(Section):
    """The central consumer: broker connection, shared subscription group, database."""

    broker_host: str = Field(default="localhost", min_length=1, description="MQTT broker host name or address.")
    broker_port: int = Field(
        default=8884,
        ge=1,
        le=65535,
        description="MQTT broker port: the platform listener of Borne's broker (8884, TLS, platform CA only; "
        "docs/technician.md).",
    )
    tls: bool = Field(default=True, description="Connect with TLS (turn off only for a broker on a private link).")
    tls_ca: Path | None = Field(
        default=Path("/etc/borne-ingest/tls/ca.crt"),
        description="CA certificate that signed the broker's certificate; empty for the system's CAs.",
    )
    tls_cert: Path | None = Field(
        default=Path("/etc/borne-ingest/tls/ingest.crt"),
        description="Client certificate of this consumer (its common name is its MQTT identity); empty for none.",
    )
    tls_key: Path | None = Field(
        default=Path("/etc/borne-ingest/tls/ingest.key"), description="Private key of the client certificate."
    )
    username: str | None = Field(default=None, description="MQTT user name, for brokers that use passwords.")
    password: SecretStr | None = Field(default=None, description="MQTT password (never logged).")

    def mqtt_password(self) -> str | None:
        return self.password.get_secret_value() if self.password is not None else None

    client_id: str = Field(
        default="ingest",
        pattern=IDENTIFIER_PATTERN,
        description="MQTT client id, one per consumer: its certificate's name followed by a part nobody can guess "
        "(ingest-1-5f2c9a07b1e3; ingest warns at start when it is the certificate's name, which a certificate forged "
        "with the fleet CA could take from the terminals' listener), kept across restarts (the broker keeps its "
        "session and unacknowledged batches under it).",
    )
    share_group: str = Field(
        default="ingest",
        pattern=IDENTIFIER_PATTERN,
        description="Shared subscription group: consumers in one group split the batches ($share/<group>/...).",
    )
    session_expiry_s: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        le=2**32 - 1,
        description="How long the broker keeps this consumer's session and queue while it is away.",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keep-alive interval.")
    reconnect_min_s: float = Field(default=1.0, gt=0, le=60, description="First wait before reconnecting.")
    reconnect_max_s: float = Field(default=60.0, gt=0, le=3600, description="Longest wait between reconnections.")
    db: str = Field(
        default=DEFAULT_DB,
        description="Database URL: sqlite:////absolute/path.db (embedded) or postgresql://user@host:5432/db "
        "(needs pip install 'borne[ingest-pg]').",
    )
    max_payload_bytes: int = Field(
        default=DEFAULT_MAX_PAYLOAD_BYTES,
        ge=MAX_BATCH_BYTES,
        le=256 * 1024 * 1024,
        description="Bigger payloads are dead-lettered unread (devices send at most 256 KiB).",
    )
    device_rate_per_s: float = Field(
        default=100,
        ge=0,
        le=100_000,
        description="Batches a second one terminal may send on average (a well-behaved agent, 4 in flight, stays "
        "under 70); over it, its batches are dropped unacknowledged and it sends them again later, so a terminal "
        "that floods slows only itself. 0: no limit.",
    )
    device_burst: int = Field(
        default=500, ge=1, le=1_000_000, description="Batches one terminal may send at once above its rate."
    )
    dead_letter_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Dead letters (payloads ingest could not use, kept raw for diagnosis) older than this many days "
        "are deleted, at start and then daily.",
    )
    sites_file: Path | None = Field(
        default=None,
        description="CSV sites directory (site_id,name,department) imported at start; empty for none.",
    )

    @field_validator("tls_ca", "tls_cert", "tls_key", "sites_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("db")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("expected sqlite:////absolute/path.db or postgresql://user@host:port/database")
        return value


def _office_hours() -> dict[Weekday, list[OpeningRange]]:
    return {day: ["09:00-12:00", "13:30-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


class FleetSection(Section):
    """What makes a terminal's Status an alert in `borne fleet status`; who publishes configurations."""

    silent_after_h: float = Field(
        default=2.0,
        gt=0,
        le=24 * 30,
        description="A terminal that sent no Status for this many hours of opening time is 'silent' (it sends one "
        "every [sync] status_interval_s, 5 minutes by default, while it runs).",
    )
    backlog_after_h: float = Field(
        default=24.0, gt=0, le=24 * 365, description="A record waiting this long for its Ack is a 'backlog' alert."
    )
    opening_hours: dict[Weekday, list[OpeningRange]] = Field(
        default_factory=_office_hours,
        description="When sites are open, in their local time ('HH:MM-HH:MM' per day; a day not listed is closed); "
        "silence outside these hours is not an alert. A terminal whose latest published configuration gives opening "
        "hours counts in those instead.",
    )
    timezone: str = Field(
        default="Europe/Paris",
        description="Time zone of the opening hours (sites in the overseas départements use their own).",
    )
    config_after_h: float = Field(
        default=2.0,
        gt=0,
        le=24 * 30,
        description="A configuration published this many hours of opening time ago and still not run by the "
        "terminal is a 'config' alert (the kiosk applies it at its next idle moment).",
    )
    client_id: str = Field(
        default="platform-config",
        pattern=IDENTIFIER_PATTERN,
        description="MQTT identity of `borne fleet config publish`: a platform name (platform…, ingest…) with its "
        "own certificate, not the consumer's (the broker would knock the running consumer off).",
    )
    tls_cert: Path | None = Field(
        default=Path("/etc/borne-ingest/tls/platform-config.crt"),
        description="Certificate of that identity (`borne provision fleet platform-cert --ca-dir fleet/platform-ca "
        "--name platform-config`); the broker address and CA are [ingest]'s.",
    )
    tls_key: Path | None = Field(
        default=Path("/etc/borne-ingest/tls/platform-config.key"), description="Private key of that certificate."
    )

    @field_validator("tls_cert", "tls_key", mode="before")
    @classmethod
    def _no_file(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("client_id")
    @classmethod
    def _platform_name(cls, value: str) -> str:
        if not is_platform_identity(value):
            raise ValueError(
                f"{value!r} is not a platform name; use ingest or platform, alone or followed by - or _ and more "
                "(platform-config)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as Europe/Paris") from None
        return value


class IngestSettings(BorneSettings):
    """Settings read by `borne ingest` and `borne fleet`."""

    ingest: IngestSection = Field(default_factory=IngestSection, description="The central consumer.")
    fleet: FleetSection = Field(default_factory=FleetSection, description="Alerts on the terminals' Status.")
