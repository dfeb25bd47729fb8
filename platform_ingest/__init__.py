"""platform_ingest: the reference central consumer (validate, dedupe, store, ack, dead-letter, indicators).

`handle` decides what one MQTT message becomes; `open_store` gives the SQLite or PostgreSQL store;
`platform_ingest.service.IngestService` is the MQTT loop; `platform_ingest.cli` is `borne ingest`.
"""

from platform_ingest.consumer import Outcome, handle
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
