"""The real PortAudio path: a private PulseAudio server with a null sink whose monitor is the microphone.

A WAV is played into the null sink with `paplay`; `SounddeviceSource` reads the monitor through
PortAudio → ALSA → PulseAudio at 48 kHz (forced, so the numpy resampler is exercised) and the whole
pipeline transcribes it with the real model. Skipped when PulseAudio, paplay or PortAudio are absent
(Debian packages: pulseaudio, pulseaudio-utils, libportaudio2, libasound2-plugins).
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge_models.conftest import speech_clips

pytestmark = pytest.mark.slow

CHILD = r"""
import json, subprocess, sys
from pathlib import Path
from edge_models.asr import WhisperTranscriber
from edge_models.audio import SounddeviceSource, SourceState
from edge_models.options import VoiceOptions
from edge_models.pipeline import MicStatus, VoiceSession

bundle, clip, sink = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
options = VoiceOptions.model_validate(
    {"models_dir": str(bundle.parent), "model_name": bundle.name,
     "segmenter": {"session_silence_s": 1.5, "initial_silence_s": 15.0, "max_session_s": 40.0}}
)
transcriber = WhisperTranscriber(bundle, options)
source = SounddeviceSource(device="pulse", preferred_rates=(48000,))
states, players = [], []

def on_event(event):
    if isinstance(event, MicStatus):
        states.append(event.state.value)
        if event.state == SourceState.READY and not players:
            players.append(subprocess.Popen(["paplay", f"--device={sink}", str(clip)]))

final = VoiceSession(source, transcriber.transcribe, options, on_event=on_event).run()
for p in players:
    p.wait(timeout=30)
print(json.dumps({"text": final.text, "reason": final.reason.value, "capture_rate": source.capture_rate,
                  "states": states, "phrases": final.phrases}, ensure_ascii=False))
"""


@pytest.fixture(scope="module")
def pulse_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    missing = [tool for tool in ("pulseaudio", "paplay", "pactl") if shutil.which(tool) is None]
    if missing or ctypes.util.find_library("portaudio") is None:
        pytest.fail(
            f"needs pulseaudio, paplay, pactl and libportaudio2 (missing: {missing or ['libportaudio']}); "
            "make setup installs the Debian packages pulseaudio, pulseaudio-utils and libportaudio2"
        )
    root = tmp_path_factory.mktemp("pulse")
    runtime = root / "xdg"
    runtime.mkdir(mode=0o700)
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(root),
        "PULSE_SERVER": f"unix:{runtime}/pulse/native",
    }
    subprocess.run(
        [
            "pulseaudio",
            "--daemonize=yes",
            "--exit-idle-time=-1",
            "-n",
            "--load=module-native-protocol-unix",
            "--load=module-null-sink sink_name=borne_null rate=48000",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    )
    pid_file = runtime / "pulse" / "pid"
    try:
        for _ in range(50):
            if subprocess.run(["pactl", "info"], env=env, capture_output=True, check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the private PulseAudio server did not start (pactl info kept failing)")
        yield env
    finally:
        if pid_file.is_file():
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)


def test_microphone_through_portaudio_and_pulseaudio(whisper_bundle: Path, pulse_env: dict[str, str]) -> None:
    clip = next(c for c in speech_clips() if c["file"].endswith("vm-forward.wav"))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(whisper_bundle), str(clip["path"]), "borne_null"],
        env={**pulse_env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["capture_rate"] == 48000  # opened at 48 kHz, resampled to 16 kHz in numpy
    assert out["states"][0] == "ready"
    assert out["reason"] == "silence"  # the session ended on the silence after the clip
    words = set(out["text"].lower().replace(",", " ").replace(".", " ").split())
    assert {"appuyez", "numéro", "poste"} <= words
