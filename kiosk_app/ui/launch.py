"""Start the kiosk (no Kivy import until Kivy's environment is prepared): window or offscreen, optional script."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk_app.flow import Clock as FlowClock
from kiosk_app.flow import Identity
from kiosk_app.runtime import AudioInput, VoiceRuntime
from kiosk_app.settings import KioskSettings
from kiosk_app.ui.env import prepare_kivy
from sync_agent.outbox import Outbox

if TYPE_CHECKING:
    from kiosk_app.ui.app import KioskApp
    from kiosk_app.ui.script import Script

logger = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the scripted demo session produced besides the record."""

    screenshots: list[Path] = field(default_factory=list)
    voice_problem: str = ""


@dataclass
class Outcome:
    """How a run ended: the app (its flow, its stored records) and the script's error, if any."""

    app: Any = None
    error: BaseException | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_kiosk(
    settings: KioskSettings,
    *,
    outbox: Outbox,
    identity: Identity,
    audio: AudioInput,
    size: tuple[int, int] | None = None,
    offscreen: bool = False,
    script: Callable[[KioskApp], Script] | None = None,
    clock: FlowClock | None = None,
    speaker: Any = "default",
    runtime: VoiceRuntime | None = None,
) -> Outcome:
    """Run the kiosk until it is closed, or until `script` (run once the first frame is drawn) ends."""
    prepare_kivy(width=size[0] if size else None, height=size[1] if size else None, offscreen=offscreen)
    from kiosk_app.ui.app import KioskApp, default_speaker
    from kiosk_app.ui.script import ScriptRunner

    outcome = Outcome()

    def started(app: KioskApp) -> None:
        if script is None:
            return

        def done(error: BaseException | None) -> None:
            outcome.error = error
            app.stop()

        runner = ScriptRunner(script(app), done)
        outcome.extra["runner"] = runner  # Kivy's clock holds callbacks weakly
        runner.start()

    app = KioskApp(
        settings,
        outbox=outbox,
        identity=identity,
        audio=audio,
        clock=clock,
        speaker=default_speaker() if speaker == "default" else speaker,
        runtime=runtime,
        on_started=started,
    )
    outcome.app = app
    app.run()
    return outcome


__all__ = ["DemoResult", "Outcome", "run_kiosk"]
