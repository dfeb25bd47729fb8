"""Where a benchmark writes its JSON by default, the `--out` option every benchmark shares, and the
description of the machine each JSON records (figures from two machines only compare with it)."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import click

RESULTS_DIR = Path(__file__).resolve().parent / "results"
F = TypeVar("F", bound=Callable[..., Any])


def default_out(name: str) -> Path:
    return RESULTS_DIR / f"{name}.json"


def out_option(name: str) -> Callable[[F], F]:
    """`--out FILE`, by default bench/results/NAME.json."""
    return click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=default_out(name),
        show_default=f"bench/results/{name}.json",
        help="Where to write the JSON results.",
    )


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (x86 `model name`, ARM `Model` or `Hardware`), or platform.processor()."""
    try:
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for key in ("model name", "Model", "Hardware"):
        for line in lines:
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def machine(*packages: str) -> dict[str, Any]:
    """This machine and the versions of `packages` that the figures depend on."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
    }


__all__ = ["RESULTS_DIR", "cpu_model", "default_out", "machine", "out_option"]
