"""`borne provision install-units`: the systemd units, the users they run as, and their directories.

The files ship in `provisioning/systemd/` (the top-level `systemd/` points there). On a running system the
command writes them under /etc, lets `systemd-sysusers` and `systemd-tmpfiles` create the users and
directories, then enables and starts the units. With `--root DIR` (an image being built, a test) it only
writes the files under DIR, enablement symlinks included, and runs nothing: at first boot
systemd-sysusers.service and systemd-tmpfiles-setup.service read the same files.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path, PurePosixPath

from provisioning.commands import run_command
from provisioning.layout import DeviceLayout


class UnitsError(Exception):
    """install-units refused or a step failed; the message says what, and the fix."""


SHIPPED_EXEC = "/usr/local/bin/borne"
"""The `borne` path the shipped units name in ExecStart=; replaced by the installed one."""

UNIT_DIR = PurePosixPath("etc/systemd/system")
TMPFILES_DIR = PurePosixPath("etc/tmpfiles.d")
SYSUSERS_DIR = PurePosixPath("etc/sysusers.d")
CONFIG_DIR = PurePosixPath("etc/borne")
WANTED_BY = "multi-user.target"
SERVICE_GROUP = "borne"
"""The group the kiosk and the sync agent run as (provisioning/systemd/borne.sysusers.conf)."""
SYNC_USER = "borne-sync"
"""The sync agent's user, the only one that reads the TLS key."""
FILE_MODE = 0o644


@dataclass(frozen=True)
class ShippedFile:
    source: str
    """File name in provisioning/systemd/."""
    target: PurePosixPath
    """Where it goes, relative to the root."""

    @property
    def is_unit(self) -> bool:
        return self.source.endswith(".service")


@dataclass(frozen=True)
class Plan:
    """What one side (terminal or central) installs."""

    files: tuple[ShippedFile, ...]

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(file.source for file in self.files if file.is_unit)

    def uses(self, directory: PurePosixPath) -> bool:
        return any(file.target.parent == directory for file in self.files)

    @property
    def sysusers(self) -> tuple[PurePosixPath, ...]:
        return tuple(file.target for file in self.files if file.target.parent == SYSUSERS_DIR)

    @property
    def tmpfiles(self) -> tuple[PurePosixPath, ...]:
        return tuple(file.target for file in self.files if file.target.parent == TMPFILES_DIR)


TERMINAL = Plan(
    files=(
        ShippedFile("borne-kiosk.service", UNIT_DIR / "borne-kiosk.service"),
        ShippedFile("borne-sync.service", UNIT_DIR / "borne-sync.service"),
        ShippedFile("borne.sysusers.conf", SYSUSERS_DIR / "borne.conf"),
        ShippedFile("borne.tmpfiles.conf", TMPFILES_DIR / "borne.conf"),
    )
)
CENTRAL = Plan(
    files=(
        ShippedFile("borne-ingest.service", UNIT_DIR / "borne-ingest.service"),
        ShippedFile("borne-ingest.sysusers.conf", SYSUSERS_DIR / "borne-ingest.conf"),
    )
)


def shipped_text(name: str) -> str:
    """The text of a file shipped in provisioning/systemd/."""
    return (files("provisioning") / "systemd" / name).read_text(encoding="utf-8")


def render(file: ShippedFile, executable: PurePosixPath) -> str:
    """The file as installed: a unit's ExecStart= names `executable` instead of the shipped path."""
    text = shipped_text(file.source)
    if not file.is_unit:
        return text
    marker = f"ExecStart={SHIPPED_EXEC} "
    if marker not in text:
        raise RuntimeError(f"{file.source}: no '{marker}' line to point at the installed borne")
    return text.replace(marker, f"ExecStart={executable} ")


def default_executable() -> Path | None:
    """The `borne` script of the running installation (next to this Python), else the one on PATH."""
    beside = Path(sys.executable).with_name("borne")
    if beside.is_file():
        return beside
    found = shutil.which("borne")
    return Path(found) if found else None


def enablement_links(plan: Plan) -> dict[PurePosixPath, str]:
    """The symlinks `systemctl enable` makes for the plan's units: link path -> target."""
    return {
        UNIT_DIR / f"{WANTED_BY}.wants" / unit: f"/{UNIT_DIR / unit}"
        for unit in plan.units
        if f"WantedBy={WANTED_BY}" in shipped_text(unit)
    }


def write_files(root: Path, plan: Plan, executable: PurePosixPath) -> list[Path]:
    """Write the plan's files under `root` (each whole or not at all); returns the paths written."""
    rendered = {file.target: render(file, executable) for file in plan.files}  # fail before writing anything
    written: list[Path] = []
    for target, text in rendered.items():
        path = root / target
        temporary = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(text, encoding="utf-8")
            temporary.chmod(FILE_MODE)
            os.replace(temporary, path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            done = f"; already written: {', '.join(str(p) for p in written)}" if written else ""
            raise UnitsError(
                f"cannot write {error.filename or path} ({error.strerror or error}){done}. Fix: free space on "
                f"{root} or mount it read-write, then run the command again (it rewrites every file)"
            ) from None
        written.append(path)
    return written


def write_links(root: Path, plan: Plan) -> list[Path]:
    """Enable the units offline, as `systemctl --root DIR enable` would."""
    made = []
    for link, target in enablement_links(plan).items():
        path = root / link
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(target)
        made.append(path)
    return made


def hand_tls_to_services(layout: DeviceLayout, gid: int, sync_uid: int) -> list[Path]:
    """Let the sync agent read the TLS identity once its user exists: the directory 0750 root:borne, the
    key 0600 to the sync user (`borne provision init` run before this command could only make them root's)."""
    changed = []
    for path, mode, uid in ((layout.tls_dir, 0o750, 0), (layout.key, 0o600, sync_uid)):
        if path.exists() and not path.is_symlink():
            os.chown(path, uid, gid)
            path.chmod(mode)
            changed.append(path)
    return changed


Runner = Callable[[Sequence[str]], None]


def run_checked(argv: Sequence[str]) -> None:
    """Run a system tool; a failure is a UnitsError with the tool's own message."""
    status, output = run_command(argv, timeout_s=None)
    if status != 0:
        raise UnitsError(f"{' '.join(argv)} failed: {output or f'exit status {status}'}")


def check_live_system(euid: int, which: Callable[[str], str | None], systemd_running: bool) -> None:
    """Refuse, with the fix, to touch a system this command cannot manage."""
    if euid != 0:
        raise UnitsError(
            "install-units writes to /etc and starts services, so it must run as root: "
            "sudo borne provision install-units (or pass --root DIR to only write the files into DIR)"
        )
    missing = [tool for tool in ("systemctl", "systemd-sysusers", "systemd-tmpfiles") if which(tool) is None]
    if missing:
        raise UnitsError(
            f"{', '.join(missing)} not found: this system is not managed by systemd; "
            "install systemd, or pass --root DIR to write the files for an image"
        )
    if not systemd_running:
        raise UnitsError(
            "systemd is not running here (no /run/systemd/system): boot with systemd, "
            "or pass --root DIR to write the files for an image"
        )


HIDDEN_FROM_SERVICES = (PurePosixPath("/root"), PurePosixPath("/home"), PurePosixPath("/run/user"))
"""ProtectHome=yes: the units cannot see these, so neither borne nor its Python may live there."""


def hidden_from_services(executable: Path, *, follow: bool) -> list[str]:
    """The paths the services would need but cannot see: the executable, and (`follow`) its interpreter."""
    candidates = [PurePosixPath(executable)]
    if follow:
        candidates.append(PurePosixPath(executable.resolve()))
        with executable.open("rb") as script:
            first = script.readline(4096)
        if first.startswith(b"#!"):
            words = first[2:].decode(errors="replace").split()
            if words:
                interpreter = Path(words[0])
                candidates += [PurePosixPath(interpreter), PurePosixPath(interpreter.resolve())]
    hidden = [str(path) for path in candidates if any(path.is_relative_to(top) for top in HIDDEN_FROM_SERVICES)]
    return list(dict.fromkeys(hidden))


def refuse_hidden(executable: Path, *, follow: bool) -> None:
    hidden = hidden_from_services(executable, follow=follow)
    if hidden:
        raise UnitsError(
            f"the units could not start {executable}: {', '.join(hidden)} is under /root, /home or /run/user, "
            "which they cannot see (ProtectHome=yes); install borne in a virtualenv they can reach, e.g. "
            "/opt/borne/venv, and pass --executable /opt/borne/venv/bin/borne"
        )


def group_id(name: str) -> int:
    return grp.getgrnam(name).gr_gid


def user_id(name: str) -> int:
    return pwd.getpwnam(name).pw_uid


def install_live(
    plan: Plan,
    executable: Path,
    run: Runner = run_checked,
    *,
    root: Path = Path("/"),
    gid_of: Callable[[str], int] = group_id,
    uid_of: Callable[[str], int] = user_id,
) -> tuple[list[Path], list[Path]]:
    """Write the files under `root` (/ but in tests), create the users and directories, enable and start the
    units. Returns the files written and the TLS files handed to the services' group."""
    written = write_files(root, plan, PurePosixPath(executable))
    run(["systemd-sysusers", *(str(root / path) for path in plan.sysusers)])
    if plan.tmpfiles:
        run(["systemd-tmpfiles", "--create", *(str(root / path) for path in plan.tmpfiles)])
    (root / CONFIG_DIR).mkdir(mode=0o755, parents=True, exist_ok=True)  # borne.toml / ingest.toml go here
    handed = (
        hand_tls_to_services(DeviceLayout(root), gid_of(SERVICE_GROUP), uid_of(SYNC_USER)) if plan is TERMINAL else []
    )
    run(["systemctl", "daemon-reload"])
    run(["systemctl", "enable", *plan.units])
    # --no-block: the sync agent is not "started" until it reaches the broker, which may be hours away.
    run(["systemctl", "restart", "--no-block", *plan.units])
    return written, handed


def install_into_image(root: Path, plan: Plan, executable: Path) -> list[Path]:
    """Only write the files (and the enablement links) under `root`, an image being built; run nothing."""
    refuse_hidden(executable, follow=False)
    return write_files(root, plan, PurePosixPath(executable)) + write_links(root, plan)


def install_here(plan: Plan, executable: Path) -> tuple[list[Path], list[Path]]:
    """Install on this running system (as root, under systemd): `install_live`'s files and TLS files."""
    check_live_system(os.geteuid(), shutil.which, Path("/run/systemd/system").is_dir())
    if not os.access(executable, os.X_OK):
        raise UnitsError(f"--executable {executable}: not an executable file")
    refuse_hidden(executable, follow=True)
    return install_live(plan, executable)


__all__ = [
    "CENTRAL",
    "TERMINAL",
    "Plan",
    "ShippedFile",
    "UnitsError",
    "install_here",
    "install_into_image",
    "render",
    "shipped_text",
    "write_files",
]
