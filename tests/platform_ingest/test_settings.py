from __future__ import annotations

from pathlib import Path

import pytest

from borne_common.settings import SettingsError
from platform_ingest.settings import DEFAULT_DB, IngestSettings
from sync_agent.contract import MAX_BATCH_BYTES


def test_defaults() -> None:
    settings = IngestSettings()
    section = settings.ingest
    assert section.db == DEFAULT_DB
    assert (section.client_id, section.share_group, section.broker_port) == ("ingest", "ingest", 8884)
    assert section.max_payload_bytes > MAX_BATCH_BYTES
    assert section.sites_file is None


def test_file_environment_and_command_line_in_that_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "borne.toml"
    config.write_text('[ingest]\nbroker_host = "file-host"\nclient_id = "from-file"\ntls_cert = ""\n')
    monkeypatch.setenv("BORNE_INGEST__CLIENT_ID", "from-env")
    settings = IngestSettings.load(config, ingest={"db": "postgresql://ingest@db/borne"})
    assert settings.ingest.broker_host == "file-host"
    assert settings.ingest.client_id == "from-env"
    assert settings.ingest.db == "postgresql://ingest@db/borne"
    assert settings.ingest.tls_cert is None  # empty means none


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('db = "mysql://x"', "expected sqlite:////absolute/path.db"),
        ('share_group = "a/b"', "share_group"),
        ("broker_port = 0", "broker_port"),
        ("max_payload_bytes = 10", "max_payload_bytes"),
        ('colour = "blue"', "unknown key"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, line: str, expected: str) -> None:
    config = tmp_path / "borne.toml"
    config.write_text(f"[ingest]\n{line}\n")
    with pytest.raises(SettingsError, match="ingest") as caught:
        IngestSettings.load(config)
    assert expected in str(caught.value)


def test_the_password_is_never_shown() -> None:
    settings = IngestSettings(ingest={"username": "ingest", "password": "hunter2"})  # type: ignore[arg-type]
    assert "hunter2" not in repr(settings)
    assert settings.ingest.password is not None and settings.ingest.password.get_secret_value() == "hunter2"
