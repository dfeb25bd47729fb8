"""Audio never reaches the disk: a whole session runs with the file-size limit at 0.

The child process sets RLIMIT_FSIZE to 0 before loading anything, so any write to a regular file,
from Python or native code (CTranslate2, onnxruntime), kills it with SIGXFSZ; an audit hook also
records every file opened for writing, and TMPDIR must stay empty.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.edge_models.conftest import speech_clips

pytestmark = pytest.mark.slow

CHILD = r"""
import json, os, resource, sys

writes = []

def hook(event, args):
    if event == "open":
        path, mode, flags = args
        wants_write = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND)
        )
        if wants_write:
            writes.append(str(path))

resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
sys.addaudithook(hook)

from pathlib import Path
from edge_models.asr import WhisperTranscriber
from edge_models.audio import WavFileSource
from edge_models.options import VoiceOptions
from edge_models.pipeline import VoiceSession

bundle, clip = Path(sys.argv[1]), Path(sys.argv[2])
options = VoiceOptions(models_dir=bundle.parent, model_name=bundle.name)
transcriber = WhisperTranscriber(bundle, options)
final = VoiceSession(WavFileSource(clip), transcriber.transcribe, options).run()
print(json.dumps({"text": final.text, "writes": writes, "phrases": final.phrases}))
"""


def test_a_whole_session_writes_no_file(whisper_bundle: Path, tmp_path: Path) -> None:
    clip = next(c for c in speech_clips() if c["file"].endswith("fleurs_fr_004.wav"))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    # The library must turn onnxruntime's telemetry off by itself: the child does not inherit the switch.
    env = {
        **{k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"},
        "PYTHONDONTWRITEBYTECODE": "1",
        "HF_HUB_OFFLINE": "1",
        "TMPDIR": str(tmpdir),
        "HOME": str(tmp_path / "home"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(whisper_bundle), str(clip["path"])],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])  # -25 would be SIGXFSZ
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["phrases"] >= 1 and len(out["text"]) > 20  # it did transcribe
    assert out["writes"] == []
    assert list(tmpdir.iterdir()) == []  # onnxruntime's telemetry file would land here if enabled
    assert not (tmp_path / "home").exists()


def test_the_limit_really_bites(tmp_path: Path) -> None:
    """Control: the same limit kills a child that writes a WAV, so the test above can fail."""
    code = (
        "import resource, wave, sys\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))\n"
        "w = wave.open(sys.argv[1], 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)\n"
        "w.writeframes(b'\\0' * 32000); w.close()\n"
    )
    target = tmp_path / "leak.wav"
    proc = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, check=False)
    assert proc.returncode != 0
    assert not target.exists() or target.stat().st_size == 0


FORBIDDEN = re.compile(r"wave\.open\([^)]*['\"]w|soundfile\.write|NamedTemporaryFile|mkstemp|\.tofile\(")


def test_library_code_has_no_audio_writing_calls() -> None:
    root = Path(__file__).resolve().parents[2] / "edge_models"
    offenders = [
        f"{path}:{n}"
        for path in root.rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert offenders == []
