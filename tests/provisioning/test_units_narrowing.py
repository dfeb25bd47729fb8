"""`install-units --broker-address/--resolver-address/--touch-device`: the sync agent may reach only the
broker and the DNS resolvers, the kiosk may open only the touch screen among the input devices. Checked
on the generated unit text, then as systemd itself reads it (`systemd-analyze verify` and `security`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner

from provisioning.cli import install_units
from provisioning.units import TERMINAL, UnitOptions, UnitsError, install_live, resolvers_of

IMAGE_BORNE = "/opt/borne/venv/bin/borne"
BORNE = str(Path(sys.executable).with_name("borne"))  # systemd-analyze verify wants a command that exists
UNITS = Path("etc/systemd/system")
TOUCH = "/dev/input/by-path/platform-fe205000.i2c-event"


def directives(path: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in path.read_text().splitlines() if line.startswith(f"{key}=")]


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze is missing: apt-get install systemd (scripts/setup.sh does)"
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, check=False)


def ip_item(unit: Path) -> str:
    """systemd's own description of the unit's IP address allow list."""
    result = analyze("security", "--offline=yes", "--no-pager", "--json=short", str(unit))
    (item,) = [i for i in json.loads(result.stdout) if i["name"] == "IPAddressDeny="]
    return str(item["description"])


def test_the_sync_unit_reaches_only_the_broker_and_the_resolvers(tmp_path: Path) -> None:
    plain, narrowed = tmp_path / "plain", tmp_path / "narrowed"
    assert CliRunner().invoke(install_units, ["--root", str(plain), "--executable", BORNE]).exit_code == 0
    args = ["--root", str(narrowed), "--executable", BORNE, "--broker-address", "203.0.113.10"]
    args += ["--broker-address", "2001:db8::/64", "--broker-address", "203.0.113.10/32"]
    args += ["--resolver-address", "192.0.2.53"]
    result = CliRunner().invoke(install_units, args)
    assert result.exit_code == 0, result.output
    assert "borne-sync may reach only loopback, 203.0.113.10/32, 2001:db8::/64, 192.0.2.53/32" in result.output
    sync = narrowed / UNITS / "borne-sync.service"
    assert directives(sync, "IPAddressDeny") == ["any"]
    assert directives(sync, "IPAddressAllow") == ["localhost", "203.0.113.10/32", "2001:db8::/64", "192.0.2.53/32"]
    assert directives(plain / UNITS / "borne-sync.service", "IPAddressDeny") == []
    # Only the sync unit changes; the kiosk keeps every input device without --touch-device.
    kiosk = (narrowed / UNITS / "borne-kiosk.service").read_text()
    assert kiosk == (plain / UNITS / "borne-kiosk.service").read_text()
    assert "DeviceAllow=char-input rw" in kiosk
    verified = analyze("verify", "--man=no", str(sync))
    assert verified.returncode == 0 and (verified.stdout + verified.stderr).strip() == "", verified.stderr
    assert ip_item(plain / UNITS / "borne-sync.service") == "Service does not define an IP address allow list"
    assert ip_item(sync) == "Service defines IP address allow list with non-localhost entries"


def test_the_kiosk_opens_only_the_touch_screen_when_given(tmp_path: Path) -> None:
    args = ["--root", str(tmp_path), "--executable", BORNE, "--touch-device", TOUCH]
    result = CliRunner().invoke(install_units, args)
    assert result.exit_code == 0, result.output
    kiosk = tmp_path / UNITS / "borne-kiosk.service"
    assert directives(kiosk, "DeviceAllow") == ["char-drm rw", f"{TOUCH} rw", "char-alsa rw"]
    assert directives(kiosk, "DevicePolicy") == ["closed"]
    assert directives(tmp_path / UNITS / "borne-sync.service", "IPAddressDeny") == []
    verified = analyze("verify", "--man=no", str(kiosk))
    assert verified.returncode == 0 and (verified.stdout + verified.stderr).strip() == "", verified.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--broker-address", "mqtt.borne.example.fr"], "--broker-address 'mqtt.borne.example.fr' is not an IP"),
        (["--broker-address", "203.0.113.10"], "with --root, give --resolver-address"),
        (["--resolver-address", "192.0.2.53"], "only matters with --broker-address"),
        (["--touch-device", "event3"], "--touch-device event3: expected the touch screen's node under /dev/input"),
        (["--touch-device", "/dev/input/../sda"], "expected the touch screen's node under /dev/input"),
        (["--central", "--touch-device", TOUCH], "leave them out with --central"),
    ],
)
def test_bad_narrowing_is_refused_before_anything_is_written(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(install_units, ["--root", str(tmp_path / "root"), "--executable", IMAGE_BORNE, *args])
    assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "root").exists()


def test_resolvers_are_read_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# generated\nsearch example.fr\nnameserver 192.0.2.53\nnameserver fe80::1%eth0\noptions edns0\n")
    assert resolvers_of(conf) == ("192.0.2.53", "fe80::1")
    assert resolvers_of(tmp_path / "absent") == ()


def test_the_live_install_writes_the_narrowed_units(tmp_path: Path) -> None:
    steps: list[list[str]] = []
    options = UnitOptions(("203.0.113.0/28",), ("127.0.0.53/32",), PurePosixPath(TOUCH))
    install_live(
        TERMINAL,
        Path(IMAGE_BORNE),
        lambda argv: steps.append(list(argv)),
        root=tmp_path,
        gid_of=lambda _name: 0,
        uid_of=lambda _name: 0,
        options=options,
    )
    assert directives(tmp_path / UNITS / "borne-sync.service", "IPAddressAllow") == [
        "localhost",
        "203.0.113.0/28",
        "127.0.0.53/32",
    ]
    assert f"{TOUCH} rw" in directives(tmp_path / UNITS / "borne-kiosk.service", "DeviceAllow")
    assert ["systemctl", "daemon-reload"] in steps


def test_a_unit_without_the_line_to_narrow_is_an_error() -> None:
    from provisioning.units import _narrowed

    with pytest.raises(RuntimeError, match="expected one 'DeviceAllow=char-input rw' line"):
        _narrowed("borne-kiosk.service", "[Service]\n", UnitOptions(touch_device=PurePosixPath(TOUCH)))
    with pytest.raises(UnitsError):
        from provisioning.units import touch_device

        touch_device("/sys/class/input/event3")
