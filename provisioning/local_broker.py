"""A Mosquitto on loopback with its own CAs, TLS, client certificates and per-device rights, for the demo, the
benchmarks and the tests: everything lives in one directory and the broker listens on two free ports, the
terminals' (`port`, fleet CA) and the platform's (`platform_port`, platform CA), as `borne provision fleet
broker-config` writes it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from borne_common.ids import is_platform_identity
from provisioning.broker import FleetDevice, PlatformListener, dynamic_security, mosquitto_conf, platform_acl
from provisioning.pki import KeyAndCertificate, create_ca, issue

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
MISSING = "mosquitto is not installed: install the Debian package mosquitto (make setup does it as root)"


def start_mosquitto(
    config: Path, port: int, host: str = "127.0.0.1", log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start mosquitto with `config` and return once it listens on `port`; if it exits or does not listen
    within 10 s, RuntimeError with what it printed (and its `log`)."""
    if not Path(MOSQUITTO).exists():
        raise RuntimeError(MISSING)
    process = subprocess.Popen(  # noqa: S603 — our own broker binary and config
        [MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wait_listening(process, port, host, log)
    return process


def wait_listening(
    process: subprocess.Popen[bytes], port: int, host: str = "127.0.0.1", log: Path | None = None
) -> None:
    """Return once mosquitto listens on `port`; RuntimeError (and the process killed) if it exits or
    does not listen within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            printed = process.stderr.read().decode() if process.stderr else ""
            logged = log.read_text() if log is not None and log.exists() else ""
            raise RuntimeError(f"mosquitto exited: {printed}\n{logged}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(f"mosquitto did not listen on {port}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalPKI:
    """The fleet CA with a server certificate for localhost, the platform's own CA, and one client
    certificate per identity: a platform identity's (`ingest…`, `platform…`) from the platform CA, as
    `borne provision fleet platform-cert` makes it, a terminal's from the fleet CA."""

    root: Path
    ca: KeyAndCertificate = field(default_factory=lambda: create_ca("Borne local CA"))
    platform_ca: KeyAndCertificate = field(default_factory=lambda: create_ca("Borne local platform CA"))

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "ca.crt").write_bytes(self.ca.cert_pem)
        (self.root / "platform-ca.crt").write_bytes(self.platform_ca.cert_pem)
        issue(self.ca, "localhost", server_names=["localhost", "127.0.0.1"]).write(
            self.root / "server.crt", self.root / "server.key"
        )

    @property
    def ca_file(self) -> Path:
        """The fleet CA: it signed the broker's certificate and the terminals'."""
        return self.root / "ca.crt"

    @property
    def platform_ca_file(self) -> Path:
        return self.root / "platform-ca.crt"

    def client(self, identity: str, ca: KeyAndCertificate | None = None) -> tuple[Path, Path]:
        """(certificate, key) files for `identity`, signed by `ca`, else by the platform CA for a
        platform identity and by the fleet CA for any other."""
        cert, key = self.root / f"{identity}.crt", self.root / f"{identity}.key"
        if ca is not None or not cert.exists():
            default = self.platform_ca if is_platform_identity(identity) else self.ca
            issue(ca or default, identity).write(cert, key)
        return cert, key


class LocalBroker:
    """One mosquitto process; `kill()` and `start()` again keep its ports, config and persistence.

    Terminals connect to `port`, the platform's consumers to `platform_port`."""

    def __init__(
        self,
        root: Path,
        pki: LocalPKI,
        devices: Sequence[FleetDevice],
        ingest_identities: Sequence[str] = ("ingest",),
        passwords: dict[str, str] | None = None,
    ) -> None:
        """`passwords` (user -> password) switches the listeners from client certificates to passwords
        (the platform's users log in on the platform's listener, the others on the terminals')."""
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.platform_port = free_port()
        while self.platform_port == self.port:
            self.platform_port = free_port()
        self.host = "127.0.0.1"
        self.pki = pki
        (root / "dynamic-security.json").write_text(dynamic_security(devices))
        (root / "platform.acl").write_text(platform_acl(ingest_identities))
        (root / "data").mkdir(exist_ok=True)
        self.log = root / "mosquitto.log"
        password_file = platform_password_file = None
        if passwords:
            password_file, platform_password_file = root / "passwords", root / "platform-passwords"
            for path in (password_file, platform_password_file):
                path.write_text("")
            for user, password in passwords.items():
                target = platform_password_file if is_platform_identity(user) else password_file
                subprocess.run(  # noqa: S603 — mosquitto's own tool, our arguments
                    [MOSQUITTO_PASSWD, "-b", str(target), user, password], check=True, capture_output=True
                )
        (root / "mosquitto.conf").write_text(
            mosquitto_conf(
                port=self.port,
                bind_address=self.host,
                cafile=pki.ca_file,
                certfile=pki.root / "server.crt",
                keyfile=pki.root / "server.key",
                dynsec_file=root / "dynamic-security.json",
                platform=PlatformListener(
                    port=self.platform_port,
                    bind_address=self.host,
                    cafile=pki.platform_ca_file,
                    acl_file=root / "platform.acl",
                    password_file=platform_password_file,
                ),
                persistence_dir=root / "data",
                run_as_user="root" if os.geteuid() == 0 else None,
                log_file=self.log,
                password_file=password_file,
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalBroker:
        self.process = start_mosquitto(self.root / "mosquitto.conf", self.port, self.host, self.log)
        wait_listening(self.process, self.platform_port, self.host, self.log)
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""
