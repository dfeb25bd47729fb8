"""`borne kiosk --demo --offscreen`: a whole visit by synthesised touches, the French clip through the real
model, the record in a real outbox; and the listening timeout that must stop a session that never ends."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from borne_cli.main import cli
from sync_agent.contract import Rating
from sync_agent.outbox import Outbox
from tests.conftest import speech_clips
from tests.kiosk_app.ui.test_screens import ROOT, _env, base_settings, run_driver

BORNE = str(Path(sys.executable).with_name("borne"))
SCREENS = (
    "attract",
    "rating",
    "follow_up",
    "voice_offer",
    "listening",
    "review",
    "thanks",
    "technician_pin",
    "technician",
)


def test_a_demo_visit_by_touch_ends_with_the_spoken_comment_in_the_outbox(tmp_path: Path, whisper_bundle: Path) -> None:
    config = tmp_path / "borne.toml"
    config.write_text(
        f'[device]\nsite_id = "fs-demo-77"\ndevice_id = "borne-demo-3"\n'
        f'kiosk_state_path = "{tmp_path / "kiosk-state.json"}"\n\n'
        f'[outbox]\npath = "{tmp_path / "outbox.db"}"\n\n'
        f'[kiosk]\ntechnician_pin = "8642"\n\n'
        f'[voice]\nmodels_dir = "{whisper_bundle.parent}"\nmodel_name = "{whisper_bundle.name}"\n',
        encoding="utf-8",
    )
    shots = tmp_path / "shots"
    with (
        tempfile.TemporaryDirectory(prefix="bn-") as short,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd,
    ):
        systemd.bind(f"{short}/notify")  # plays systemd's notification socket (a short path: AF_UNIX limit)
        done = subprocess.run(  # our own command
            [BORNE, "kiosk", "--demo", "--offscreen", "--config", str(config), "--screenshots", str(shots)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env=_env() | {"KIVY_HOME": str(tmp_path), "NOTIFY_SOCKET": f"{short}/notify"},
        )
        systemd.setblocking(False)
        notices = []
        with contextlib.suppress(BlockingIOError):
            while True:
                notices.append(systemd.recv(256).decode())
    assert done.returncode == 0, done.stderr[-4000:]
    assert notices[0] == "READY=1"  # sent once the first frame is drawn
    with Outbox.open(tmp_path / "outbox.db") as outbox:
        records = outbox.records()
    assert len(records) == 1
    record = records[0]
    assert (record.site_id, record.device_id) == ("fs-demo-77", "borne-demo-3")
    assert record.rating == Rating.SATISFIED
    assert record.answers == {"resolved": "yes"}
    assert record.comment is not None
    assert "attente" in record.comment.text.lower()
    assert record.comment.asr_model == whisper_bundle.name and record.flags == []
    assert f"record {record.record_id}" in done.stdout and record.comment.text in done.stdout
    for name in SCREENS:
        assert (shots / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert json.loads((tmp_path / "kiosk-state.json").read_text()) == {
        "microphone": "ok",
        "model": "ok",
        "technician_pin_failures": 0,
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--offscreen"], "--offscreen needs --demo"),
        (["--screenshots", "shots"], "--screenshots needs --demo"),
        (["--contact-sheets", "sheets"], "--contact-sheets needs --demo"),
        (["--demo", "--size", "800"], "is not WIDTHxHEIGHT"),
        (["--demo", "--size", "100x100"], "between 200 and 8000"),
    ],
)
def test_bad_options_are_refused_with_the_fix(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["kiosk", *arguments])
    assert result.exit_code == 2
    assert message in result.output


def test_a_session_the_citizen_walks_away_from_is_stopped_by_the_timeout(tmp_path: Path, whisper_bundle: Path) -> None:
    settings: dict[str, Any] = base_settings(tmp_path, follow_ups=[])
    settings["voice"] = {
        "models_dir": str(whisper_bundle.parent),
        "model_name": whisper_bundle.name,
        "segmenter": {"initial_silence_s": 60, "max_session_s": 600},
    }
    spec = {"scenario": "listening_timeout", "settings": settings, "audio": {"kind": "synthetic", "seconds": 600}}
    observed = run_driver(tmp_path, spec)
    assert observed["model_state"] == "ok"
    assert observed["listening_alive"] is True  # silence never ends the session by itself
    # the pipeline's countdown before an end for silence shows on the listening screen, then goes
    assert observed["countdown_hint"] == "Je termine dans 2 s. Continuez à parler, ou touchez « Terminé »."
    assert observed["hint_after_countdown"].startswith("Touchez « Terminé » quand vous avez fini.")
    assert observed["time_limit_hint"] == "Temps de parole bientôt écoulé : je termine dans 3 s."
    assert observed["session_stopped"] is True and observed["screen"] == "attract"
    (abandoned,) = observed["stored"]
    assert abandoned["rating"] == Rating.VERY_SATISFIED
    assert abandoned["comment"] is None and "abandoned" in abandoned["flags"]


def test_done_ends_listening_early_redo_listens_again_and_add_more_appends(
    tmp_path: Path, whisper_bundle: Path
) -> None:
    clip = next(c for c in speech_clips() if c["file"].endswith("fleurs_fr_000.wav"))  # 10.2 s
    settings: dict[str, Any] = base_settings(tmp_path, follow_ups=[])
    settings["voice"] = {"models_dir": str(whisper_bundle.parent), "model_name": whisper_bundle.name}
    spec = {
        "scenario": "stop_and_redo",
        "settings": settings,
        "audio": {"kind": "wav", "wav_path": str(clip["path"])},
        "stop_after_s": 3.0,
    }
    observed = run_driver(tmp_path, spec)
    assert observed["after_stop"] == "review"
    stopped = observed["stopped_comment"].lower()
    assert "accident" in stopped and "malveillant" not in stopped  # what was heard before "done", no more
    assert observed["live_text_cleared"] is True
    assert "malveillant" in observed["review_text"].lower()  # the whole clip the second time
    # "add more": the listening screen starts from what was said, and the review shows it followed by the rest
    assert observed["live_text_when_adding"] == observed["review_text"]
    added = observed["added_text"]
    before = observed["review_text"]
    assert added.startswith(before + " ") and "accident" in added[len(before) :].lower()
    (record,) = observed["stored"]
    assert record["comment"]["text"] == added and record["flags"] == []


def test_the_review_counts_down_before_it_times_out_and_a_touch_keeps_it(tmp_path: Path, whisper_bundle: Path) -> None:
    settings: dict[str, Any] = base_settings(tmp_path, follow_ups=[])
    settings["voice"] = {"models_dir": str(whisper_bundle.parent), "model_name": whisper_bundle.name}
    spec = {"scenario": "review_countdown", "settings": settings, "audio": {"kind": "synthetic", "seconds": 600}}
    observed = run_driver(tmp_path, spec)
    assert observed["note_at_first"] == "Les noms, numéros et grossièretés sont retirés."
    assert observed["note_in_countdown"].startswith("Vous êtes toujours là ? Touchez l'écran pour continuer.")
    assert "dans 10 s" in observed["note_in_countdown"]
    assert observed["state_after_touch"] == "review"
    assert observed["state_before_timeout"] == "review"  # the touch started the whole time again
    (record,) = observed["stored"]
    assert record["rating"] == Rating.SATISFIED and record["comment"] is None and "abandoned" in record["flags"]


MULTI_SPEECH = ROOT / "tests" / "fixtures" / "multi_speech" / "clips"


@pytest.mark.parametrize(
    ("language", "heard", "clip", "words", "note"),
    [
        ("en", ["fr", "en", "es"], "fleurs_en_003.wav", {"cabbage", "juice", "color"}, "Speak in English."),
        ("es", ["fr", "en", "es"], "fleurs_es_002.wav", {"gente", "funeral", "plaza"}, "Hable en español."),
        ("en", ["fr"], "fleurs_en_004.wav", set(), "Speech is understood in French only."),
    ],
)
def test_speech_is_heard_in_the_visits_language_or_the_offer_says_which(
    tmp_path: Path, whisper_bundle: Path, language: str, heard: list[str], clip: str, words: set[str], note: str
) -> None:
    settings: dict[str, Any] = base_settings(tmp_path, follow_ups=[], languages=["fr", "en", "es"])
    settings["voice"] = {
        "models_dir": str(whisper_bundle.parent),
        "model_name": whisper_bundle.name,
        "languages": heard,
    }
    spec = {
        "scenario": "visit_in_language",
        "settings": settings,
        "audio": {"kind": "wav", "wav_path": str(MULTI_SPEECH / clip)},
        "language": language,
    }
    observed = run_driver(tmp_path, spec)
    assert note in observed["offer_texts"]
    (record,) = observed["stored"]
    assert record["ui_language"] == language
    comment = record["comment"]
    assert comment["text"] == observed["review_text"]
    said = set(comment["text"].lower().replace(",", " ").replace(".", " ").split())
    assert words <= said, comment["text"]
    assert comment["language"] == (language if language in heard else "fr")
