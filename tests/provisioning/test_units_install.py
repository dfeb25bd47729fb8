"""`borne provision install-units`: with --root it writes exactly the unit, sysusers and tmpfiles files
(which systemd's own tools then turn into a user and directories); without --root it refuses clearly
where it cannot manage the system, and otherwise runs the systemd steps in order."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioning.cli import install_units
from provisioning.units import (
    CENTRAL,
    TERMINAL,
    UnitsError,
    check_live_system,
    default_executable,
    hidden_from_services,
    install_live,
)

BORNE = Path(sys.executable).with_name("borne")
IMAGE_BORNE = "/opt/borne/venv/bin/borne"

TERMINAL_FILES = {
    "etc/systemd/system/borne-kiosk.service",
    "etc/systemd/system/borne-sync.service",
    "etc/sysusers.d/borne.conf",
    "etc/tmpfiles.d/borne.conf",
}
TERMINAL_LINKS = {
    "etc/systemd/system/multi-user.target.wants/borne-kiosk.service": "/etc/systemd/system/borne-kiosk.service",
    "etc/systemd/system/multi-user.target.wants/borne-sync.service": "/etc/systemd/system/borne-sync.service",
}
CENTRAL_FILES = {"etc/systemd/system/borne-ingest.service", "etc/sysusers.d/borne-ingest.conf"}
CENTRAL_LINKS = {
    "etc/systemd/system/multi-user.target.wants/borne-ingest.service": "/etc/systemd/system/borne-ingest.service"
}


def tree(root: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Regular files (relative path -> mode) and symlinks (relative path -> target) under `root`."""
    regular: dict[str, int] = {}
    links: dict[str, str] = {}
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            links[relative] = os.readlink(path)
        elif path.is_file():
            regular[relative] = stat.S_IMODE(path.stat().st_mode)
    return regular, links


def install(*args: str) -> str:
    result = CliRunner().invoke(install_units, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(
    ("flags", "expected_files", "expected_links"),
    [((), TERMINAL_FILES, TERMINAL_LINKS), (("--central",), CENTRAL_FILES, CENTRAL_LINKS)],
    ids=["terminal", "central"],
)
def test_root_writes_exactly_the_expected_files(
    tmp_path: Path, flags: tuple[str, ...], expected_files: set[str], expected_links: dict[str, str]
) -> None:
    output = install("--root", str(tmp_path), "--executable", IMAGE_BORNE, *flags)
    regular, links = tree(tmp_path)
    assert set(regular) == expected_files
    assert set(regular.values()) == {0o644}
    assert links == expected_links
    for relative in expected_files:
        assert f"wrote {tmp_path / relative}" in output
    for relative in expected_files:
        if relative.endswith(".service"):
            exec_lines = [line for line in (tmp_path / relative).read_text().splitlines() if line.startswith("Exec")]
            assert len(exec_lines) == 1
            assert exec_lines[0].startswith(f"ExecStart={IMAGE_BORNE} ")
    assert "nothing was started" in output


def test_root_twice_gives_the_same_tree(tmp_path: Path) -> None:
    install("--root", str(tmp_path), "--executable", IMAGE_BORNE)
    first = tree(tmp_path), {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    install("--root", str(tmp_path), "--executable", IMAGE_BORNE)
    assert (tree(tmp_path), {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}) == first


def test_default_executable_is_this_installation() -> None:
    assert default_executable() == BORNE


def test_root_without_executable_is_refused_rather_than_naming_this_machines_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(install_units, ["--root", str(tmp_path)])
    assert result.exit_code == 2 and "give --executable with the path of borne inside it" in result.output
    assert not any(tmp_path.iterdir())


def test_systemd_tools_make_the_user_and_directories_from_the_written_files(tmp_path: Path) -> None:
    """What first boot does with the image: systemd-sysusers and systemd-tmpfiles on the written files."""
    sysusers, tmpfiles = shutil.which("systemd-sysusers"), shutil.which("systemd-tmpfiles")
    assert sysusers and tmpfiles, "systemd-sysusers/systemd-tmpfiles missing: apt-get install systemd"
    install("--root", str(tmp_path), "--executable", IMAGE_BORNE)
    key = tmp_path / "etc/borne/tls/device.key"  # as `provision init --root` leaves it on a card: root's alone
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o600)
    subprocess.run([sysusers, f"--root={tmp_path}"], check=True, capture_output=True)
    subprocess.run([tmpfiles, f"--root={tmp_path}", "--create"], check=True, capture_output=True)
    users = {line.split(":")[0]: line.split(":") for line in (tmp_path / "etc/passwd").read_text().splitlines()}
    groups = {line.split(":")[0] for line in (tmp_path / "etc/group").read_text().splitlines()}
    assert {"borne", "input", "render"} <= groups
    borne, sync = users["borne"], users["borne-sync"]
    for user in (borne, sync):
        assert int(user[2]) < 1000, "the services' users must be system users"
        assert user[6] == "/usr/sbin/nologin"
    assert sync[3] == borne[3] and sync[2] != borne[2]  # two users, one primary group
    for directory, mode in (("var/lib/borne", 0o2770), ("run/borne", 0o750)):
        info = (tmp_path / directory).stat()
        assert stat.S_IMODE(info.st_mode) == mode
        assert (info.st_uid, info.st_gid) == (int(borne[2]), int(borne[3]))
    # at first boot the sync agent can read the key, and nobody else
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_uid == int(sync[2])
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o750 and key.parent.stat().st_gid == int(borne[3])


def test_central_user_is_made_by_sysusers(tmp_path: Path) -> None:
    sysusers = shutil.which("systemd-sysusers")
    assert sysusers, "systemd-sysusers missing: apt-get install systemd"
    install("--root", str(tmp_path), "--executable", IMAGE_BORNE, "--central")
    subprocess.run([sysusers, f"--root={tmp_path}"], check=True, capture_output=True)
    passwd = (tmp_path / "etc/passwd").read_text()
    assert passwd.startswith("borne-ingest:") or "\nborne-ingest:" in passwd
    assert "\nborne:" not in passwd and not passwd.startswith("borne:")


def test_relative_executable_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(install_units, ["--root", str(tmp_path), "--executable", "bin/borne"])
    assert result.exit_code != 0
    assert "absolute path" in result.output
    assert list(tmp_path.iterdir()) == []


def test_refused_without_root_and_without_dash_dash_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unprivileged user (this checkout's Python lives under /root, so the test stands in for the uid)."""
    monkeypatch.setattr("provisioning.units.os.geteuid", lambda: 1000)
    result = CliRunner().invoke(install_units, [])
    assert result.exit_code == 1
    assert "must run as root" in result.output
    assert "sudo borne provision install-units" in result.output
    assert "--root DIR" in result.output


def test_refused_where_systemd_is_absent(tmp_path: Path) -> None:
    """No systemctl on PATH: the command says so and names --root; nothing is written to /etc."""
    unit = Path("/etc/systemd/system/borne-kiosk.service")
    existed = unit.exists()
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run(
        [str(BORNE), "provision", "install-units"],
        capture_output=True,
        text=True,
        env={"PATH": str(empty), "HOME": str(tmp_path)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    expected = "systemctl, systemd-sysusers, systemd-tmpfiles not found" if os.geteuid() == 0 else "must run as root"
    assert expected in result.stderr
    assert "--root DIR" in result.stderr
    assert unit.exists() == existed


@pytest.mark.parametrize(
    ("euid", "tools", "running", "message"),
    [
        (1000, True, True, "must run as root"),
        (0, False, True, "systemctl, systemd-sysusers, systemd-tmpfiles not found"),
        (0, True, False, "systemd is not running here"),
    ],
)
def test_live_system_checks(euid: int, tools: bool, running: bool, message: str) -> None:
    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if tools else None

    with pytest.raises(UnitsError, match=message):
        check_live_system(euid, which, running)
    check_live_system(0, lambda name: f"/usr/bin/{name}", True)


def test_live_install_runs_the_systemd_steps_in_order(tmp_path: Path) -> None:
    commands: list[list[str]] = []

    def record(argv: Sequence[str]) -> None:
        commands.append(list(argv))

    # A terminal enrolled before the borne group existed: its key is root's alone (what `init` does then).
    tls = tmp_path / "etc/borne/tls"
    tls.mkdir(parents=True, mode=0o700)
    (tls / "device.key").write_bytes(b"key")
    (tls / "device.key").chmod(0o600)
    service_gid = os.getgid() + 4242 if os.geteuid() == 0 else os.getgid()
    sync_uid = os.getuid() + 4343 if os.geteuid() == 0 else os.getuid()

    written, handed = install_live(
        TERMINAL, BORNE, record, root=tmp_path, gid_of=lambda name: service_gid, uid_of=lambda name: sync_uid
    )
    assert {path.relative_to(tmp_path).as_posix() for path in written} == TERMINAL_FILES
    assert commands == [
        ["systemd-sysusers", str(tmp_path / "etc/sysusers.d/borne.conf")],
        ["systemd-tmpfiles", "--create", str(tmp_path / "etc/tmpfiles.d/borne.conf")],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "borne-kiosk.service", "borne-sync.service"],
        ["systemctl", "restart", "--no-block", "borne-kiosk.service", "borne-sync.service"],
    ]
    assert handed == [tls, tls / "device.key"]
    for path, mode, owner in ((tls, 0o750, 0), (tls / "device.key", 0o600, sync_uid)):
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (mode, owner, service_gid)

    commands.clear()
    written, handed = install_live(CENTRAL, BORNE, record, root=tmp_path / "central", gid_of=lambda name: 0)
    assert handed == []
    assert commands == [
        ["systemd-sysusers", str(tmp_path / "central/etc/sysusers.d/borne-ingest.conf")],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "borne-ingest.service"],
        ["systemctl", "restart", "--no-block", "borne-ingest.service"],
    ]
    assert (tmp_path / "central/etc/borne").is_dir()


def test_a_failing_step_is_reported_with_the_tool_message(tmp_path: Path) -> None:
    from provisioning.units import run_checked

    with pytest.raises(UnitsError, match=r"systemd-tmpfiles --create .*missing\.conf failed: .*No such file"):
        run_checked(["systemd-tmpfiles", "--create", str(tmp_path / "missing.conf")])


def test_an_executable_the_services_cannot_see_is_refused(tmp_path: Path) -> None:
    """ProtectHome=yes hides /root and /home from the units: a borne installed there would never start."""
    root = tmp_path / "image"
    result = CliRunner().invoke(install_units, ["--root", str(root), "--executable", "/home/tech/venv/bin/borne"])
    assert result.exit_code == 1
    assert "ProtectHome=yes" in result.output
    assert "--executable /opt/borne/venv/bin/borne" in result.output
    assert not root.exists()


def test_the_interpreter_of_the_script_counts_too(tmp_path: Path) -> None:
    script = tmp_path / "borne"
    script.write_text("#!/home/tech/venv/bin/python3\nprint()\n")
    assert hidden_from_services(script, follow=True) == ["/home/tech/venv/bin/python3"]
    script.write_text("#!/opt/borne/venv/bin/python3\nprint()\n")
    assert hidden_from_services(script, follow=True) == []
    assert hidden_from_services(Path("/root/venv/bin/borne"), follow=False) == ["/root/venv/bin/borne"]


def test_a_full_target_gives_a_clear_error_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake for the full disk (root may write anywhere, so a real read-only target is hard to make here)."""
    real_write = Path.write_text

    def full(self: Path, *args: object, **kwargs: object) -> int:
        if self.name.startswith(".borne-sync"):
            real_write(self, "half", encoding="utf-8")
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full)
    result = CliRunner().invoke(install_units, ["--root", str(tmp_path), "--executable", IMAGE_BORNE])
    assert result.exit_code == 1 and "No space left on device" in result.output and "Fix: free space" in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.rglob(".*.tmp"))
