"""The self-test's runner: a check takes a `CheckContext` (the settings file, thresholds, and the few system
facts it reads, injectable for tests) and returns a `CheckResult`: pass, fail or skip, what was found, and
for a failure the fix. `run_all` runs a table of checks in order; `format_result` and `summary` print them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from borne_common.settings import DEFAULT_CONFIG_PATH, SettingsError
from kiosk_app.settings import KioskSettings
from provisioning.commands import run_command
from sync_agent.settings import SyncSettings

logger = logging.getLogger(__name__)

Runner = Callable[[Sequence[str]], tuple[int, str]]
"""Runs a command, returns (exit status, stdout and stderr); 127 when the program is absent."""

Check = Callable[["CheckContext"], "CheckResult"]


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 — a verdict, not a password
    WARN = "warn"  # passes now, needs doing soon (the exit status stays 0)
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: Outcome
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome == Outcome.FAIL

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "result": self.outcome.value, "detail": self.detail, "fix": self.fix}


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Outcome.PASS, detail)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Outcome.FAIL, detail, fix)


def warned(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Outcome.WARN, detail, fix)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CheckContext:
    """What the checks read: the settings file, thresholds and system facts (replaceable in tests)."""

    config: Path = DEFAULT_CONFIG_PATH
    min_free_bytes: int = 500 * 1000 * 1000
    microphone_device: str | None = None  # None: [kiosk] microphone_device, else the default input
    listen_s: float = 1.5
    min_level_dbfs: float = -75.0
    max_word_error_rate: float = 0.5
    broker_timeout_s: float = 10.0
    run: Runner = run_command
    drm_root: Path = Path("/sys/class/drm")
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    systemd_root: Path = Path("/run/systemd/system")
    now: Callable[[], datetime] = _utc_now
    certificate_warn_days: int = 30  # warn when the device certificate expires within this many days
    results: dict[str, CheckResult] = field(default_factory=dict)
    _settings: tuple[SyncSettings, KioskSettings] | None = None

    def settings(self) -> tuple[SyncSettings, KioskSettings]:
        """Both device processes' settings from `config`; raises `SettingsError`."""
        if self._settings is None:
            self._settings = (SyncSettings.load(self.config), KioskSettings.load(self.config))
        return self._settings


class NeedsSettings(Exception):
    pass


def settings_or_skip(ctx: CheckContext) -> tuple[SyncSettings, KioskSettings]:
    try:
        return ctx.settings()
    except SettingsError:
        raise NeedsSettings from None


def run_one(name: str, check: Check, ctx: CheckContext) -> CheckResult:
    """One check; a check that needs the settings is skipped when they do not load."""
    try:
        result = check(ctx)
    except NeedsSettings:
        result = CheckResult(name, Outcome.SKIP, "not run: the settings do not load (see the settings line)")
    except Exception as error:  # one broken check must not hide the others' results
        logger.exception("check %s crashed", name)
        result = failed(
            name,
            f"the check itself failed: {type(error).__name__}: {error}",
            "install the voice extra if a module is missing (pip install 'borne[voice]'); "
            "otherwise report it with the output of `borne -v provision check`",
        )
    ctx.results[name] = result
    return result


def run_all(
    checks: Mapping[str, Check],
    ctx: CheckContext,
    skip: Sequence[str] = (),
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    results = []
    for name, check in checks.items():
        if name in skip:
            result = CheckResult(name, Outcome.SKIP, "skipped (--skip)")
            ctx.results[name] = result
        else:
            result = run_one(name, check, ctx)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def format_result(result: CheckResult, width: int = 12) -> str:
    mark = {Outcome.PASS: "pass", Outcome.WARN: "WARN", Outcome.FAIL: "FAIL", Outcome.SKIP: "skip"}[result.outcome]
    line = f"{result.name:<{width}} {mark:<6} {result.detail}"
    if result.fix:
        line += f"\n{'':<{width}} {'':<6} fix: {result.fix}"
    return line


def summary(results: Sequence[CheckResult]) -> str:
    counts = {outcome: sum(r.outcome == outcome for r in results) for outcome in Outcome}
    verdict = "FAILED" if counts[Outcome.FAIL] else "OK"
    warnings = f", {counts[Outcome.WARN]} to act on soon (WARN)" if counts[Outcome.WARN] else ""
    return (
        f"{verdict}: {counts[Outcome.PASS]} passed{warnings}, {counts[Outcome.FAIL]} failed, "
        f"{counts[Outcome.SKIP]} skipped"
    )
