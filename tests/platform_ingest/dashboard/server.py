"""`borne dashboard run` as a real process (uvicorn) on a free port, for the HTTP and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def dashboard_server(db_url: str, workdir: Path, *extra_settings: str) -> Iterator[str]:
    """Run `borne dashboard run` on `db_url` until the block ends; yields its base URL."""
    port = free_port()
    config = workdir / "borne.toml"
    config.write_text(
        "[dashboard]\n"
        f'cookie_secret_file = "{workdir / "cookie-secret"}"\n' + "".join(f"{line}\n" for line in extra_settings),
        encoding="utf-8",
    )
    log = (workdir / "dashboard.log").open("w+b")
    command = [sys.executable, "-m", "borne_cli", "dashboard", "run", "--config", str(config), "--db", db_url]
    command += ["--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/connexion", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(
                        f"borne dashboard run did not start: {log.read().decode(errors='replace')}"
                    ) from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
