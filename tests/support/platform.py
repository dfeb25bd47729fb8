"""A minimal stand-in for the central platform in sync-agent tests: records what it gets and acks it.

The real consumer is `platform_ingest`; this one lets a test drop or delay Acks and reject records.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sync_agent.contract import Ack, Batch, Rejection
from tests.support.broker import Broker


class AckingPlatform:
    def __init__(
        self,
        broker: Broker,
        identity: str = "ingest",
        *,
        ack_when: Callable[[Batch], bool] = lambda batch: True,
        reject: Callable[[uuid.UUID], str | None] = lambda record_id: None,
        password: str | None = None,
    ) -> None:
        self.received: Counter[uuid.UUID] = Counter()
        self.batches: Counter[uuid.UUID] = Counter()
        self.stored: dict[uuid.UUID, Batch] = {}
        self._ack_when = ack_when
        self._reject = reject
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=identity, protocol=mqtt.MQTTv5)
        if password is None:
            cert, key = broker.pki.client(identity)
            self.client.tls_set(ca_certs=str(broker.pki.ca_file), certfile=str(cert), keyfile=str(key))
        else:
            self.client.tls_set(ca_certs=str(broker.pki.ca_file))
            self.client.username_pw_set(identity, password)
        self.client.on_connect = lambda c, *_: c.subscribe("$share/ingest/borne/v1/+/+/batch", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.platform_port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("the test platform could not subscribe")

    def _on_message(self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        batch = Batch.model_validate_json(message.payload)
        with self._lock:
            self.batches[batch.batch_id] += 1
            if not self._ack_when(batch):
                return
            accepted, duplicates, rejected = [], [], []
            for record in batch.records:
                self.received[record.record_id] += 1
                reason = self._reject(record.record_id)
                if reason:
                    rejected.append(Rejection(record_id=record.record_id, reason=reason))
                elif record.record_id in self.stored:
                    duplicates.append(record.record_id)
                else:
                    self.stored[record.record_id] = batch
                    accepted.append(record.record_id)
        ack = Ack(batch_id=batch.batch_id, accepted=accepted, duplicates=duplicates, rejected=rejected)
        site, device = message.topic.split("/")[2:4]
        client.publish(f"borne/v1/{site}/{device}/ack", ack.to_json(), qos=1)

    def publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
