from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from borne_cli.main import cli
from borne_common.settings import SettingsError
from kiosk_app.settings import KioskSettings
from sync_agent.settings import SyncSettings


def test_defaults_without_a_file_at_the_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("borne_common.settings.DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    settings = KioskSettings.load(None)
    assert settings.outbox.path == Path("/var/lib/borne/outbox.db")
    assert settings.kiosk.question["fr"].startswith("Satisfait de votre démarche")


def test_bad_site_id_in_file_is_reported(write_config) -> None:  # type: ignore[no-untyped-def]
    path = write_config(
        """
[device]
site_id = "fs-23-guéret"
"""
    )
    with pytest.raises(SettingsError) as error:
        KioskSettings.load(path)
    assert "device.site_id = 'fs-23-guéret'" in str(error.value)
    assert str(path) in str(error.value)
    assert "should match pattern" in str(error.value)


def test_a_good_file(write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(
        f"""
[device]
site_id = "fs-23-gueret"
device_id = "borne-0042"
department = "2A"

[outbox]
path = "{tmp_path}/o.db"
retention_days = 7

[kiosk]
languages = ["fr", "en", "es"]
debounce_s = 0.3

[[kiosk.follow_ups]]
id = "accueil"
text = {{ fr = "L'accueil était-il agréable ?", en = "Was the welcome pleasant?" }}
choices = [
  {{ id = "oui", text = {{ fr = "Oui" }} }},
  {{ id = "non", text = {{ fr = "Non" }} }},
]
"""
    )
    settings = KioskSettings.load(path)
    assert settings.device.department == "2A"
    assert settings.outbox.path == tmp_path / "o.db"
    assert settings.outbox.retention_days == 7
    assert settings.kiosk.languages == ["fr", "en", "es"]
    assert [f.id for f in settings.kiosk.follow_ups] == ["accueil"]
    with pytest.raises(Exception, match="frozen"):
        settings.kiosk.debounce_s = 1  # type: ignore[misc]


def test_one_kiosk_state_path_for_kiosk_and_sync(write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(f'[device]\nkiosk_state_path = "{tmp_path}/state.json"\n')
    assert KioskSettings.load(path).device.kiosk_state_path == tmp_path / "state.json"
    assert SyncSettings.load(path).device.kiosk_state_path == tmp_path / "state.json"


def test_older_files_with_the_kiosk_state_path_in_kiosk_and_sync_still_load(write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(
        f'[kiosk]\nkiosk_state_path = "{tmp_path}/k.json"\n\n[sync]\nkiosk_state_path = "{tmp_path}/k.json"\n'
    )
    assert KioskSettings.load(path).device.kiosk_state_path == tmp_path / "k.json"
    assert SyncSettings.load(path).device.kiosk_state_path == tmp_path / "k.json"


def test_one_device_config_path_for_sync_and_kiosk_older_files_included(write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(f'[device]\ndevice_config_path = "{tmp_path}/config.json"\n')
    assert KioskSettings.load(path).device.device_config_path == tmp_path / "config.json"
    assert SyncSettings.load(path).device.device_config_path == tmp_path / "config.json"
    # Before [device] had it, `borne provision init` wrote it in [sync]: the kiosk reads that file too.
    older = write_config(f'[sync]\nbroker_host = "b.example"\ndevice_config_path = "{tmp_path}/old.json"\n')
    assert KioskSettings.load(older).device.device_config_path == tmp_path / "old.json"
    assert SyncSettings.load(older).device.device_config_path == tmp_path / "old.json"


def test_environment_overrides_the_file(write_config, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    path = write_config('[outbox]\nretention_days = 7\n[device]\ndevice_id = "from-file"\n')
    monkeypatch.setenv("BORNE_OUTBOX__RETENTION_DAYS", "12")
    settings = KioskSettings.load(path)
    assert settings.outbox.retention_days == 12
    assert settings.device.device_id == "from-file"


def test_cli_overrides_win(write_config) -> None:  # type: ignore[no-untyped-def]
    path = write_config('[device]\ndevice_id = "from-file"\n')
    settings = KioskSettings.load(path, device={"device_id": "from-cli"})
    assert settings.device.device_id == "from-cli"


def test_bad_environment_value_names_the_variable(write_config, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    path = write_config("")
    monkeypatch.setenv("BORNE_OUTBOX__RETENTION_DAYS", "soon")
    with pytest.raises(SettingsError) as error:
        KioskSettings.load(path)
    message = str(error.value)
    assert "environment variable BORNE_OUTBOX__RETENTION_DAYS" in message
    assert "outbox.retention_days = 'soon'" in message
    assert "valid integer" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[outbox\npath = 1", "not valid TOML"),
        ("[outbx]\npath = '/x'", "unknown section(s) [outbx]"),
        ("outbox = 3", "must be a [outbox] section"),
        ("[outbox]\nretention = 3", "outbox.retention = 3: unknown key"),
        ("[outbox]\nretention_days = -1", "outbox.retention_days = -1: Input should be greater than or equal to 0"),
        ("[device]\ndepartment = '96'", "device.department = '96'"),
        ("[device]\ndepartment = '20'", "device.department = '20'"),
        ("[device]\ndevice_id = 'ingest'", "device.device_id = 'ingest': Value error, 'ingest' is reserved"),
        ("[kiosk]\nlanguages = []", "kiosk.languages = []"),
        ("[kiosk]\nlanguages = ['fr', 'fr']", "each language may appear once"),
        ("[kiosk]\nquestion = { en = 'Happy?' }", "French"),
        ("[kiosk]\ndebounce_s = 'fast'", "kiosk.debounce_s = 'fast'"),
        ("[voice]\nthreads = 0", "voice.threads = 0"),
        ("[voice.segmenter]\npause = 1", "voice.segmenter.pause = 1: unknown key"),
    ],
)
def test_malformed_settings_name_file_key_value_and_expectation(write_config, text: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    path = write_config(text)
    with pytest.raises(SettingsError) as error:
        KioskSettings.load(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_a_file_saved_in_latin_1_is_reported_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "borne.toml"
    path.write_bytes("[kiosk]\nquestion = { fr = 'Êtes-vous satisfait ?' }\n".encode("latin-1"))
    with pytest.raises(SettingsError, match=r"not UTF-8 \(byte 27 is 0xca\); save the file as UTF-8"):
        KioskSettings.load(path)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="settings file not found"):
        KioskSettings.load(tmp_path / "nope.toml")


def test_cli_reports_bad_settings_without_a_traceback(write_config) -> None:  # type: ignore[no-untyped-def]
    path = write_config("[outbox]\nretention_days = 'x'\n")
    result = CliRunner().invoke(cli, ["outbox", "stats", "--config", str(path)])
    assert result.exit_code == 1
    assert "outbox.retention_days = 'x'" in result.output
    assert "Traceback" not in result.output
