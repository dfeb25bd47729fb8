"""The kiosk does its whole job with no network, as borne-kiosk.service runs it: a scripted session (screen,
touches, the French clip heard, transcribed and moderated, the record stored) in a network namespace of its
own, under a seccomp filter that refuses every socket family but AF_UNIX and AF_NETLINK, which is how
systemd applies `RestrictAddressFamilies=AF_UNIX AF_NETLINK`."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from provisioning.units import shipped_text
from tests.support.seccomp import SCMP_CMP_EQ, SCMP_CMP_GT, ArgCompare, exec_under_filter, fail_with

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BORNE = str(Path(sys.executable).with_name("borne"))
AF_MAX = 46  # Linux 6.x: the highest address family number


def kiosk_address_families() -> list[str]:
    lines = shipped_text("borne-kiosk.service").splitlines()
    (value,) = [line.split("=", 1)[1] for line in lines if line.startswith("RestrictAddressFamilies=")]
    return value.split()


def exec_restricting_address_families(families: Sequence[str], argv: Sequence[str]) -> None:
    """Refuse socket() (EAFNOSUPPORT) for every family not in `families`, then exec `argv` under the filter."""
    allowed = {int(getattr(socket, name)) for name in families}
    refuse = fail_with(errno.EAFNOSUPPORT)
    rules = [
        ("socket", refuse, ArgCompare(0, SCMP_CMP_EQ, family, 0))
        for family in range(AF_MAX + 1)
        if family not in allowed
    ]
    rules.append(("socket", refuse, ArgCompare(0, SCMP_CMP_GT, AF_MAX, 0)))
    exec_under_filter(rules, argv)


LAUNCHER = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from tests.provisioning.test_systemd_kiosk_sandbox import exec_restricting_address_families; "
    "exec_restricting_address_families(sys.argv[2].split(), sys.argv[3:])"
)

SOCKET_PROBE = """
import socket
for family in ("AF_INET", "AF_INET6", "AF_PACKET", "AF_UNIX", "AF_NETLINK"):
    try:
        kind = socket.SOCK_RAW if family == "AF_NETLINK" else socket.SOCK_DGRAM
        socket.socket(getattr(socket, family), kind).close()
        print(family, "allowed")
    except OSError as error:
        print(family, "refused" if error.errno == 97 else error)
"""


def sandboxed(argv: Sequence[str]) -> list[str]:
    """`argv` in a new network namespace (loopback up, as PrivateNetwork=yes) under the kiosk's socket filter."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    assert unshare, "unshare (util-linux) is missing"
    user = [] if os.geteuid() == 0 else ["--map-root-user"]
    inner = [sys.executable, "-c", LAUNCHER, str(ROOT), " ".join(kiosk_address_families()), *argv]
    script = f'{ip} link set lo up && exec "$@"'
    return [unshare, *user, "--net", "sh", "-c", script, "sandbox", *inner]


def run(argv: Sequence[str], tmp_path: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "ORT_DISABLE_TELEMETRY": "1",
    }
    return subprocess.run(
        sandboxed(argv), capture_output=True, text=True, env=env, cwd=tmp_path, timeout=timeout, check=False
    )


def test_the_sandbox_has_no_network_and_refuses_internet_sockets(tmp_path: Path) -> None:
    families = run([sys.executable, "-c", SOCKET_PROBE], tmp_path, timeout=60)
    assert families.returncode == 0, families.stderr
    assert families.stdout.split("\n")[:5] == [
        "AF_INET refused",
        "AF_INET6 refused",
        "AF_PACKET refused",
        "AF_UNIX allowed",
        "AF_NETLINK allowed",
    ]
    links = run(["/usr/sbin/ip", "-o", "link"], tmp_path, timeout=60)
    assert links.returncode == 0, links.stderr
    names = [line.split(":")[1].strip() for line in links.stdout.splitlines()]
    assert names == ["lo"], links.stdout


def test_the_kiosk_does_its_whole_job_without_network(tmp_path: Path) -> None:
    from edge_models.samples import FRENCH_SAMPLE_TEXT

    result = run([BORNE, "kiosk", "--demo", "--offscreen"], tmp_path, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "stored in" in result.stdout
    assert FRENCH_SAMPLE_TEXT.lower() in result.stdout.lower(), result.stdout
