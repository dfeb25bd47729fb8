"""`borne provision pin`: the technician PIN as a scrypt hash in borne.toml, never in clear on disk."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kiosk_app.settings import KioskSettings
from kiosk_app.technician import PinCheck, PinGate, verify_pin
from provisioning.pin import with_pin_hash
from tests.provisioning.helpers import borne, init_args, tree


def _enrolled(tmp_path: Path) -> Path:
    assert borne(*init_args(tmp_path)).exit_code == 0
    return tmp_path / "etc/borne/borne.toml"


def test_the_pin_goes_in_as_a_hash_and_the_kiosk_accepts_it(tmp_path: Path) -> None:
    config = _enrolled(tmp_path)
    before = config.read_text()
    mode = config.stat().st_mode
    result = borne("provision", "pin", "--root", tmp_path, input="480163\n480163\n")
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert "480163" not in text and text.startswith(before.split("[kiosk]")[0])  # the rest is untouched
    stored = tomllib.loads(text)["kiosk"]["technician_pin_hash"]
    assert verify_pin("480163", stored) and config.stat().st_mode == mode
    settings = KioskSettings.load(config)
    gate = PinGate(settings.kiosk.technician_pin, pin_hash=settings.kiosk.technician_pin_hash)
    assert gate.check("480163") == PinCheck.ACCEPTED
    again = borne("provision", "pin", "--root", tmp_path, "--pin", "735920")
    assert again.exit_code == 0 and config.read_text().count("technician_pin_hash") == 1


def test_a_plain_pin_is_replaced_and_scrubbed_from_the_backups(tmp_path: Path) -> None:
    config = _enrolled(tmp_path)
    config.write_text(config.read_text() + '\n[kiosk]\ntechnician_pin = "4829"\nfont_scale = 1.2\n')
    backup = config.with_name("borne.toml.replaced-20261207T101010Z")
    backup.write_text(config.read_text())
    result = borne("provision", "pin", "--root", tmp_path, "--pin", "480163")
    assert result.exit_code == 0, result.output
    assert f"removed the plain-text PIN from {backup}" in result.output
    for path in (config, backup):
        assert "4829" not in path.read_text()
    kiosk = tomllib.loads(config.read_text())["kiosk"]
    assert kiosk["font_scale"] == 1.2 and "technician_pin" not in kiosk


@pytest.mark.parametrize(
    ("given", "message"),
    [("4829", "6 to 12 digits"), ("12345a", "6 to 12 digits"), ("000000", "a run or a repeat"), ("234567", "a run")],
)
def test_weak_pins_are_refused_and_nothing_changes(tmp_path: Path, given: str, message: str) -> None:
    _enrolled(tmp_path)
    before = tree(tmp_path)
    result = borne("provision", "pin", "--root", tmp_path, "--pin", given)
    assert result.exit_code == 1 and message in result.output
    assert tree(tmp_path) == before


def test_no_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    result = borne("provision", "pin", "--root", tmp_path, "--pin", "480163")
    assert result.exit_code == 1 and "no settings file at" in result.output and "provision init" in result.output


def test_mismatched_confirmation_is_asked_again(tmp_path: Path) -> None:
    _enrolled(tmp_path)
    result = borne("provision", "pin", "--root", tmp_path, input="480163\n480164\n480163\n480163\n")
    assert result.exit_code == 0 and "do not match" in result.output


def test_with_pin_hash_adds_a_kiosk_table_when_there_is_none() -> None:
    text = with_pin_hash('[device]\nsite_id = "s"', "scrypt$1$1$1$QQ==$QQ==")
    assert tomllib.loads(text) == {
        "device": {"site_id": "s"},
        "kiosk": {"technician_pin_hash": "scrypt$1$1$1$QQ==$QQ=="},
    }
