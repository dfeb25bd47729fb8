"""What the platform benchmarks share: a synthetic directory of the network's 2,750 sites spread over the
départements, and a fresh PostgreSQL schema per run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import click

from platform_ingest.departments import DEPARTMENTS
from platform_ingest.store import Site

NETWORK_SITES = 2750
"""France services sites in the network (issue 14)."""
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def synthetic_sites(count: int = NETWORK_SITES) -> list[Site]:
    """`count` sites dealt in turn to the départements (27 or 28 each for 2,750): fs-<code>-<n>."""
    codes = sorted(DEPARTMENTS)
    return [
        Site(f"fs-{codes[index % len(codes)].lower()}-{index // len(codes) + 1:03d}", f"France services n° {index + 1}",
             codes[index % len(codes)])
        for index in range(count)
    ]  # fmt: skip


def with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema(server_url: str, prefix: str) -> Iterator[str]:
    """A URL whose tables land in a new schema of `server_url`'s database, dropped when the block ends."""
    try:
        import psycopg
    except ImportError:
        raise click.ClickException("this benchmark needs psycopg: pip install 'borne[ingest-pg]'") from None
    try:
        admin = psycopg.connect(server_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        raise click.ClickException(f"cannot reach PostgreSQL at {server_url}: {error}; see --postgres-url") from None
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield with_search_path(server_url, schema)
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


__all__ = ["DEFAULT_POSTGRES_URL", "NETWORK_SITES", "fresh_schema", "synthetic_sites", "with_search_path"]
