"""`borne provision ...`: the technician's and the fleet operator's commands."""

from __future__ import annotations

from pathlib import Path

import click

from provisioning.broker import acl, mosquitto_conf, read_fleet


@click.group()
def provision() -> None:
    """Provision terminals and the central side (fleet PKI, broker configuration)."""


@provision.group()
def fleet() -> None:
    """Central-side tools for a batch of terminals."""


@fleet.command("broker-config")
@click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="CSV with the columns site_id,device_id: the terminals allowed on the broker.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write mosquitto.conf and acl into.",
)
@click.option(
    "--ca",
    "cafile",
    type=click.Path(path_type=Path),
    required=True,
    help="Fleet CA certificate the broker checks client certificates against.",
)
@click.option(
    "--cert", "certfile", type=click.Path(path_type=Path), required=True, help="The broker's server certificate."
)
@click.option("--key", "keyfile", type=click.Path(path_type=Path), required=True, help="The broker's server key.")
@click.option("--port", type=click.IntRange(1, 65535), default=8883, show_default=True, help="TLS listener port.")
@click.option(
    "--bind",
    "bind_address",
    default="0.0.0.0",  # noqa: S104 — a broker listens for the fleet
    show_default=True,
    help="Address the listener binds to.",
)
@click.option(
    "--ingest",
    "ingest_identities",
    multiple=True,
    default=("ingest",),
    show_default=True,
    help="Certificate common name of an ingest consumer (repeat for several).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Persistence directory (sessions and queued messages survive a restart); none if omitted.",
)
@click.option(
    "--user",
    "run_as_user",
    default=None,
    help="System user mosquitto switches to when started as root (mosquitto's default: mosquitto).",
)
def broker_config(
    fleet_file: Path,
    out_dir: Path,
    cafile: Path,
    certfile: Path,
    keyfile: Path,
    port: int,
    bind_address: str,
    ingest_identities: tuple[str, ...],
    data_dir: Path | None,
    run_as_user: str | None,
) -> None:
    """Write a Mosquitto configuration: TLS with client certificates and a per-device ACL."""
    try:
        devices = read_fleet(fleet_file)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    acl_file = out_dir / "acl"
    acl_file.write_text(acl(devices, list(ingest_identities)), encoding="utf-8")
    (out_dir / "mosquitto.conf").write_text(
        mosquitto_conf(
            port=port,
            bind_address=bind_address,
            cafile=cafile.resolve(),
            certfile=certfile.resolve(),
            keyfile=keyfile.resolve(),
            acl_file=acl_file.resolve(),
            persistence_dir=data_dir.resolve() if data_dir else None,
            run_as_user=run_as_user,
        ),
        encoding="utf-8",
    )
    click.echo(f"wrote {out_dir / 'mosquitto.conf'} and {acl_file} for {len(devices)} terminal(s)")
