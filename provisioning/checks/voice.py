"""The voice checks: the speech model transcribes the French sample; the microphone hears something."""

from __future__ import annotations

import threading

from provisioning.checks.runner import CheckContext, CheckResult, failed, passed, settings_or_skip

MODELS_FIX = "install the model bundle: borne provision models install --from /media/usb/whisper-base"


def check_model(ctx: CheckContext) -> CheckResult:
    from edge_models.bundles import BundleError, verify_bundle
    from edge_models.samples import FRENCH_SAMPLE, FRENCH_SAMPLE_TEXT
    from edge_models.wer import word_error_rate

    _, kiosk = settings_or_skip(ctx)
    options = kiosk.voice
    bundle = options.model_dir
    try:
        manifest = verify_bundle(bundle, full=True)
    except BundleError as error:
        return failed("model", error.problem, MODELS_FIX)
    try:
        from edge_models.asr import WhisperTranscriber
        from edge_models.audio import WavFileSource
        from edge_models.pipeline import VoiceSession
        from edge_models.vad import SileroVad

        transcriber = WhisperTranscriber(bundle, options, verify=False)
        session = VoiceSession.of(WavFileSource(FRENCH_SAMPLE), transcriber, options, vad=SileroVad())
        text = session.run().text
    except (RuntimeError, ImportError, OSError, ValueError) as error:
        return failed(
            "model",
            f"bundle {bundle} verified but the model does not run: {error}",
            "install the voice extra (pip install 'borne[voice]') and reinstall the bundle: " + MODELS_FIX,
        )
    rate = word_error_rate(FRENCH_SAMPLE_TEXT, text)
    stored = manifest.extra.get("weights", {}).get("stored", "as-shipped")
    heard = (
        f"{manifest.name} verified ({len(manifest.files)} files, {stored} weights); "
        f'heard "{text}" for "{FRENCH_SAMPLE_TEXT}"'
    )
    if rate > ctx.max_word_error_rate:
        return failed(
            "model",
            f"{heard}: word error rate {rate:.2f} above {ctx.max_word_error_rate:.2f}",
            "reinstall the bundle (" + MODELS_FIX + ") and check [voice] language = 'fr'",
        )
    return passed("model", f"{heard} (word error rate {rate:.2f})")


def check_microphone(ctx: CheckContext) -> CheckResult:
    """Open the input device the kiosk uses and measure the level of a short read (kept in RAM, then zeroed)."""
    from edge_models.audio import SounddeviceSource, SourceState, input_device, level_dbfs
    from edge_models.options import SAMPLE_RATE

    _, kiosk = settings_or_skip(ctx)
    configured = ctx.microphone_device
    if configured is None:
        configured = str(getattr(kiosk.kiosk, "microphone_device", "") or "") or None
    device = input_device(configured)
    shown = repr(configured) if configured else "the default input"
    problems: list[str] = []

    def on_state(state: SourceState, detail: str) -> None:
        if state in (SourceState.NO_DEVICE, SourceState.DISCONNECTED):
            problems.append(detail or state.value)
            source.stop()

    source = SounddeviceSource(device, retry_s=0.2, on_state=on_state)
    timer = threading.Timer(ctx.listen_s + source.start_timeout_s + 5.0, source.stop)
    timer.start()
    wanted = round(ctx.listen_s * SAMPLE_RATE)
    blocks = []
    try:
        for block in source.blocks():
            blocks.append(block.copy())
            block.fill(0.0)
            if sum(len(b) for b in blocks) >= wanted:
                source.stop()
    finally:
        timer.cancel()
    if problems and not blocks:
        problem = problems[0]
        if "querying device -1" in problem:  # PortAudio's way of saying it has no input device at all
            problem = f"PortAudio finds no input device ({problem})"
        return failed(
            "microphone",
            f"no microphone ({shown}): {problem}",
            "plug in the USB microphone (`arecord -l` must list it); if it is not the default input, "
            "set [kiosk] microphone_device",
        )
    import numpy as np

    audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    rms, peak = level_dbfs(audio)
    audio.fill(0.0)
    for block in blocks:
        block.fill(0.0)
    heard = len(audio) / SAMPLE_RATE
    detail = f"{shown} at {source.capture_rate} Hz: level {rms:.0f} dBFS (peak {peak:.0f}) over {heard:.1f} s"
    if heard < ctx.listen_s * 0.5:
        return failed("microphone", f"{shown} delivered only {heard:.1f} s of audio", "replug the microphone")
    if rms < ctx.min_level_dbfs:
        return failed(
            "microphone",
            f"{detail}: it hears nothing",
            "unmute it and raise the capture level (`alsamixer`, F4 for capture), speak near it during the check",
        )
    return passed("microphone", detail)
