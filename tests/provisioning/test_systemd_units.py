"""The shipped units, as systemd itself reads them: `systemd-analyze verify` finds nothing to say,
`systemd-analyze security --offline=yes` scores them within the issue's thresholds, and the directives that
carry the design (no network for the kiosk, no devices for sync, no core dump or swap) are there."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from edge_models.options import VoiceOptions
from provisioning.units import CENTRAL, SHIPPED_EXEC, TERMINAL, render, shipped_text, write_files

ANALYZE = shutil.which("systemd-analyze")

BORNE = Path(sys.executable).with_name("borne")
UNIT_DIR = Path("etc/systemd/system")

MAX_EXPOSURE = {"borne-kiosk.service": 3.0, "borne-sync.service": 2.0, "borne-ingest.service": 2.0}
UNITS = sorted(MAX_EXPOSURE)


def directives(unit: str) -> dict[str, list[str]]:
    """`Key` -> every value it is given in the shipped file (sections merged; keys may repeat)."""
    found: dict[str, list[str]] = {}
    for raw in shipped_text(unit).splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


def one(unit: str, key: str) -> str:
    values = directives(unit).get(key, [])
    assert len(values) == 1, f"{unit}: expected one {key}=, found {values}"
    return values[0]


def seconds(value: str) -> float:
    """A systemd time span as seconds ("30s", "10min", "1min 30s", "2h")."""
    units = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", value):
        total += float(amount) * units[unit]
    return total


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both sides installed under a root, ExecStart= pointing at this checkout's real `borne`."""
    root = tmp_path_factory.mktemp("root")
    for plan in (TERMINAL, CENTRAL):
        write_files(root, plan, PurePosixPath(BORNE))
    return root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None, "systemd-analyze is missing: apt-get install systemd (scripts/setup.sh does)"
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=120, check=False)


def test_verify_finds_nothing_to_report(installed: Path) -> None:
    paths = [str(installed / UNIT_DIR / unit) for unit in UNITS]
    result = analyze("verify", "--man=no", *paths)
    output = (result.stdout + result.stderr).strip()
    print(output or "systemd-analyze verify: no output")
    assert result.returncode == 0, output
    assert output == "", f"systemd-analyze verify reported:\n{output}"


def test_verify_catches_a_broken_unit(installed: Path, tmp_path: Path) -> None:
    """The check above can fail: a misspelt directive and a missing command are reported."""
    broken = tmp_path / "borne-sync.service"
    text = (installed / UNIT_DIR / "borne-sync.service").read_text()
    broken.write_text(text.replace("PrivateDevices=yes", "PrivateDevice=yes").replace(str(BORNE), "/nonexistent/borne"))
    result = analyze("verify", "--man=no", str(broken))
    output = result.stdout + result.stderr
    assert "PrivateDevice" in output
    assert "/nonexistent/borne" in output


@pytest.mark.parametrize("unit", UNITS)
def test_security_exposure_is_within_the_threshold(installed: Path, unit: str) -> None:
    path = str(installed / UNIT_DIR / unit)
    result = analyze("security", "--offline=yes", "--no-pager", path)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\S+)", result.stdout)
    assert match, result.stdout + result.stderr
    score = float(match.group(1))
    print(f"{unit}: systemd-analyze security --offline=yes: {score} {match.group(2)} (limit {MAX_EXPOSURE[unit]})")
    assert score <= MAX_EXPOSURE[unit]
    threshold = round(MAX_EXPOSURE[unit] * 10)  # --threshold counts tenths (0-100)
    enforced = analyze("security", "--offline=yes", "--no-pager", f"--threshold={threshold}", path)
    assert enforced.returncode == 0, enforced.stdout
    stricter = analyze("security", "--offline=yes", "--no-pager", f"--threshold={round(score * 10) - 1}", path)
    assert stricter.returncode != 0, "the threshold check must be able to fail"


def security_items(installed: Path, unit: str) -> dict[str, bool]:
    """systemd's own reading of the unit: each security item's name -> whether it is set."""
    result = analyze("security", "--offline=yes", "--no-pager", "--json=short", str(installed / UNIT_DIR / unit))
    return {item["name"]: item["set"] for item in json.loads(result.stdout)}


def test_kiosk_has_no_network_and_only_its_devices(installed: Path) -> None:
    items = security_items(installed, "borne-kiosk.service")
    assert items["PrivateNetwork="] is True
    assert items["IPAddressDeny="] is True
    assert items["RestrictAddressFamilies=~AF_(INET|INET6)"] is True
    assert items["RestrictAddressFamilies=~AF_PACKET"] is True
    assert items["NoNewPrivileges="] is True
    assert items["ProtectHome="] is True
    kiosk = directives("borne-kiosk.service")
    assert one("borne-kiosk.service", "PrivateNetwork") == "yes"
    assert one("borne-kiosk.service", "DevicePolicy") == "closed"
    allowed = {value.split()[0] for value in kiosk["DeviceAllow"]}
    assert allowed == {"char-drm", "char-input", "char-alsa"}
    assert set(one("borne-kiosk.service", "SupplementaryGroups").split()) == {"video", "render", "input", "audio"}
    assert set(one("borne-kiosk.service", "RestrictAddressFamilies").split()) <= {"AF_UNIX", "AF_NETLINK"}
    assert set(one("borne-kiosk.service", "ReadWritePaths").split()) == {"/var/lib/borne", "/run/borne"}
    assert one("borne-kiosk.service", "InaccessiblePaths") == "-/etc/borne/tls"
    # the bundles it loads are read-only to it, where the settings put them by default
    assert one("borne-kiosk.service", "ReadOnlyPaths") == f"-{VoiceOptions().models_dir}"


def test_sync_has_network_and_no_device(installed: Path) -> None:
    items = security_items(installed, "borne-sync.service")
    assert items["PrivateDevices="] is True
    assert items["PrivateNetwork="] is False
    sync = directives("borne-sync.service")
    assert "DeviceAllow" not in sync
    assert "SupplementaryGroups" not in sync
    assert one("borne-sync.service", "PrivateDevices") == "yes"
    assert one("borne-sync.service", "ReadWritePaths") == "/var/lib/borne"


def test_ingest_has_no_device_and_its_own_user(installed: Path) -> None:
    items = security_items(installed, "borne-ingest.service")
    assert items["PrivateDevices="] is True
    assert one("borne-ingest.service", "User") == "borne-ingest"


def test_kiosk_and_sync_are_two_users_of_one_group() -> None:
    """Neither can read the other's memory; the sync agent alone reads the TLS key (0600, its own)."""
    assert one("borne-kiosk.service", "User") == "borne" and one("borne-sync.service", "User") == "borne-sync"
    assert one("borne-kiosk.service", "Group") == one("borne-sync.service", "Group") == "borne"
    assert one("borne-sync.service", "PrivateUsers") == "yes"  # which keeps the primary group only
    assert one("borne-ingest.service", "StateDirectory") == "borne-ingest"


@pytest.mark.parametrize("unit", UNITS)
def test_no_core_dump_no_swap_and_a_watchdog(unit: str) -> None:
    assert one(unit, "LimitCORE") == "0"
    assert one(unit, "MemorySwapMax") == "0"
    assert one(unit, "Type") == "notify"
    assert one(unit, "NotifyAccess") == "main"
    assert seconds(one(unit, "WatchdogSec")) > 0
    assert one(unit, "Restart") == "always"
    assert seconds(one(unit, "RestartSec")) >= 1
    assert one(unit, "CapabilityBoundingSet") == ""
    assert one(unit, "ProtectSystem") == "strict"
    # the ingest store is its own; the kiosk and the sync agent share the outbox through their group
    assert one(unit, "UMask") == ("0077" if unit == "borne-ingest.service" else "0007")
    assert "@system-service" in directives(unit)["SystemCallFilter"]
    assert one(unit, "ExecStart").startswith(f"{SHIPPED_EXEC} ")


def test_kiosk_environment_keeps_libraries_offline() -> None:
    environment = " ".join(directives("borne-kiosk.service")["Environment"]).split()
    assert "ORT_DISABLE_TELEMETRY=1" in environment
    assert "HF_HUB_OFFLINE=1" in environment


def test_sync_watchdog_outlasts_one_connection_attempt() -> None:
    """The agent pings from its drain loop and while waiting between attempts; its longest silence is
    one connection attempt, which must fit in WatchdogSec."""
    from borne_common.systemd import WATCHDOG_PING_S
    from sync_agent.agent import CONNECT_TIMEOUT_S

    silent = CONNECT_TIMEOUT_S + 60 + WATCHDOG_PING_S  # 60 s: DNS and TCP connect timeouts
    assert seconds(one("borne-sync.service", "WatchdogSec")) >= silent
    assert seconds(one("borne-sync.service", "TimeoutStartSec")) > 0  # READY=1 comes without the broker


def test_ingest_watchdog_outlasts_its_pings() -> None:
    from borne_common.systemd import WATCHDOG_PING_S

    assert seconds(one("borne-ingest.service", "WatchdogSec")) >= 4 * WATCHDOG_PING_S


def test_installed_units_differ_from_the_shipped_ones_only_in_exec_start() -> None:
    for plan in (TERMINAL, CENTRAL):
        for file in plan.files:
            shipped = shipped_text(file.source).splitlines()
            installed = render(file, PurePosixPath(BORNE)).splitlines()
            changed = [(before, after) for before, after in zip(shipped, installed, strict=True) if before != after]
            if file.is_unit:
                assert len(changed) == 1, changed
                before, after = changed[0]
                assert before.startswith(f"ExecStart={SHIPPED_EXEC} ")
                assert after == before.replace(SHIPPED_EXEC, str(BORNE))
            else:
                assert changed == []
