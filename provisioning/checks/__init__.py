"""`borne provision check`: the terminal's self-test, one small function per check.

Checks by what they look at: `system` (settings, disk, clock, display, units), `voice` (model,
microphone), `broker` (certificate, broker round trip); `runner` holds the result types, the context
and the loop. `run_checks` runs `CHECKS` in order; the CLI prints the table or JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from provisioning.checks.broker import check_broker, check_certificate, check_status
from provisioning.checks.runner import (
    Check,
    CheckContext,
    CheckResult,
    Outcome,
    format_result,
    run_all,
    run_one,
    summary,
)
from provisioning.checks.system import (
    check_clock,
    check_disk,
    check_display,
    check_settings,
    check_units,
    clock_result,
    units_result,
)
from provisioning.checks.voice import check_microphone, check_model

CHECKS: dict[str, Check] = {
    "settings": check_settings,
    "disk": check_disk,
    "clock": check_clock,
    "certificate": check_certificate,
    "model": check_model,
    "microphone": check_microphone,
    "display": check_display,
    "broker": check_broker,
    "units": check_units,
}


def run_check(name: str, ctx: CheckContext) -> CheckResult:
    """The check `name`; skipped when it needs settings that do not load."""
    return run_one(name, CHECKS[name], ctx)


def run_checks(
    ctx: CheckContext, skip: Sequence[str] = (), on_result: Callable[[CheckResult], None] | None = None
) -> list[CheckResult]:
    """Every check in order (those in `skip` reported as skipped)."""
    return run_all(CHECKS, ctx, skip, on_result)


__all__ = [
    "CHECKS",
    "CheckContext",
    "CheckResult",
    "Outcome",
    "check_broker",
    "check_certificate",
    "check_clock",
    "check_disk",
    "check_display",
    "check_microphone",
    "check_model",
    "check_settings",
    "check_status",
    "check_units",
    "clock_result",
    "format_result",
    "run_check",
    "run_checks",
    "summary",
    "units_result",
]
