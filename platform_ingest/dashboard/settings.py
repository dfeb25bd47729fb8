"""`[dashboard]`: where the web dashboard listens, how it signs its cookies, how it limits logins."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from borne_common.settings import Section
from platform_ingest.settings import IngestSettings


class DashboardSection(Section):
    """The web dashboard (`borne dashboard run`); its database is [ingest] db."""

    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address to listen on; keep 127.0.0.1 behind a reverse proxy that terminates TLS.",
    )
    port: int = Field(default=8470, ge=1, le=65535, description="Port to listen on.")
    cookie_secret_file: Path = Field(
        default=Path("/var/lib/borne-dashboard/cookie-secret"),
        description="File holding the key that signs session cookies; created (mode 0600, random) if missing. "
        "Every process serving the dashboard must read the same file; replacing it logs everyone out.",
    )
    secure_cookie: bool = Field(
        default=False,
        description="Mark the session cookie Secure (sent over HTTPS only): turn it on behind a TLS reverse proxy.",
    )
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="How long a login lasts.")
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Addresses whose X-Forwarded-For/-Proto headers are believed (the reverse proxy), comma "
        "separated; the login limit per address counts the address they give.",
    )
    login_window_s: int = Field(
        default=900, ge=1, le=24 * 3600, description="Period over which failed logins are counted."
    )
    login_failures_per_account: int = Field(
        default=5, ge=1, le=1000, description="Failed logins to one account within the period before it is refused."
    )
    login_failures_per_address: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Failed logins from one address within the period before it is refused.",
    )
    comments_per_page: int = Field(default=20, ge=1, le=500, description="Comments shown per page.")


class DashboardSettings(IngestSettings):
    """Settings read by `borne dashboard`: [dashboard], and [ingest] db for the store."""

    dashboard: DashboardSection = Field(default_factory=DashboardSection, description="The web dashboard.")
