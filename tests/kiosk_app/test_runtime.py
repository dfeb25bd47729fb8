"""The kiosk's voice side without Kivy: sizes in millimetres, the audio level, model loading states."""

from __future__ import annotations

import ctypes.util
import json
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_models.audio import ArraySource, SourceState
from edge_models.options import VoiceOptions
from edge_models.samples import FRENCH_SAMPLE
from kiosk_app.runtime import AudioInput, MeteredSource, VoiceRuntime, level_of, microphone_state, state_of_source
from kiosk_app.ui.metrics import MIN_CAP_MM, MIN_TARGET_MM, TYPE_SCALE, Metrics
from sync_agent.contract import ComponentState

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("dpi", [96.0, 133.0, 160.0, 300.0])
def test_touch_targets_are_at_least_15_mm_at_the_configured_density(dpi: float) -> None:
    metrics = Metrics(800, 480, dpi, 1.0)
    assert metrics.target / dpi * 25.4 >= MIN_TARGET_MM


def test_larger_windows_scale_up_and_font_scale_applies() -> None:
    small, large = Metrics(800, 480, 133, 1.0), Metrics(1920, 1080, 133, 1.0)
    assert large.scale == pytest.approx(2.25) and small.scale == 1.0
    assert large.text("small") == round(22 * 2.25) and large.text("title") == round(22 * 2.25 * 1.3)
    assert Metrics(800, 480, 133, 1.5).text("title") == round(small.text("small") * 1.3 * 1.5)
    assert Metrics(480, 800, 133, 1.0).portrait and not small.portrait


@pytest.mark.parametrize("dpi", [96.0, 133.0, 160.0, 300.0])
@pytest.mark.parametrize("font_scale", [0.75, 1.0, 2.0])
def test_no_step_of_the_type_scale_has_capitals_under_4_mm(dpi: float, font_scale: float) -> None:
    metrics = Metrics(800, 480, dpi, font_scale)
    sizes = [metrics.text(step) for step in TYPE_SCALE]
    assert min(sizes) == metrics.text("small") >= metrics.min_font
    assert metrics.cap_mm(metrics.min_font) >= MIN_CAP_MM
    assert metrics.cap_mm(metrics.min_font - 1) < MIN_CAP_MM  # the floor is the smallest such size
    assert sizes == sorted(sizes)  # each step larger than the one before


def test_level_is_zero_for_silence_and_one_at_full_scale() -> None:
    assert level_of(np.zeros(512, dtype=np.float32)) == 0.0
    assert level_of(np.ones(512, dtype=np.float32)) == pytest.approx(1.0)
    tone = 0.01 * np.sin(np.linspace(0, 40 * math.pi, 512)).astype(np.float32)  # about -43 dBFS
    assert 0.2 < level_of(tone) < 0.35


def test_the_metered_source_reports_levels_and_passes_blocks_and_states_through() -> None:
    audio = np.concatenate([np.zeros(1600), 0.5 * np.ones(1600)]).astype(np.float32)
    levels: list[float] = []
    states: list[SourceState] = []
    metered = MeteredSource(ArraySource(audio.copy(), block_samples=800), levels.append, interval_s=0.0)
    metered.on_state = lambda state, detail: states.append(state)
    blocks = list(metered.blocks())
    assert np.array_equal(np.concatenate(blocks), audio)
    assert levels[:2] == [0.0, 0.0] and levels[2] > 0.8 and levels[-1] == 0.0  # back to 0 when it ends
    assert states == [SourceState.READY, SourceState.ENDED]


def test_while_muted_the_metered_source_drops_blocks_as_if_no_time_passed() -> None:
    audio = np.concatenate([np.full(800 * 3, 0.5), np.full(800 * 2, 0.25)]).astype(np.float32)
    passed = 0

    def muted() -> bool:  # the first three blocks: the kiosk reading a prompt aloud
        nonlocal passed
        passed += 1
        return passed <= 3

    levels: list[float] = []
    inner = ArraySource(audio.copy(), block_samples=800)
    blocks = list(MeteredSource(inner, levels.append, interval_s=0.0, muted=muted).blocks())
    assert len(blocks) == 2 and all(np.all(block == 0.25) for block in blocks)  # only what came after
    assert levels[:3] == [0.0, 0.0, 0.0] and levels[3] > 0.5  # no level shown for the kiosk's own voice


@pytest.mark.slow
def test_the_kiosks_own_voice_never_becomes_the_comment(transcriber: Any, vad: Any, voice_options: Any) -> None:
    """Half duplex: a prompt read aloud into the open microphone, then the citizen's words; muted during the
    prompt (and its echo), only the citizen's words are transcribed, and without muting the prompt's are too."""
    from edge_models.audio import read_wav
    from edge_models.pipeline import VoiceSession
    from edge_models.wer import normalize
    from tests.conftest import speech_clips

    clips = {clip["file"]: clip for clip in speech_clips()}
    prompt, citizen = (clips[name] for name in sorted(clips)[:2])
    gap = np.zeros(8000, dtype=np.float32)
    audio = np.concatenate([read_wav(prompt["path"]), gap, read_wav(citizen["path"]), gap, gap])
    prompt_end = len(read_wav(prompt["path"])) + 4800  # the prompt, then 0.3 s of echo

    def heard(mute: bool) -> set[str]:
        consumed = 0

        def muted() -> bool:
            nonlocal consumed
            consumed += 512
            return mute and consumed <= prompt_end

        source = MeteredSource(ArraySource(audio.copy(), block_samples=512), lambda level: None, muted=muted)
        return set(normalize(VoiceSession.of(source, transcriber, voice_options, vad=vad).run().text))

    prompt_words = set(normalize(prompt["text"])) - set(normalize(citizen["text"]))
    citizen_words = set(normalize(citizen["text"]))
    muted_text, open_text = heard(True), heard(False)
    assert len(open_text & prompt_words) >= len(prompt_words) // 2  # the mistake this prevents
    assert not muted_text & prompt_words
    assert len(muted_text & citizen_words) >= len(citizen_words) // 2


def test_stopping_the_metered_source_stops_the_source_it_wraps() -> None:
    inner = ArraySource(np.zeros(16000 * 10, dtype=np.float32), block_samples=512)
    metered = MeteredSource(inner, lambda level: None)
    blocks = metered.blocks()
    next(blocks)
    metered.stop()
    assert inner.stopped
    assert len(list(blocks)) <= 1


def test_source_states_map_to_the_status_values() -> None:
    assert state_of_source(SourceState.READY) == ComponentState.OK
    assert state_of_source(SourceState.NO_DEVICE) == ComponentState.MISSING
    assert state_of_source(SourceState.DISCONNECTED) == ComponentState.FAILED
    assert state_of_source(SourceState.ENDED) is None


def test_a_wav_input_is_usable_only_when_the_file_exists(tmp_path: Path) -> None:
    assert microphone_state(AudioInput("wav", wav_path=FRENCH_SAMPLE)) == ComponentState.OK
    assert microphone_state(AudioInput("wav", wav_path=tmp_path / "gone.wav")) == ComponentState.MISSING


def load(options: VoiceOptions) -> VoiceRuntime:
    changes: list[tuple[ComponentState, ComponentState]] = []
    runtime = VoiceRuntime(options, AudioInput("wav", wav_path=FRENCH_SAMPLE))
    runtime.on_change = lambda: changes.append((runtime.microphone, runtime.model))
    assert runtime.model == ComponentState.LOADING and not runtime.available
    runtime.start_loading()
    runtime.join(timeout=120)
    assert changes[-1] == (runtime.microphone, runtime.model)
    return runtime


def test_no_bundle_means_no_voice_and_a_missing_model(tmp_path: Path) -> None:
    runtime = load(VoiceOptions(models_dir=tmp_path))
    assert runtime.model == ComponentState.MISSING and not runtime.available
    assert "no model bundle" in runtime.model_problem


def test_a_tampered_bundle_means_no_voice_and_a_failed_model(tmp_path: Path, whisper_bundle: Path) -> None:
    copy = tmp_path / whisper_bundle.name
    shutil.copytree(whisper_bundle, copy)
    with (copy / "config.json").open("a", encoding="utf-8") as handle:
        handle.write(" ")
    runtime = load(VoiceOptions(models_dir=tmp_path, model_name=copy.name))
    assert runtime.model == ComponentState.FAILED and not runtime.available
    assert "config.json" in runtime.model_problem


def test_a_verified_bundle_makes_voice_available(whisper_bundle: Path, voice_options: Any) -> None:
    runtime = load(VoiceOptions(models_dir=whisper_bundle.parent, model_name=whisper_bundle.name))
    assert runtime.model == ComponentState.OK and runtime.microphone == ComponentState.OK
    assert runtime.available


def test_a_missing_input_is_found_again_by_a_later_probe(tmp_path: Path) -> None:
    wav = tmp_path / "input.wav"
    runtime = VoiceRuntime(VoiceOptions(models_dir=tmp_path), AudioInput("wav", wav_path=wav))
    runtime.load()
    assert runtime.microphone == ComponentState.MISSING
    shutil.copy(FRENCH_SAMPLE, wav)  # the device comes back
    changed = threading.Event()
    runtime.on_change = changed.set
    runtime.probe_microphone()
    assert changed.wait(timeout=10)
    assert runtime.microphone == ComponentState.OK


HOTPLUG = r"""
import json, pathlib, sys, threading
from edge_models.options import VoiceOptions
from kiosk_app.runtime import AudioInput, VoiceRuntime, microphone_state
from sync_agent.contract import ComponentState

audio = AudioInput("mic", device="borne-test-mic")
runtime = VoiceRuntime(VoiceOptions(models_dir=pathlib.Path(sys.argv[2])), audio)
before = microphone_state(audio).value
# the device appears: an ALSA PCM defined now (PortAudio lists ALSA's PCMs when it is initialised)
pathlib.Path(sys.argv[1]).write_text("pcm.borne-test-mic {\n type null\n}\n", encoding="utf-8")
stale = microphone_state(audio).value
runtime.microphone = ComponentState.MISSING
changed = threading.Event()
runtime.on_change = changed.set
runtime.probe_microphone()
changed.wait(timeout=20)
print(json.dumps({"before": before, "without_rescan": stale, "after_probe": runtime.microphone.value}))
"""


@pytest.mark.slow
def test_a_microphone_plugged_in_after_start_is_found_by_the_next_probe(tmp_path: Path) -> None:
    """Real PortAudio over ALSA: a capture device that did not exist when PortAudio started is listed only after
    it lists the devices again, which the probe does (~/.asoundrc defines the device; ALSA's null PCM)."""
    if ctypes.util.find_library("portaudio") is None:
        pytest.skip("libportaudio2 is not installed (make setup installs it)")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALSA_", "PULSE_"))} | {"HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", HOTPLUG, str(home / ".asoundrc"), str(tmp_path / "models")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    observed = json.loads(done.stdout.strip().splitlines()[-1])
    assert observed == {"before": "missing", "without_rescan": "missing", "after_probe": "ok"}
