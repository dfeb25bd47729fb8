"""The system checks: settings, disk, clock, display, systemd units."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import UTC, datetime

from borne_common.settings import SettingsError
from provisioning.checks.runner import CheckContext, CheckResult, failed, passed, settings_or_skip
from provisioning.layout import free_space_path

UNITS = ("borne-kiosk.service", "borne-sync.service")


def check_settings(ctx: CheckContext) -> CheckResult:
    if not ctx.config.exists():
        return failed(
            "settings",
            f"{ctx.config} not found: this terminal is not enrolled",
            "enrol it: borne provision init --site ID --department NN --device-id ID --broker mqtts://HOST:PORT",
        )
    try:
        sync, _kiosk = ctx.settings()
    except SettingsError as error:
        return failed(
            "settings",
            " ".join(str(error).split()),
            f"correct the key named above in {ctx.config} (docs/settings.md lists every key)",
        )
    device = sync.device
    return passed(
        "settings",
        f"{ctx.config}: device {device.device_id} at site {device.site_id} ({device.department}), "
        f"broker {sync.sync.broker_host}:{sync.sync.broker_port}",
    )


def check_disk(ctx: CheckContext) -> CheckResult:
    sync, _ = settings_or_skip(ctx)
    where = free_space_path(sync.outbox.path.parent)
    free = shutil.disk_usage(where).free
    detail = (
        f"{free / 1e6:.0f} MB free on the outbox's filesystem ({where}); at least {ctx.min_free_bytes / 1e6:.0f} MB"
    )
    if free < ctx.min_free_bytes:
        return failed(
            "disk",
            detail + " needed",
            "free space: `borne outbox purge`, `journalctl --vacuum-size=100M`, or use a larger SD card",
        )
    return passed("disk", detail + " wanted")


def clock_result(status: int, output: str, now: datetime) -> CheckResult:
    """Decide from `timedatectl show -p NTPSynchronized --value`'s exit status and output."""
    stamp = f"{now:%Y-%m-%d %H:%M:%S} UTC"
    answer = output.strip().lower()
    if status == 0 and answer == "yes":
        return passed("clock", f"synchronised by NTP (now {stamp})")
    if status == 0 and answer == "no":
        return failed(
            "clock",
            f"not synchronised by NTP (now {stamp}); certificates and record hours depend on it",
            "let the terminal reach an NTP server (UDP 123), run `timedatectl set-ntp true`, "
            "wait a minute, check again",
        )
    reason = " ".join(output.split())[:160] or f"exit status {status}"
    return failed(
        "clock",
        f"synchronisation unknown: timedatectl could not tell ({reason}); now {stamp}",
        "run the check on the terminal booted with systemd, "
        "with systemd-timesyncd enabled (`timedatectl set-ntp true`)",
    )


def check_clock(ctx: CheckContext) -> CheckResult:
    status, output = ctx.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    return clock_result(status, output, datetime.now(UTC))


def check_display(ctx: CheckContext) -> CheckResult:
    connected = []
    for status in sorted(ctx.drm_root.glob("card*-*/status")):
        try:
            if status.read_text().strip() == "connected":
                connected.append(status.parent.name)
        except OSError:
            continue
    if connected:
        return passed("display", f"connected: {', '.join(connected)}")
    for variable in ("WAYLAND_DISPLAY", "DISPLAY"):
        if ctx.environ.get(variable):
            return passed("display", f"display server {variable}={ctx.environ[variable]}")
    return failed(
        "display",
        f"no display: no connector under {ctx.drm_root} reports 'connected', "
        "and neither WAYLAND_DISPLAY nor DISPLAY is set",
        "connect the touchscreen (DSI ribbon or HDMI) and reboot; `cat /sys/class/drm/*/status` must say connected",
    )


def units_result(states: Mapping[str, Mapping[str, str]]) -> CheckResult:
    """Decide from `systemctl show -p LoadState,ActiveState,UnitFileState` per unit."""
    problems, fixes = [], []
    for unit, state in states.items():
        if state.get("LoadState") != "loaded":
            problems.append(f"{unit} not installed")
            fixes.append("borne provision install-units")
        elif state.get("ActiveState") != "active":
            problems.append(f"{unit} is {state.get('ActiveState', 'unknown')}")
            fixes.append(f"systemctl start {unit}; `journalctl -u {unit} -b` says why it stopped")
        elif state.get("UnitFileState") != "enabled":
            problems.append(
                f"{unit} is active but {state.get('UnitFileState', 'not enabled')} (will not start at boot)"
            )
            fixes.append(f"systemctl enable {unit}")
    if problems:
        return failed("units", "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    return passed("units", ", ".join(states) + ": active and enabled")


def check_units(ctx: CheckContext) -> CheckResult:
    if not ctx.systemd_root.is_dir():
        return failed(
            "units",
            f"not running under systemd ({ctx.systemd_root} is absent), so the services cannot be checked",
            "run the check on the terminal booted normally; in a container or chroot pass --skip units",
        )
    states: dict[str, dict[str, str]] = {}
    for unit in UNITS:
        status, output = ctx.run(["systemctl", "show", "-p", "LoadState,ActiveState,UnitFileState", unit])
        if status != 0:
            return failed("units", f"systemctl failed: {' '.join(output.split())[:160]}", "check systemd is running")
        states[unit] = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    return units_result(states)
