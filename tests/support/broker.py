"""The tests' broker: a real Mosquitto on a free port with TLS, client certificates and ACL."""

from __future__ import annotations

from provisioning.local_broker import LocalBroker as Broker
from provisioning.local_broker import LocalPKI, free_port


class TestPKI(LocalPKI):
    """A test CA with a server certificate for localhost and one client certificate per identity."""

    __test__ = False  # a helper, not a test class


__all__ = ["Broker", "TestPKI", "free_port"]
