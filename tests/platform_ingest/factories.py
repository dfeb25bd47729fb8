"""Records and batches as a terminal would send them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sync_agent.contract import Batch, Comment, Flag, Rating, Record, RecordDraft, new_record_id, topic

PARIS_WINTER = timezone(timedelta(hours=1))
SITE, DEVICE = "fs-75-01", "borne-01"


def make_record(
    rating: int = 3,
    *,
    site: str = SITE,
    device: str = DEVICE,
    period: datetime | None = None,
    comment: str | None = None,
    burst: bool = False,
) -> Record:
    period = period or datetime(2026, 11, 23, 10, tzinfo=PARIS_WINTER)
    draft = RecordDraft(
        site_id=site,
        device_id=device,
        period=period,
        rating=Rating(rating),
        answers={"resolved": "yes"},
        comment=Comment(text=comment, language="fr", asr_model="whisper-base", confidence=0.9) if comment else None,
        flags=[Flag.BURST_SUSPECTED] if burst else [],
        app_version="0.1.0",
    )
    return Record.from_draft(draft, new_record_id(period))


def make_batch(records: list[Record] | None = None, *, site: str = SITE, device: str = DEVICE, count: int = 3) -> Batch:
    records = records if records is not None else [make_record(site=site, device=device) for _ in range(count)]
    return Batch(batch_id=uuid.uuid4(), site_id=site, device_id=device, records=records, sent_at=datetime.now(UTC))


def batch_topic(site: str = SITE, device: str = DEVICE) -> str:
    return topic(site, device, "batch")


def payload_of(batch: Batch) -> bytes:
    return batch.to_json().encode()


def batch_dict(batch: Batch) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(batch.to_json())
    return value
