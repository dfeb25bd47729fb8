"""The pieces of the MQTT loop that need no broker: backoff, the shared filter, TLS settings errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from borne_common.mqtt import BrokerConfigError
from platform_ingest.ingest.service import Backoff, IngestService, shared_filter
from platform_ingest.settings import IngestSection
from platform_ingest.store import SqliteStore
from tests.support.broker import TestPKI


def test_backoff_doubles_up_to_the_maximum_with_jitter_and_resets() -> None:
    low = Backoff(1.0, 8.0, rng=lambda: 0.0)
    assert [low.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    high = Backoff(1.0, 8.0, rng=lambda: 1.0)
    assert [high.next() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    high.reset()
    assert high.next() == 1.0


def test_the_subscription_is_shared() -> None:
    assert shared_filter("ingest") == "$share/ingest/borne/v1/+/+/batch"


def test_missing_tls_files_stop_ingest_at_start_naming_the_key(tmp_path: Path) -> None:
    section = IngestSection(tls_ca=tmp_path / "nope.crt")
    with pytest.raises(BrokerConfigError, match=r"\[ingest\] tls_ca"):
        IngestService(section, lambda: SqliteStore(":memory:"))
    section = IngestSection(tls_ca=None, tls_cert=tmp_path / "client.crt", tls_key=tmp_path / "client.key")
    with pytest.raises(BrokerConfigError, match=r"\[ingest\] tls_cert"):
        IngestService(section, lambda: SqliteStore(":memory:"))


def test_a_client_id_that_is_the_certificate_name_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A fleet-CA holder could forge a certificate of that name and take the session from the terminals' listener.
    pki = TestPKI(tmp_path / "pki")
    cert, key = pki.client("ingest-1")
    for client_id, warned in (("ingest-1", True), ("ingest-1-5f2c9a07b1e3", False)):
        caplog.clear()
        section = IngestSection(tls_ca=pki.ca_file, tls_cert=cert, tls_key=key, client_id=client_id)
        IngestService(section, lambda: SqliteStore(":memory:"))
        suggestion = re.search(r"client_id = 'ingest-1-[0-9a-f]{12}'", caplog.text)
        assert ("nobody can guess" in caplog.text and suggestion is not None) is warned, caplog.text
