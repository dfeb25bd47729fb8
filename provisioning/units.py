"""`borne provision install-units`: the systemd units, the users they run as, and their directories.

The files ship in `provisioning/systemd/` (the top-level `systemd/` points there). On a running system the
command writes them under /etc, lets `systemd-sysusers` and `systemd-tmpfiles` create the users and
directories, then enables and starts the units. With `--root DIR` (an image being built, a test) it only
writes the files under DIR, enablement symlinks included, and runs nothing: at first boot
systemd-sysusers.service and systemd-tmpfiles-setup.service read the same files.
"""

from __future__ import annotations

import grp
import ipaddress
import os
import pwd
import shutil
import stat
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


@dataclass(frozen=True)
class UnitOptions:
    """What the technician may narrow in the terminal's units (nothing by default)."""

    broker_addresses: tuple[str, ...] = ()
    """The sync agent may reach only these networks (the broker's addresses, CIDR) and the resolvers."""
    resolver_addresses: tuple[str, ...] = ()
    """The DNS resolvers the sync agent asks for the broker's address (CIDR); loopback is always allowed."""
    touch_device: PurePosixPath | None = None
    """The kiosk's only input device (instead of every `char-input` device)."""


def ip_networks(values: Sequence[str], option: str) -> tuple[str, ...]:
    """Addresses or CIDR networks as systemd's IPAddressAllow= takes them; UnitsError naming a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise UnitsError(
                f"{option} {value!r} is not an IP address or network: give addresses, e.g. 203.0.113.10 or "
                "203.0.113.0/28 (the broker's: `getent ahosts HOST`; the resolvers: `resolvectl dns` or "
                "the nameserver lines of /etc/resolv.conf)"
            ) from None
    return tuple(dict.fromkeys(networks))


def resolvers_of(resolv_conf: Path) -> tuple[str, ...]:
    """The `nameserver` addresses of a resolv.conf (none if it cannot be read)."""
    try:
        text = resolv_conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            found.append(words[1].split("%")[0])  # fe80::1%eth0: the zone is not part of the address
    return tuple(found)


def touch_device(value: str) -> PurePosixPath:
    """The kiosk's touch device node: an absolute path under /dev/input (a stable by-id or by-path link best)."""
    path = PurePosixPath(value)
    if not path.is_absolute() or not path.is_relative_to("/dev/input") or ".." in path.parts:
        raise UnitsError(
            f"--touch-device {value}: expected the touch screen's node under /dev/input, best its stable link "
            "(ls -l /dev/input/by-id /dev/input/by-path; e.g. /dev/input/by-path/platform-...-event)"
        )
    return path


def _narrowed(source: str, text: str, options: UnitOptions) -> str:
    """The unit with the technician's narrowing applied (each marker line must be there)."""

    def replace(marker: str, replacement: str) -> str:
        if text.count(marker) != 1:
            raise RuntimeError(f"{source}: expected one '{marker.strip()}' line to narrow")
        return text.replace(marker, replacement)

    if source == "borne-sync.service" and options.broker_addresses:
        allowed = ["localhost", *options.broker_addresses, *options.resolver_addresses]
        text = replace(
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"
            "# Only the broker and the DNS resolvers (install-units --broker-address, --resolver-address);\n"
            "# run install-units again when their addresses change.\n"
            "IPAddressDeny=any\n" + "".join(f"IPAddressAllow={network}\n" for network in dict.fromkeys(allowed)),
        )
    if source == "borne-kiosk.service" and options.touch_device is not None:
        text = replace(
            "DeviceAllow=char-input rw\n",
            f"# Only the touch screen (install-units --touch-device), not every input device.\n"
            f"DeviceAllow={options.touch_device} rw\n",
        )
    return text


def shipped_text(name: str) -> str:
    """The text of a file shipped in provisioning/systemd/."""
    return (files("provisioning") / "systemd" / name).read_text(encoding="utf-8")


def render(file: ShippedFile, executable: PurePosixPath, options: UnitOptions | None = None) -> str:
    """The file as installed: a unit's ExecStart= names `executable` instead of the shipped path, and
    `options` narrow what the sync agent may reach and which input device the kiosk may open."""
    text = shipped_text(file.source)
    if not file.is_unit:
        return text
    marker = f"ExecStart={SHIPPED_EXEC} "
    if marker not in text:
        raise RuntimeError(f"{file.source}: no '{marker}' line to point at the installed borne")
    return _narrowed(file.source, text.replace(marker, f"ExecStart={executable} "), options or UnitOptions())


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


def write_files(root: Path, plan: Plan, executable: PurePosixPath, options: UnitOptions | None = None) -> list[Path]:
    """Write the plan's files under `root` (each whole or not at all); returns the paths written."""
    rendered = {file.target: render(file, executable, options) for file in plan.files}  # fail before writing
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
    options: UnitOptions | None = None,
) -> tuple[list[Path], list[Path]]:
    """Write the files under `root` (/ but in tests), create the users and directories, enable and start the
    units. Returns the files written and the TLS files handed to the services' group."""
    written = write_files(root, plan, PurePosixPath(executable), options)
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


def install_into_image(root: Path, plan: Plan, executable: Path, options: UnitOptions | None = None) -> list[Path]:
    """Only write the files (and the enablement links) under `root`, an image being built; run nothing."""
    refuse_hidden(executable, follow=False)
    return write_files(root, plan, PurePosixPath(executable), options) + write_links(root, plan)


def install_here(plan: Plan, executable: Path, options: UnitOptions | None = None) -> tuple[list[Path], list[Path]]:
    """Install on this running system (as root, under systemd): `install_live`'s files and TLS files."""
    check_live_system(os.geteuid(), shutil.which, Path("/run/systemd/system").is_dir())
    if not os.access(executable, os.X_OK):
        raise UnitsError(f"--executable {executable}: not an executable file")
    refuse_hidden(executable, follow=True)
    if options is not None and options.touch_device is not None:
        node = Path(options.touch_device)
        if not node.exists() or not stat.S_ISCHR(node.stat().st_mode):
            raise UnitsError(
                f"--touch-device {node}: no such character device here; plug the touch screen in and pick its "
                "node (ls -l /dev/input/by-id /dev/input/by-path)"
            )
    return install_live(plan, executable, options=options)


__all__ = [
    "CENTRAL",
    "TERMINAL",
    "Plan",
    "ShippedFile",
    "UnitOptions",
    "UnitsError",
    "install_here",
    "install_into_image",
    "ip_networks",
    "render",
    "resolvers_of",
    "shipped_text",
    "touch_device",
    "write_files",
]
