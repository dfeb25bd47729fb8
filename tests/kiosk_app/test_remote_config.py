"""The kiosk takes the configuration the platform published: a newer version that fits replaces the
question, follow-ups, languages and opening hours; anything else is refused and the kiosk keeps what it runs."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from kiosk_app.remote_config import RemoteConfig, apply
from kiosk_app.settings import SCREEN_LANGUAGES, KioskSection
from sync_agent.contract import DeviceConfig

LOCAL = KioskSection(rating_timeout_s=12)


def published(version: int, **changes: object) -> str:
    values: dict[str, object] = {
        "config_version": version,
        "question": {"fr": f"Question numéro {version} ?", "en": f"Question {version}?"},
        "languages": ["fr", "en"],
        "opening_hours": {"mon": ["09:00-12:00"]},
        "follow_ups": [
            {
                "id": "wait",
                "text": {"fr": "Attente ?"},
                "choices": [{"id": "short", "text": {"fr": "Courte"}}, {"id": "long", "text": {"fr": "Longue"}}],
                "ask_when": [1, 2],
            }
        ],
    }
    values.update(changes)
    return DeviceConfig.model_validate(values).to_json()


def write(path: Path, text: str) -> None:
    path.write_text(text)
    os.utime(path, ns=(path.stat().st_mtime_ns + 1_000_000, path.stat().st_mtime_ns + 1_000_000))


def test_a_newer_version_replaces_what_the_citizen_is_asked_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "device-config.json"
    remote = RemoteConfig(path, LOCAL)
    assert remote.newer() is None  # no file yet: the local settings
    write(path, published(3))
    newer = remote.newer()
    assert newer is not None
    version, settings = newer
    assert version == 3 and remote.version is None  # not running it until the kiosk says so
    assert settings.question["fr"] == "Question numéro 3 ?" and settings.languages == ["fr", "en"]
    assert settings.opening_hours == {"mon": ["09:00-12:00"]}
    assert [f.id for f in settings.follow_ups] == ["wait"]
    assert settings.rating_timeout_s == 12  # the rest of [kiosk] stays
    assert remote.newer() is None  # the same file is not read again
    remote.accept(3)
    write(path, published(3))
    assert remote.newer() is None  # the version it runs
    write(path, published(2))
    assert remote.newer() is None  # older
    write(path, published(4))
    newer = remote.newer()
    assert newer is not None and newer[0] == 4


def test_what_does_not_fit_the_kiosk_is_refused_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "device-config.json"
    remote = RemoteConfig(path, LOCAL)
    remote.accept(3)
    caplog.set_level(logging.WARNING, logger="kiosk_app.remote_config")
    write(path, published(4, languages=["fr", "de"]))
    assert remote.newer() is None
    assert "refused configuration version 4 (keeping version 3): languages: Value error, the screens are not " in (
        caplog.text
    )
    write(path, '{"config_version": 5, "question": ')
    assert remote.newer() is None
    assert "ignored the configuration file" in caplog.text
    write(path, json.dumps({"config_version": 6}))
    assert remote.newer() is None and remote.version == 3


def test_local_settings_cannot_name_a_language_the_screens_lack() -> None:
    with pytest.raises(ValueError, match=r"the screens are not written in it; choose among \('fr', 'en', 'es'\)"):
        KioskSection(languages=["fr", "it"])
    locale_dir = Path(__file__).resolve().parents[2] / "kiosk_app" / "ui" / "locale"
    assert sorted(SCREEN_LANGUAGES) == sorted(entry.name for entry in locale_dir.iterdir() if entry.is_dir())


def test_apply_changes_only_the_four_published_fields() -> None:
    config = DeviceConfig.model_validate_json(published(9))
    settings = apply(LOCAL, config)
    changed = {key for key, value in settings.model_dump().items() if value != LOCAL.model_dump()[key]}
    assert changed == {"question", "follow_ups", "languages", "opening_hours"}
