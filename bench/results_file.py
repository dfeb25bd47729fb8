"""Where a benchmark writes its JSON by default, and the `--out` option every benchmark shares."""

from __future__ import annotations

from collections.abc import Callable
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


__all__ = ["RESULTS_DIR", "default_out", "out_option"]
