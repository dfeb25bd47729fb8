"""`borne dashboard`: serve the web dashboard, manage its accounts."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from borne_common.cli import config_option
from platform_ingest.cli import db_option, platform_settings
from platform_ingest.dashboard.settings import DashboardSettings
from platform_ingest.store import StoreError, open_store

if TYPE_CHECKING:
    from platform_ingest.dashboard.accounts import Role


def _settings(config_path: Path | None, db: str | None) -> DashboardSettings:
    return platform_settings(DashboardSettings, config_path, db)


@click.group()
def dashboard() -> None:
    """The web dashboard of the central platform: satisfaction per region, département and site, and comments."""


@dashboard.command("run")
@config_option
@db_option
@click.option("--host", default=None, help="Address to listen on; overrides [dashboard] host.")
@click.option("--port", type=int, default=None, help="Port to listen on; overrides [dashboard] port.")
def run(config_path: Path | None, db: str | None, host: str | None, port: int | None) -> None:
    """Serve the dashboard with uvicorn (default http://127.0.0.1:8470/) until interrupted."""
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    settings = platform_settings(DashboardSettings, config_path, db, dashboard=overrides)
    try:
        import uvicorn

        from platform_ingest.dashboard.app import DashboardError, create_app
    except (ImportError, RuntimeError) as error:
        raise click.ClickException(f"{error}; install the dashboard: pip install 'borne[dashboard]'") from None
    section = settings.dashboard
    try:
        with open_store(settings.ingest.db) as store:  # fail now, with the reason, rather than on the first page
            accounts = len(store.dashboard_users())
        app = create_app(section, settings.ingest.db, fleet=settings.fleet)
    except (StoreError, DashboardError) as error:
        raise click.ClickException(str(error)) from None
    if accounts == 0:
        click.echo("no account yet: create one with borne dashboard user add NAME --role national", err=True)
    click.echo(f"dashboard on http://{section.host}:{section.port}/", err=True)
    uvicorn.run(
        app,
        host=section.host,
        port=section.port,
        proxy_headers=True,
        forwarded_allow_ips=section.trusted_proxies,
        server_header=False,
        log_level="info",
    )


@dashboard.group("user")
def user() -> None:
    """Dashboard accounts (kept in the store's database)."""


@user.command("add")
@config_option
@db_option
@click.argument("name")
@click.option(
    "--role",
    required=True,
    metavar="ROLE",
    help="national, region:CODE (INSEE region code, e.g. region:53 for Bretagne) or site:ID.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def add(config_path: Path | None, db: str | None, name: str, role: str, password_stdin: bool) -> None:
    """Create the account NAME (or give it a new password and role); the password is asked twice."""
    from platform_ingest.dashboard.accounts import AccountError, add_user, parse_role

    settings = _settings(config_path, db)
    try:
        parsed = parse_role(role)
    except AccountError as error:
        raise click.BadParameter(str(error), param_hint="--role") from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with open_store(settings.ingest.db) as store:
            add_user(store, name, parsed, password)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    except StoreError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"account {name} ({parsed}) saved")


@user.command("list")
@config_option
@db_option
def list_users(config_path: Path | None, db: str | None) -> None:
    """Every account with its role and creation date."""
    settings = _settings(config_path, db)
    try:
        with open_store(settings.ingest.db) as store:
            users = store.dashboard_users()
    except StoreError as error:
        raise click.ClickException(str(error)) from None
    for found in users:
        click.echo(f"{found.name}\t{found.role}\t{found.created_at:%Y-%m-%d}")


@user.command("remove")
@config_option
@db_option
@click.argument("name")
def remove(config_path: Path | None, db: str | None, name: str) -> None:
    """Remove the account NAME; its open sessions end at their next page."""
    settings = _settings(config_path, db)
    try:
        with open_store(settings.ingest.db) as store:
            removed = store.delete_dashboard_user(name)
    except StoreError as error:
        raise click.ClickException(str(error)) from None
    if not removed:
        raise click.ClickException(f"no account named {name!r} (borne dashboard user list shows them)")
    click.echo(f"account {name} removed")


@dashboard.group("export")
def export() -> None:
    """The dashboard's exports for an analyst: the same files as its Exports page (/exports)."""


def _month(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    from platform_ingest.store import iso_month

    try:
        return None if value is None else iso_month(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _scope(context: click.Context, parameter: click.Parameter, value: str) -> Role:
    from platform_ingest.dashboard.accounts import AccountError, parse_role

    try:
        return parse_role(value)
    except AccountError as error:
        raise click.BadParameter(str(error)) from None


scope_option = click.option(
    "--scope",
    default="national",
    show_default=True,
    metavar="ROLE",
    callback=_scope,
    help="The rows an account of this role gets: national, region:CODE (INSEE code) or site:ID.",
)
out_option = click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    default=None,
    help="File to write (standard output if not given).",
)


def _write(body: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    try:
        out.write_bytes(body)
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error.strerror}") from None
    click.echo(f"wrote {out} ({len(body)} bytes)", err=True)


@export.command("csv")
@config_option
@db_option
@scope_option
@click.option("--month", default=None, metavar="YYYY-MM", callback=_month, help="Only this month (default: every one).")
@out_option
def export_csv(config_path: Path | None, db: str | None, scope: Role, month: str | None, out: Path | None) -> None:
    """The indicators of the scope, a line per level (national, region, département, site) and month: CSV for
    French spreadsheets (UTF-8 with BOM, ';' separators, decimal commas), as /export/indicateurs.csv."""
    from platform_ingest.dashboard.exports import indicator_rows, indicators_csv

    settings = _settings(config_path, db)
    try:
        with open_store(settings.ingest.db) as store:
            body = indicators_csv(indicator_rows(store, scope, month))
    except StoreError as error:
        raise click.ClickException(str(error)) from None
    _write(body, out)


@export.command("opendata")
@config_option
@db_option
@scope_option
@click.option("--month", required=True, metavar="YYYY-MM", callback=_month, help="The month of the document.")
@out_option
def export_opendata(config_path: Path | None, db: str | None, scope: Role, month: str, out: Path | None) -> None:
    """The open-data JSON of a month: each site of the scope with its ratings and satisfaction rate (null under 30
    ratings), no comment, under the Licence Ouverte / Etalab 2.0, as /export/opendata/MONTH.json."""
    from platform_ingest.dashboard.exports import opendata, opendata_json

    settings = _settings(config_path, db)
    try:
        with open_store(settings.ingest.db) as store:
            body = opendata_json(opendata(store, scope, month, datetime.now(UTC)))
    except StoreError as error:
        raise click.ClickException(str(error)) from None
    _write(body, out)
