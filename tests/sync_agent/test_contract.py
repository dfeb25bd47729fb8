from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from borne_cli.main import cli
from sync_agent.contract import (
    MAX_BATCH_RECORDS,
    MAX_CONFIG_VERSION,
    Ack,
    Batch,
    Comment,
    DeviceConfig,
    Flag,
    Record,
    RecordDraft,
    Rejection,
    Status,
    json_schemas,
    new_record_id,
    schema_text,
    topic,
)
from tests.conftest import PARIS_WINTER, make_draft

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def record(**changes: object) -> Record:
    draft = make_draft()
    return Record.model_validate({**draft.model_dump(), "record_id": new_record_id(draft.period), **changes})


def test_record_round_trips_through_json() -> None:
    original = record(
        answers={"resolved": "yes"},
        comment=Comment(
            text="Très bon accueil [nom].",
            language="fr",
            asr_model="whisper-base",
            redactions={"nom": 1},
            confidence=0.82,
        ),
        flags=[Flag.BURST_SUSPECTED],
        ui_language="en",
    )
    payload = original.to_json()
    assert json.loads(payload)["schema"] == 1
    assert Record.model_validate_json(payload) == original


def test_record_id_is_uuid7_carrying_only_the_hour() -> None:
    period = datetime(2026, 11, 23, 14, tzinfo=PARIS_WINTER)
    ids = {new_record_id(period) for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        milliseconds = value.int >> 80
        assert milliseconds == int(period.timestamp()) * 1000


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("period", datetime(2026, 11, 23, 10, 17, tzinfo=PARIS_WINTER), "truncated to the hour"),
        ("period", datetime(2026, 11, 23, 10), "UTC offset"),
        ("rating", 5, "Input should be"),
        ("rating", 0, "Input should be"),
        ("site_id", "fs/75", "should match pattern"),
        ("device_id", "+", "should match pattern"),
        ("ui_language", "french", "should match pattern"),
        ("answers", {"Bad Key": "yes"}, "should match pattern"),
        ("flags", ["burst_suspected", "burst_suspected"], "once"),
        ("flags", ["made_up"], "Input should be"),
        ("unexpected", 1, "Extra inputs are not permitted"),
    ],
)
def test_draft_rejects_bad_values(field: str, value: object, message: str) -> None:
    data = {**make_draft().model_dump(), field: value}
    with pytest.raises(ValidationError, match=message):
        RecordDraft.model_validate(data)


def test_record_rejects_other_uuid_versions_and_schema_versions() -> None:
    with pytest.raises(ValidationError, match="version 7"):
        record(record_id=uuid.uuid4())
    with pytest.raises(ValidationError, match="schema"):
        Record.model_validate({**json.loads(record().to_json()), "schema": 2})


def test_comment_is_bounded_and_voice_only() -> None:
    base = {"text": "ok", "language": "fr", "asr_model": "m", "confidence": 0.5}
    with pytest.raises(ValidationError):
        Comment.model_validate({**base, "text": "x" * 2001})
    with pytest.raises(ValidationError):
        Comment.model_validate({**base, "source": "keyboard"})
    with pytest.raises(ValidationError):
        Comment.model_validate({**base, "confidence": 1.5})


def test_batch_refuses_foreign_and_repeated_records() -> None:
    one = record()
    now = datetime.now(UTC)
    batch = Batch(batch_id=uuid.uuid4(), site_id=one.site_id, device_id=one.device_id, records=[one], sent_at=now)
    assert Batch.model_validate_json(batch.to_json()) == batch
    with pytest.raises(ValidationError, match="belongs to"):
        Batch(batch_id=uuid.uuid4(), site_id=one.site_id, device_id="other", records=[one], sent_at=now)
    with pytest.raises(ValidationError, match="twice"):
        Batch(batch_id=uuid.uuid4(), site_id=one.site_id, device_id=one.device_id, records=[one, one], sent_at=now)
    with pytest.raises(ValidationError):
        Batch(batch_id=uuid.uuid4(), site_id=one.site_id, device_id=one.device_id, records=[], sent_at=now)
    many = [record() for _ in range(MAX_BATCH_RECORDS + 1)]
    with pytest.raises(ValidationError):
        Batch(batch_id=uuid.uuid4(), site_id=one.site_id, device_id=one.device_id, records=many, sent_at=now)


def test_ack_settled_ids_and_round_trip() -> None:
    a, b, c = (new_record_id(datetime.now(UTC)) for _ in range(3))
    ack = Ack(batch_id=uuid.uuid4(), accepted=[a], duplicates=[b], rejected=[Rejection(record_id=c, reason="bad")])
    assert ack.settled == {a, b}
    assert Ack.model_validate_json(ack.to_json()) == ack


def test_status_and_device_config_validate() -> None:
    status = Status(site_id="s", device_id="d", state="online", backlog=3, sent_at=datetime.now(UTC))
    assert Status.model_validate_json(status.to_json()) == status
    with pytest.raises(ValidationError):
        Status(site_id="s", device_id="d", state="asleep", sent_at=datetime.now(UTC))  # type: ignore[arg-type]
    config = DeviceConfig.model_validate(
        {"config_version": 2, "question": {"fr": "Satisfait ?"}, "opening_hours": {"mon": ["09:00-12:30"]}}
    )
    assert config.languages == ["fr", "en"]
    with pytest.raises(ValidationError, match="French"):
        DeviceConfig.model_validate({"config_version": 2, "question": {"en": "Happy?"}})
    with pytest.raises(ValidationError):
        DeviceConfig.model_validate(
            {"config_version": 2, "question": {"fr": "?"}, "opening_hours": {"mon": ["9h-12h"]}}
        )
    DeviceConfig.model_validate({"config_version": MAX_CONFIG_VERSION, "question": {"fr": "?"}})
    with pytest.raises(ValidationError, match="less than or equal"):  # would lock out every later version
        DeviceConfig.model_validate({"config_version": 2**62, "question": {"fr": "?"}})


def test_topics() -> None:
    assert topic("fs-1", "b-2", "batch") == "borne/v1/fs-1/b-2/batch"


def test_committed_schemas_match_the_models() -> None:
    generated = json_schemas()
    committed = {path.name.removesuffix(".schema.json") for path in SCHEMAS.glob("*.schema.json")}
    assert committed == set(generated)
    for name, schema in generated.items():
        assert (SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8") == schema_text(schema), (
            f"schemas/{name}.schema.json is stale: run `make schemas` and commit the result"
        )


def test_schema_export_command_writes_every_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schema", "export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == sorted(f"{name}.schema.json" for name in json_schemas())
    record_schema = json.loads((tmp_path / "out" / "record.schema.json").read_text())
    assert "record_id" in record_schema["required"]
    assert record_schema["additionalProperties"] is False


@pytest.mark.parametrize("name", ["record", "batch", "ack", "status", "device_config"])
def test_committed_schema_validates_without_our_code(name: str) -> None:
    # The platform may validate with any JSON Schema library: a good payload passes, a bad one fails.
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    one = record(comment=Comment(text="Bien.", language="fr", asr_model="m", confidence=0.9))
    now = datetime.now(UTC)
    good = {
        "record": one,
        "batch": Batch(batch_id=uuid.uuid4(), site_id=one.site_id, device_id=one.device_id, records=[one], sent_at=now),
        "ack": Ack(batch_id=uuid.uuid4(), accepted=[one.record_id]),
        "status": Status(site_id="s", device_id="d", state="offline", sent_at=now),
        "device_config": DeviceConfig(config_version=1, question={"fr": "Satisfait ?"}),
    }[name]
    payload = json.loads(good.to_json())
    validator.validate(payload)
    assert not validator.is_valid({**payload, "smuggled": "x"})


def test_record_schema_refuses_bad_rating_and_site() -> None:
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "record.schema.json").read_text()))
    payload = json.loads(record().to_json())
    assert not validator.is_valid({**payload, "rating": 7})
    assert not validator.is_valid({**payload, "site_id": "a/b"})
    assert not validator.is_valid({key: value for key, value in payload.items() if key != "record_id"})


def test_period_keeps_the_offset() -> None:
    other = timezone(timedelta(hours=-3))
    value = record(period=datetime(2026, 1, 1, 8, tzinfo=other))
    assert value.period.utcoffset() == timedelta(hours=-3)
