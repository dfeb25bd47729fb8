"""Running the system tools provisioning uses (timedatectl, systemctl, systemd-sysusers, systemd-tmpfiles)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


def run_command(args: Sequence[str], timeout_s: float | None = 15.0) -> tuple[int, str]:
    """Run a system tool: (exit status, its stdout and stderr); 127 when absent, 124 when it did not answer."""
    try:
        done = subprocess.run(  # noqa: S603 — fixed system tools (timedatectl, systemctl)
            list(args), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError:
        return 127, f"{args[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, f"{args[0]}: no answer within {timeout_s:.0f} s"
    return done.returncode, (done.stdout + done.stderr).strip()
