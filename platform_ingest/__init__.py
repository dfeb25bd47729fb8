"""platform_ingest: the central platform, one package with a sub-package per concern.

- `platform_ingest.ingest`: the MQTT consumer (validate, dedupe, store, ack, dead-letter); `handle` decides what
  one message becomes, `ingest.service.IngestService` is the loop, `ingest.cli` is `borne ingest`;
- `platform_ingest.fleet`: the terminals' status and alerts, remote configuration (`borne fleet`);
- `platform_ingest.dashboard`: the web dashboard (`borne dashboard`; needs the `dashboard` extra).

Shared by them: `store` (`open_store` gives the SQLite or PostgreSQL store), `settings`, and the geography
(`departments`, `sites`).
"""

from platform_ingest.ingest.consumer import Outcome, handle
from platform_ingest.store import (
    DeadLetter,
    Indicator,
    PostgresStore,
    Site,
    SqliteStore,
    Store,
    StoreError,
    StoreUnavailable,
    open_store,
)

__all__ = [
    "DeadLetter",
    "Indicator",
    "Outcome",
    "PostgresStore",
    "Site",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "handle",
    "open_store",
]
