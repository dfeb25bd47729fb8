"""Ingest against a real Mosquitto with TLS, client certificates and the fleet's dynamic-security rights."""

from __future__ import annotations

import json
import logging
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from borne_cli.main import cli
from platform_ingest.ingest.service import BATCH_FILTER
from platform_ingest.store import Store, StoreUnavailable, open_store
from provisioning.broker import FleetDevice
from sync_agent.contract import Status, topic
from tests.platform_ingest.factories import DEVICE, SITE, make_batch, make_record
from tests.platform_ingest.mqtt_support import Device, ingest_section, running_ingest, sqlite_url, wait_until
from tests.support.broker import Broker, TestPKI

pytestmark = pytest.mark.slow
OTHER = "borne-02"
BORNE = Path(sys.executable).with_name("borne")


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    return TestPKI(tmp_path / "pki")


@pytest.fixture
def broker(tmp_path: Path, pki: TestPKI) -> Iterator[Broker]:
    running = Broker(
        tmp_path / "broker",
        pki,
        devices=[FleetDevice(SITE, DEVICE), FleetDevice(SITE, OTHER)],
        ingest_identities=("ingest", "ingest-a", "ingest-b"),
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def device(broker: Broker, pki: TestPKI) -> Iterator[Device]:
    connected = Device(broker, pki, SITE, DEVICE)
    yield connected
    connected.close()


def test_a_batch_is_stored_and_acknowledged_and_its_repeat_reported_as_duplicates(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path
) -> None:
    db = sqlite_url(tmp_path / "ingest.db")
    batch = make_batch(count=3)
    ids = [record.record_id for record in batch.records]
    with running_ingest(ingest_section(broker, pki, db)):
        device.publish(batch)
        first = device.ack_for(batch.batch_id)
        device.publish(batch)
        second = device.ack_for(batch.batch_id)
    assert (first.accepted, first.duplicates, first.rejected) == (ids, [], [])
    assert (second.accepted, second.duplicates, second.rejected) == ([], ids, [])
    with open_store(db) as store:
        assert store.record_count() == 3


def test_a_device_cannot_publish_for_another_device(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path
) -> None:
    """The broker drops it: ingest never sees it, so it neither stores nor dead-letters it."""
    db = sqlite_url(tmp_path / "ingest.db")
    impostor_batch = make_batch(device=OTHER)
    own_batch = make_batch(count=1)
    with running_ingest(ingest_section(broker, pki, db)):
        device.publish(impostor_batch, on_topic=topic(SITE, OTHER, "batch"))
        device.publish(own_batch)  # published after: once it is acknowledged, the first had its chance
        device.ack_for(own_batch.batch_id)
    with open_store(db) as store:
        assert store.record_count() == 1
        assert store.dead_letters() == []


def test_a_payload_that_disagrees_with_its_topic_is_rejected(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path
) -> None:
    db = sqlite_url(tmp_path / "ingest.db")
    forged = make_batch(device=OTHER, count=2)
    with running_ingest(ingest_section(broker, pki, db)):
        device.publish(forged)  # on its own topic, claiming to be another device
        ack = device.ack_for(forged.batch_id)
    assert ack.accepted == [] and ack.duplicates == []
    assert [rejection.record_id for rejection in ack.rejected] == [None] + [r.record_id for r in forged.records]
    with open_store(db) as store:
        assert store.record_count() == 0
        assert len(store.dead_letters()) == 1


def test_garbage_is_dead_lettered_and_ingest_goes_on(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path
) -> None:
    db = sqlite_url(tmp_path / "ingest.db")
    good = make_batch(count=1)
    with running_ingest(ingest_section(broker, pki, db)):
        device.publish(b"\xff not json")
        device.publish(b"[" * 50_000)
        device.publish(good)
        assert device.ack_for(good.batch_id).accepted == [good.records[0].record_id]
    with open_store(db) as store:
        assert store.record_count() == 1
        assert {letter.payload[:5] for letter in store.dead_letters()} == {b"\xff not", b"[[[[["}


def test_the_payloads_that_once_stopped_ingest_are_dead_lettered_and_the_next_batch_stored(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path
) -> None:
    db = sqlite_url(tmp_path / "ingest.db")
    good = make_batch(count=1)
    big_integer = b'{"batch_id":"6a2cf324-b993-4c16-a7b0-6bc54d23d53e","n":' + b"7" * 5000 + b"}"
    with running_ingest(ingest_section(broker, pki, db)) as service:
        device.publish(big_integer)
        device.publish(good)
        assert device.ack_for(good.batch_id).accepted == [good.records[0].record_id]
        assert service.handled == 2  # each message once: the first was not delivered again and again
    with open_store(db) as store:
        letters = store.dead_letters()
        assert [letter.payload for letter in letters] == [big_integer]
        assert "not usable JSON" in letters[0].reason


def test_a_payload_that_still_makes_handling_fail_is_dead_lettered_once_not_redelivered(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platform_ingest.ingest.service

    real_handle = platform_ingest.ingest.service.handle

    def handle(message_topic: str, payload: bytes, store: Store, **kwargs: Any) -> Any:
        if payload.startswith(b"poison"):
            raise OverflowError("a limit nobody foresaw")
        return real_handle(message_topic, payload, store, **kwargs)

    monkeypatch.setattr(platform_ingest.ingest.service, "handle", handle)
    db = sqlite_url(tmp_path / "ingest.db")
    good = make_batch(count=1)
    with running_ingest(ingest_section(broker, pki, db)) as service:
        device.publish(b"poison pill")
        device.publish(good)
        assert device.ack_for(good.batch_id).accepted == [good.records[0].record_id]
        time.sleep(1.0)  # a redelivery of the poison would show up as more handled messages
        assert service.handled == 2
    with open_store(db) as store:
        assert [(letter.payload, letter.reason) for letter in store.dead_letters()] == [
            (b"poison pill", "internal error (OverflowError)")
        ]


def _attacker(broker: Broker, pki: TestPKI, identity: str, client_id: str) -> tuple[mqtt.Client, dict[str, str]]:
    """A terminal's own valid certificate, used against the platform: returns the client and what it saw."""
    seen: dict[str, str] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    cert, key = pki.client(identity)
    client.tls_set(ca_certs=str(pki.ca_file), certfile=str(cert), keyfile=str(key))
    client.on_connect = lambda _c, _u, _f, reason, _p: seen.setdefault("connack", str(reason))
    client.on_subscribe = lambda _c, _u, _m, reasons, _p: seen.setdefault("suback", str(reasons[0]))
    client.on_message = lambda _c, _u, message: seen.setdefault("message", message.topic)
    client.connect(broker.host, broker.port)
    client.loop_start()
    wait_until(lambda: "connack" in seen, message="the attacker's CONNACK")
    return client, seen


def test_a_terminal_cannot_join_ingests_share_group(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path
) -> None:
    """Under an ACL file Mosquitto 2.0 granted it, took the terminal into the round robin and dropped its
    share: half of another terminal's batches waited for their resend. The rights now refuse it."""
    db = sqlite_url(tmp_path / "ingest.db")
    batches = [make_batch(count=1) for _ in range(6)]
    with running_ingest(ingest_section(broker, pki, db)) as service:
        attacker, seen = _attacker(broker, pki, OTHER, OTHER)
        try:
            attacker.subscribe(f"$share/ingest/{BATCH_FILTER}", qos=1)
            wait_until(lambda: "suback" in seen, message="the attacker's SUBACK")
            for batch in batches:
                device.publish(batch)
            acks = device.wait_acks(len(batches), timeout=10)  # well within ack_timeout_s: nothing resent
        finally:
            attacker.disconnect()
            attacker.loop_stop()
        assert service.handled == len(batches)
    assert seen["suback"] == "Not authorized"
    assert sorted(str(a.batch_id) for a in acks) == sorted(str(b.batch_id) for b in batches)
    assert "message" not in seen
    with open_store(db) as store:
        assert store.record_count() == len(batches)


def test_a_terminal_cannot_take_ingests_session(broker: Broker, pki: TestPKI, device: Device, tmp_path: Path) -> None:
    """A terminal connecting with ingest's client id used to knock ingest off and inherit its session."""
    db = sqlite_url(tmp_path / "ingest.db")
    before, after = make_batch(count=1), make_batch(count=1)
    with running_ingest(ingest_section(broker, pki, db)) as service:
        device.publish(before)
        device.ack_for(before.batch_id)
        attacker, seen = _attacker(broker, pki, OTHER, "ingest")
        try:
            assert seen["connack"] == "Success"  # accepted, but as itself
            device.publish(after)
            assert device.ack_for(after.batch_id, timeout=10).accepted == [after.records[0].record_id]
            assert service.subscribed.is_set()
        finally:
            attacker.disconnect()
            attacker.loop_stop()
    log = broker.log_text()
    assert f"as {OTHER} (p5" in log  # the broker replaced the client id it asked for by its certificate name
    assert "Client ingest already connected, closing old connection" not in log
    with open_store(db) as store:
        assert store.record_count() == 2


def test_a_terminal_that_floods_slows_only_itself(broker: Broker, pki: TestPKI, device: Device, tmp_path: Path) -> None:
    """Ingest handles one message at a time for the whole fleet: 1,500 batches queued by one terminal
    used to stand before another terminal's batch, each a database transaction."""
    db = sqlite_url(tmp_path / "ingest.db")
    rate, burst, flood = 20, 20, 1500
    honest = make_batch(device=OTHER, count=1)
    with running_ingest(ingest_section(broker, pki, db, device_rate_per_s=rate, device_burst=burst)) as service:
        flooder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=DEVICE, protocol=mqtt.MQTTv5)
        flooder.max_inflight_messages_set(flood)
        cert, key = pki.client(DEVICE)
        flooder.tls_set(ca_certs=str(pki.ca_file), certfile=str(cert), keyfile=str(key))
        flooder.connect(broker.host, broker.port)
        flooder.loop_start()
        other = Device(broker, pki, SITE, OTHER)
        try:
            payloads = [make_batch(count=1).to_json().encode() for _ in range(flood)]
            started = time.monotonic()
            sent = [flooder.publish(topic(SITE, DEVICE, "batch"), payload, qos=1) for payload in payloads]
            for info in sent:
                info.wait_for_publish(20)  # all of them at the broker, queued for ingest before the next
            other.publish(honest)
            assert other.ack_for(honest.batch_id).accepted == [honest.records[0].record_id]
            handled_before_it = service.handled
            elapsed = time.monotonic() - started
            wait_until(lambda: service.handled >= burst, message="the flood's burst handled")
            service._report_throttled(service_store := open_store(db), now=1e12)
            service_store.close()
        finally:
            other.close()
            flooder.disconnect()
            flooder.loop_stop()
    # Without the limit the honest batch waited for all 1,500; now only for what the rate let through
    # since the flood began.
    assert handled_before_it <= burst + rate * elapsed + 1
    with open_store(db) as store:
        stored = store.record_count()
        letters = store.dead_letters()
    assert burst <= stored - 1 < flood
    (letter,) = letters
    assert letter.topic == topic(SITE, DEVICE, "batch") and letter.reason.startswith("rate limited: ")
    assert f"{flood - (stored - 1)} batch(es)" in letter.reason


def test_two_consumers_in_one_share_group_split_the_batches(
    broker: Broker, pki: TestPKI, device: Device, db_url: str
) -> None:
    db = db_url
    batches = [make_batch(count=2) for _ in range(20)]
    with (
        running_ingest(ingest_section(broker, pki, db, client_id="ingest-a")) as first,
        running_ingest(ingest_section(broker, pki, db, client_id="ingest-b")) as second,
    ):
        for batch in batches:
            device.publish(batch)
        acks = device.wait_acks(len(batches))
        time.sleep(0.5)  # room for a second copy to show up if both consumers had received everything
        assert device.acks.empty()
    assert sorted(str(ack.batch_id) for ack in acks) == sorted(str(batch.batch_id) for batch in batches)
    assert all(len(ack.accepted) == 2 and not ack.duplicates and not ack.rejected for ack in acks)
    assert first.handled > 0 and second.handled > 0
    assert first.handled + second.handled == len(batches)
    with open_store(db) as store:
        assert store.record_count() == 2 * len(batches)


def test_a_database_outage_leaves_the_batch_at_the_broker_until_it_is_stored(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path
) -> None:
    """The broker's PUBACK waits for the commit: a batch that could not be stored comes back."""
    db = sqlite_url(tmp_path / "ingest.db")
    failures = [StoreUnavailable("database restarting")]
    opened: list[Store] = []

    def flaky_store() -> Store:
        store = open_store(db)
        real_store = store.store

        def store_or_fail(*args: Any, **kwargs: Any) -> Any:
            if failures:
                raise failures.pop()
            return real_store(*args, **kwargs)

        store.store = store_or_fail  # type: ignore[method-assign]
        opened.append(store)
        return store

    batch = make_batch(count=2)
    with running_ingest(ingest_section(broker, pki, db), store_factory=flaky_store):
        device.publish(batch)
        ack = device.ack_for(batch.batch_id)
    assert ack.accepted == [record.record_id for record in batch.records]
    assert failures == [] and len(opened) == 2  # failed once, reopened the store, got the batch again
    with open_store(db) as store:
        assert store.record_count() == 2
        redelivered = store.health_rows(datetime.now(UTC) - timedelta(hours=1)).events
    assert redelivered == [(topic(SITE, DEVICE, "batch"), "redelivered", 1)]  # what `borne ingest health` counts


def test_terminals_statuses_are_kept_for_health_and_a_forged_one_dead_lettered(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path
) -> None:
    db = sqlite_url(tmp_path / "ingest.db")
    sent = datetime.now(UTC) - timedelta(minutes=5)
    own = Status(site_id=SITE, device_id=DEVICE, state="online", backlog=42, oldest_pending_age_s=7200, sent_at=sent)
    forged = own.model_copy(update={"device_id": OTHER})
    marker = make_batch(count=1)
    with running_ingest(ingest_section(broker, pki, db)):
        status_topic = topic(SITE, DEVICE, "status")
        for status in (forged, own):
            device.client.publish(status_topic, status.to_json(), qos=1).wait_for_publish(10)
        device.publish(marker)  # handled after both statuses: they have been handled once it is acknowledged
        device.ack_for(marker.batch_id)
    config = tmp_path / "borne.toml"
    config.write_text(f'[ingest]\ndb = "{db}"\n')
    result = CliRunner().invoke(cli, ["ingest", "health", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["terminals_reporting"] == 1 and report["records_pending"] == 42
    assert report["oldest_pending"]["terminal"] == f"{SITE}/{DEVICE}"
    assert 7200 + 300 <= report["oldest_pending"]["age_s"] < 7200 + 400
    assert report["dead_letters"] == [
        {
            "terminal": f"{SITE}/{DEVICE}",
            "reason": "status names another terminal than its topic",
            "count": 1,
            "payload_bytes": len(forged.to_json().encode()),
        }
    ]


def _write_config(tmp_path: Path, broker: Broker, pki: TestPKI, db: str) -> Path:
    cert, key = pki.client("ingest")
    config = tmp_path / "ingest.toml"
    config.write_text(
        "[ingest]\n"
        f'broker_host = "{broker.host}"\nbroker_port = {broker.platform_port}\n'
        f'tls_ca = "{pki.ca_file}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
        f'db = "{db}"\nreconnect_min_s = 0.1\nreconnect_max_s = 0.5\n',
        encoding="utf-8",
    )
    return config


def _start_ingest(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen([str(BORNE), "-v", "ingest", "run", "--config", str(config)], stderr=output)


def _subscriptions(broker: Broker) -> int:
    return broker.log_text().count("ingest 1 $share/ingest/borne/v1/+/+/batch")


def test_ingest_killed_mid_stream_and_restarted_loses_nothing(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path, db_url: str
) -> None:
    db = db_url
    config, log = _write_config(tmp_path, broker, pki, db), tmp_path / "ingest.log"
    batches = [make_batch(count=5) for _ in range(100)]
    total = 5 * len(batches)
    process = _start_ingest(config, log)

    def publish_slowly() -> None:  # a stream that outlasts the kill below
        for batch in batches:
            device.publish(batch)
            time.sleep(0.01)

    publisher = threading.Thread(target=publish_slowly)
    try:
        wait_until(lambda: _subscriptions(broker) == 1, message="ingest to subscribe")
        publisher.start()
        with open_store(db) as store:
            wait_until(lambda: store.record_count() > 0, message="the first records")
            process.send_signal(signal.SIGKILL)  # while the device is still publishing
            process.wait(10)
            stored_when_killed = store.record_count()
        assert stored_when_killed < total, "ingest finished before it was killed; the test proves nothing"
        publisher.join(30)
        process = _start_ingest(config, log)
        with open_store(db) as store:
            wait_until(lambda: store.record_count() == total, timeout=60, message="every record")
        settled: dict[str, set[str]] = {}
        deadline = time.monotonic() + 30
        while len(settled) < len(batches) and time.monotonic() < deadline:
            try:
                ack = device.acks.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            settled.setdefault(str(ack.batch_id), set()).update(str(record_id) for record_id in ack.settled)
        for batch in batches:
            assert settled.get(str(batch.batch_id)) == {str(record.record_id) for record in batch.records}, (
                f"batch {batch.batch_id} not settled"
            )
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0, log.read_text()


def test_sigterm_stops_ingest_cleanly(broker: Broker, pki: TestPKI, tmp_path: Path) -> None:
    config, log = _write_config(tmp_path, broker, pki, sqlite_url(tmp_path / "ingest.db")), tmp_path / "ingest.log"
    process = _start_ingest(config, log)
    try:
        wait_until(lambda: _subscriptions(broker) == 1, message="ingest to subscribe")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(15)
    assert code == 0, log.read_text()
    assert "ingest stopped" in log.read_text()
    wait_until(lambda: "Client ingest disconnected." in broker.log_text(), message="a clean DISCONNECT")


def test_ingest_reconnects_after_the_broker_restarts(broker: Broker, pki: TestPKI, tmp_path: Path) -> None:
    db = sqlite_url(tmp_path / "ingest.db")
    with running_ingest(ingest_section(broker, pki, db)) as service:
        broker.kill()
        wait_until(lambda: not service.subscribed.is_set(), message="ingest to notice")
        broker.start()
        assert service.subscribed.wait(20), "ingest did not come back"
        device = Device(broker, pki, SITE, DEVICE)
        try:
            batch = make_batch(count=1)
            device.publish(batch)
            assert device.ack_for(batch.batch_id).accepted == [batch.records[0].record_id]
        finally:
            device.close()


def test_a_client_certificate_from_another_ca_is_reported_with_the_fix(
    broker: Broker, pki: TestPKI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = TestPKI(tmp_path / "other-pki")
    cert, key = stranger.client("ingest")
    section = ingest_section(broker, pki, sqlite_url(tmp_path / "ingest.db"), tls_cert=cert, tls_key=key)
    with caplog.at_level(logging.ERROR, logger="platform_ingest"), running_ingest(section, wait_subscribed=False):
        wait_until(lambda: "client certificate" in caplog.text, message="the refusal to be logged")
    assert "tls_cert must be issued by the CA in the broker's cafile" in caplog.text


def test_a_broker_certificate_we_do_not_trust_is_reported_with_the_fix(
    broker: Broker, pki: TestPKI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = TestPKI(tmp_path / "other-pki")
    section = ingest_section(broker, pki, sqlite_url(tmp_path / "ingest.db"), tls_ca=stranger.ca_file)
    with caplog.at_level(logging.ERROR, logger="platform_ingest"), running_ingest(section, wait_subscribed=False):
        wait_until(lambda: "do not trust" in caplog.text, message="the refusal to be logged")
    assert "set [ingest] tls_ca" in caplog.text


def test_records_and_comments_are_never_logged(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    comment = "le guichet de Madame Zorglub"
    batch = make_batch([make_record(comment=comment)])
    document = json.loads(batch.to_json())
    document["records"].append({**document["records"][0], "record_id": "broken", "comment": comment})
    with caplog.at_level(logging.DEBUG), running_ingest(ingest_section(broker, pki, sqlite_url(tmp_path / "i.db"))):
        device.publish(batch)
        device.ack_for(batch.batch_id)
        device.publish(json.dumps(document).encode())
        device.ack_for(batch.batch_id)
    assert caplog.text.count(str(batch.batch_id)) >= 2  # the log did run: ingest logged both batches
    assert "Zorglub" not in caplog.text


def test_the_running_service_purges_dead_letters_past_the_retention(
    broker: Broker, pki: TestPKI, device: Device, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from platform_ingest.store import DeadLetter

    db = sqlite_url(tmp_path / "ingest.db")
    with open_store(db) as store:
        store.add_dead_letter(DeadLetter("t", b"old", "bad"), received=datetime.now(UTC) - timedelta(days=8))
        store.add_dead_letter(DeadLetter("t", b"young", "bad"), received=datetime.now(UTC) - timedelta(days=6))

    def kept() -> list[bytes]:
        with open_store(db) as store:
            return sorted(letter.payload[:5] for letter in store.dead_letters())

    with running_ingest(ingest_section(broker, pki, db, dead_letter_retention_days=7)):
        device.publish(b"\xff not json")  # a new one while it runs
        wait_until(lambda: kept() == [b"young", b"\xff not"], message="the old dead letter purged, the new kept")
