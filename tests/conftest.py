"""Shared fixtures: a clock the test moves by hand, settings files, outboxes in temporary dirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sync_agent.contract import Rating, RecordDraft
from sync_agent.outbox import Outbox

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PARIS_WINTER = timezone(timedelta(hours=1))


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.wall = start or datetime(2026, 11, 23, 10, 17, 42, tzinfo=PARIS_WINTER)
        self.mono = 1000.0

    def monotonic(self) -> float:
        return self.mono

    def now(self) -> datetime:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_draft(rating: int = 3, *, site: str = "fs-75-01", device: str = "borne-01", hour: int = 10) -> RecordDraft:
    return RecordDraft(
        site_id=site,
        device_id=device,
        period=datetime(2026, 11, 23, hour, tzinfo=PARIS_WINTER),
        rating=Rating(rating),
        app_version="0.1.0",
    )


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox.open(tmp_path / "outbox.db") as box:
        yield box


@pytest.fixture
def write_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "borne.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
