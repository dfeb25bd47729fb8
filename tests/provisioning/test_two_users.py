"""The kiosk and the sync agent as two users of one group, with the units' umask and the tmpfiles
modes: they share the outbox both ways, and only the sync agent reads the TLS key. Real processes
under other uids (setpriv), real SQLite files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioning.units import shipped_text

ROOT = Path(__file__).resolve().parents[2]
GROUP, KIOSK, SYNC = 4600, 4601, 4602  # stand-ins for borne, borne (kiosk) and borne-sync

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root can run processes as other users")

KIOSK_ADDS = """
import sys
from sync_agent.outbox import Outbox
from tests.conftest import make_draft
with Outbox.open(sys.argv[1]) as box:
    box.add(make_draft())
    print(len(box.records()))
"""

SYNC_SENDS = """
import sys, uuid
from datetime import UTC, datetime
from sync_agent.contract import Ack
from sync_agent.outbox import Outbox
with Outbox.open(sys.argv[1]) as box:
    batch = box.claim_batch(max_records=10, max_bytes=1 << 20, now=datetime.now(UTC))
    ids = [record.record_id for record in batch.records]
    box.apply_ack(Ack(batch_id=batch.batch_id, accepted=ids), now=datetime.now(UTC))
    print(len(ids), box.state_of(ids[0]))
"""

READS_KEY = """
import sys
try:
    open(sys.argv[1], "rb").read()
    print("read")
except PermissionError:
    print("denied")
"""


def _umask(unit: str) -> int:
    (value,) = [line.split("=", 1)[1] for line in shipped_text(unit).splitlines() if line.startswith("UMask=")]
    return int(value, 8)


def _run_as(uid: int, umask: int, script: str, *args: Path) -> subprocess.CompletedProcess[str]:
    """`script` run by Python as `uid` (group GROUP, no other group) under `umask`."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv missing: apt-get install util-linux"
    code = f"import os; os.umask({umask}); exec(compile({script!r}, 'script', 'exec'))"
    return subprocess.run(
        [setpriv, f"--reuid={uid}", f"--regid={GROUP}", "--clear-groups", sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )


def _as(uid: int, umask: int, script: str, *args: Path) -> str:
    """What `script` printed, run as `uid`; it must succeed."""
    done = _run_as(uid, umask, script, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def terminal() -> Iterator[Path]:
    """/var/lib/borne and /etc/borne/tls as the tmpfiles rules make them, in a directory every user may enter."""
    top = Path(tempfile.mkdtemp(prefix="borne-two-users-"))
    top.chmod(0o755)
    state = top / "var-lib-borne"
    state.mkdir()
    os.chown(state, KIOSK, GROUP)
    state.chmod(0o2770)  # d /var/lib/borne 2770 borne borne
    tls = top / "tls"
    tls.mkdir()
    os.chown(tls, 0, GROUP)
    tls.chmod(0o750)  # z /etc/borne/tls 0750 root borne
    key = tls / "device.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    os.chown(key, SYNC, GROUP)
    key.chmod(0o600)  # z /etc/borne/tls/device.key 0600 borne-sync borne
    try:
        yield top
    finally:
        shutil.rmtree(top)


def test_the_kiosk_and_the_sync_agent_share_the_outbox_as_two_users(terminal: Path) -> None:
    outbox = terminal / "var-lib-borne/outbox.db"
    kiosk, sync = _umask("borne-kiosk.service"), _umask("borne-sync.service")
    assert _as(KIOSK, kiosk, KIOSK_ADDS, outbox) == "1"  # the kiosk creates the outbox
    assert _as(SYNC, sync, SYNC_SENDS, outbox) == "1 acked"  # the sync agent sends and settles it
    assert _as(KIOSK, kiosk, KIOSK_ADDS, outbox) == "2"  # the kiosk still writes after the sync agent did
    for path in outbox.parent.iterdir():
        assert path.stat().st_gid == GROUP, path  # setgid directory: every file in the group


def test_only_the_sync_agent_reads_the_key(terminal: Path) -> None:
    key = terminal / "tls/device.key"
    assert _as(SYNC, _umask("borne-sync.service"), READS_KEY, key) == "read"
    assert _as(KIOSK, _umask("borne-kiosk.service"), READS_KEY, key) == "denied"


def test_with_the_old_umask_the_sync_agent_could_not_write_the_kiosks_outbox(terminal: Path) -> None:
    """The check that the test above can fail: 0077, as both units had with one shared user."""
    outbox = terminal / "var-lib-borne/outbox.db"
    _as(KIOSK, 0o077, KIOSK_ADDS, outbox)
    assert _run_as(SYNC, 0o077, SYNC_SENDS, outbox).returncode != 0
