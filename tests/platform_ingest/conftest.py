"""Stores for the ingest tests: SQLite in a temporary directory, and PostgreSQL in a schema of its own.

The PostgreSQL server comes from BORNE_TEST_POSTGRES_URL (default: the local one). Tests that need it
fail, not skip, when it cannot be reached: `make test` (scripts/setup.sh) provides one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from platform_ingest.store import PostgresStore, SqliteStore, Store

POSTGRES_URL = os.environ.get("BORNE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose tables land in a fresh schema, dropped after the test."""
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL at {POSTGRES_URL} is unreachable ({error}); start it (scripts/setup.sh) "
            "or point BORNE_TEST_POSTGRES_URL at a server where the user may create schemas",
            pytrace=False,
        )
    schema = f"borne_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield _with_search_path(POSTGRES_URL, schema)
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ingest.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: Any) -> str:
    """The URL of an empty database, once per engine."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened: Store = (
        SqliteStore(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite") else PostgresStore(db_url)
    )
    with opened:
        yield opened


@pytest.fixture
def memory_store() -> Iterator[Store]:
    with SqliteStore(":memory:") as opened:
        yield opened
