"""Does each process still work under systemd's `MemoryDenyWriteExecute=yes`? The units set it exactly
where the answer is yes, and these tests keep that decision true.

systemd 252 (Debian 12, Raspberry Pi OS bookworm) implements the directive as a seccomp filter that fails
with EPERM: `mmap` asking for PROT_WRITE|PROT_EXEC, `mprotect`/`pkey_mprotect` adding PROT_EXEC, `shmat`
with SHM_EXEC. `exec_denying_write_execute` installs the same filter through libseccomp (which systemd
itself links) and then execs the real program, as systemd does. Without systemd as PID 1 here, this is
the closest honest reproduction; the filter is checked to really deny W+X memory before anything else.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.e2e.chain import Chain
from tests.support.seccomp import SCMP_CMP_MASKED_EQ, ArgCompare, exec_under_filter, fail_with

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000


def exec_denying_write_execute(argv: Sequence[str]) -> None:
    """Install systemd 252's MemoryDenyWriteExecute= seccomp filter, then exec `argv` under it."""
    masks = (
        ("mmap", PROT_WRITE | PROT_EXEC),
        ("mprotect", PROT_EXEC),
        ("pkey_mprotect", PROT_EXEC),
        ("shmat", SHM_EXEC),
    )
    rules = [(name, fail_with(errno.EPERM), ArgCompare(2, SCMP_CMP_MASKED_EQ, mask, mask)) for name, mask in masks]
    exec_under_filter(rules, argv)


LAUNCHER = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from tests.provisioning.test_memory_deny_write_execute import exec_denying_write_execute; "
    "exec_denying_write_execute(sys.argv[2:])"
)


def under_filter(argv: Sequence[str]) -> list[str]:
    return [sys.executable, "-c", LAUNCHER, str(ROOT), *argv]


def run_python(code: str, *args: str, deny: bool) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", code, *args]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        under_filter(argv) if deny else argv,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        cwd=ROOT,
        check=False,
    )


# -- the filter itself ------------------------------------------------------------------------------

WRITE_EXECUTE_PROBE = """
import ctypes, mmap
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("wx-mapping allowed")
except PermissionError:
    print("wx-mapping denied")
page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE)
address = ctypes.addressof(ctypes.c_char.from_buffer(page))
# What a JIT does: write code into a writable page, then make it executable.
print("jit-flip", "allowed" if libc.mprotect(address, 4096, mmap.PROT_READ | mmap.PROT_EXEC) == 0 else "denied")
"""


def test_the_filter_denies_what_systemd_denies() -> None:
    free = run_python(WRITE_EXECUTE_PROBE, deny=False)
    denied = run_python(WRITE_EXECUTE_PROBE, deny=True)
    assert free.stdout.split() == ["wx-mapping", "allowed", "jit-flip", "allowed"], free.stderr
    assert denied.stdout.split() == ["wx-mapping", "denied", "jit-flip", "denied"], denied.stderr


# -- what the kiosk loads ---------------------------------------------------------------------------

ASR_PROBE = """
import sys, wave
from pathlib import Path
import numpy as np
from edge_models.asr import WhisperTranscriber
from edge_models.options import VoiceOptions
from edge_models.samples import FRENCH_SAMPLE
with wave.open(str(FRENCH_SAMPLE)) as clip:
    audio = np.frombuffer(clip.readframes(clip.getnframes()), dtype=np.int16).astype(np.float32) / 32768
transcriber = WhisperTranscriber(Path(sys.argv[1]), VoiceOptions(models_dir=Path(sys.argv[2]), threads=2))
print(transcriber.transcribe(audio).text)
"""

VAD_PROBE = """
import wave
import numpy as np
from edge_models.samples import FRENCH_SAMPLE
from edge_models.vad import SileroVad
with wave.open(str(FRENCH_SAMPLE)) as clip:
    audio = np.frombuffer(clip.readframes(clip.getnframes()), dtype=np.int16).astype(np.float32) / 32768
vad = SileroVad()
print(max(vad(audio[start:start + 512]) for start in range(0, len(audio) - 512, 512)))
"""

KIVY_PROBE = """
import os, sys, tempfile
os.environ.update(SDL_VIDEODRIVER="offscreen", KIVY_NO_ARGS="1", KIVY_NO_CONSOLELOG="1", KIVY_NO_FILELOG="1",
                  KIVY_HOME=tempfile.mkdtemp(), KIVY_WINDOW="sdl2")
from kivy.base import EventLoop
from kivy.core.window import Window
from kivy.graphics import Color, Rectangle
from kivy.graphics.opengl import GL_RENDERER, GL_RGBA, GL_UNSIGNED_BYTE, glGetString, glReadPixels
from kivy.uix.widget import Widget
widget = Widget()
with widget.canvas:
    Color(1, 0, 0, 1)
    Rectangle(pos=(0, 0), size=(64, 64))
Window.add_widget(widget)
EventLoop.idle()
print(glGetString(GL_RENDERER).decode(), file=sys.stderr)
print(list(glReadPixels(8, 8, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE)))
"""

# sounddevice hands PortAudio a cffi callback for the microphone stream (edge_models/audio.py); making
# one is the step that needs memory both written and executed, and needs no sound card.
MICROPHONE_CALLBACK_PROBE = """
import sounddevice
callback = sounddevice._ffi.callback("PaStreamCallback", lambda *args: 0, error=sounddevice._lib.paAbort)
print("callback", bool(callback))
"""


def transcription_ok(output: str) -> bool:
    from edge_models.samples import FRENCH_SAMPLE_TEXT

    return output.strip().lower().rstrip(".") == FRENCH_SAMPLE_TEXT.lower()


def speech_found(output: str) -> bool:
    return float(output.strip() or 0) > 0.5


def red_pixel(output: str) -> bool:
    return output.strip() == "[255, 0, 0, 255]"


def callback_made(output: str) -> bool:
    return output.strip() == "callback True"


def unit_denies_write_execute(unit: str) -> bool:
    from provisioning.units import shipped_text

    return any(line.strip() == "MemoryDenyWriteExecute=yes" for line in shipped_text(unit).splitlines())


@pytest.fixture(scope="module")
def kiosk_verdicts(whisper_bundle: Path, models_dir: Path) -> dict[str, bool]:
    """Each native part the kiosk loads: does it work under the filter? (It must work without.)"""
    probes = {
        "CTranslate2 (Whisper)": (ASR_PROBE, (str(whisper_bundle), str(models_dir)), transcription_ok),
        "onnxruntime (Silero VAD)": (VAD_PROBE, (), speech_found),
        "Kivy/SDL/Mesa (one frame)": (KIVY_PROBE, (), red_pixel),
        "sounddevice (microphone callback)": (MICROPHONE_CALLBACK_PROBE, (), callback_made),
    }
    verdicts = {}
    for name, (code, args, works) in probes.items():
        free = run_python(code, *args, deny=False)
        assert free.returncode == 0 and works(free.stdout), f"{name} probe fails even without the filter:\n{free}"
        denied = run_python(code, *args, deny=True)
        verdicts[name] = denied.returncode == 0 and works(denied.stdout)
        last = (denied.stderr.strip().splitlines() or [f"exit status {denied.returncode}"])[-1]
        print(f"MemoryDenyWriteExecute: {name}: {'works' if verdicts[name] else 'FAILS: ' + last}")
    return verdicts


def test_onnxruntime_vad_runs_under_the_filter(kiosk_verdicts: dict[str, bool]) -> None:
    assert kiosk_verdicts["onnxruntime (Silero VAD)"]


def test_kiosk_unit_sets_it_only_if_everything_the_kiosk_loads_works(kiosk_verdicts: dict[str, bool]) -> None:
    failing = sorted(name for name, works in kiosk_verdicts.items() if not works)
    assert unit_denies_write_execute("borne-kiosk.service") == (not failing), (
        f"under MemoryDenyWriteExecute=yes these fail: {failing or 'nothing'}; "
        "make provisioning/systemd/borne-kiosk.service and docs/systemd.md agree"
    )


# -- the sync agent and ingest: the whole delivery chain, both under the filter ----------------------


class FilteredChain(Chain):
    """The e2e chain with `borne sync` and `borne ingest run` started under the filter."""

    def start_ingest(self) -> None:
        self.ingest_process = subprocess.Popen(
            under_filter([self.borne, "-v", "ingest", "run", "--config", str(self.ingest_config)]),
            stderr=self._log("ingest"),
        )

    def start_sync(self) -> None:
        self.sync_process = subprocess.Popen(
            under_filter([self.borne, "-v", "sync", "--config", str(self.sync_config)]), stderr=self._log("sync")
        )

    @property
    def borne(self) -> str:
        return str(Path(sys.executable).with_name("borne"))


@pytest.fixture
def filtered_chain(tmp_path: Path) -> Iterator[FilteredChain]:
    chain = FilteredChain(tmp_path)
    try:
        yield chain
    finally:
        chain.stop()


def test_sync_and_ingest_deliver_under_the_filter(filtered_chain: FilteredChain) -> None:
    assert unit_denies_write_execute("borne-sync.service")
    assert unit_denies_write_execute("borne-ingest.service")
    filtered_chain.write_records(60)
    filtered_chain.start_ingest()
    filtered_chain.start_sync()
    filtered_chain.wait_until(filtered_chain.drained, timeout=90, what="the outbox to drain under the filter")
    for process in (filtered_chain.sync_process, filtered_chain.ingest_process):
        assert process is not None and process.poll() is None, filtered_chain.logs()
    filtered_chain.assert_store_matches_outbox()
    print("MemoryDenyWriteExecute: borne sync and borne ingest run (SQLite store, TLS): work")
