"""Streaming Silero VAD (v6 ONNX, shipped inside the faster-whisper package) on onnxruntime.

One call per 32 ms frame; the LSTM state and the 64-sample context carry over between calls, so
the result matches running the model over the whole recording, without holding it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_models.asr import require
from edge_models.options import FRAME_SAMPLES

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

logger = logging.getLogger(__name__)

CONTEXT_SAMPLES = 64
STATE_SHAPE = (1, 1, 128)


def silero_model_path() -> Path:
    """Path of `silero_vad_v6.onnx` inside the installed faster-whisper package (not imported)."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Silero VAD ships with faster-whisper; install the voice extra: pip install 'borne[voice]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing; reinstall faster-whisper (pip install 'borne[voice]')")
    return path


class SileroVad:
    """Speech probability per 512-sample frame at 16 kHz, with recurrent state."""

    def __init__(self, model_path: Path | None = None) -> None:
        ort = require("onnxruntime")
        if hasattr(ort, "disable_telemetry_events"):
            ort.disable_telemetry_events()
        self._np: Any = require("numpy")
        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = ort.InferenceSession(
            str(model_path or silero_model_path()), providers=["CPUExecutionProvider"], sess_options=opts
        )
        self._input = self._np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=self._np.float32)
        self.reset()

    def reset(self) -> None:
        """Forget the state and the context (a new session, or wiping audio traces)."""
        self._h = self._np.zeros(STATE_SHAPE, dtype=self._np.float32)
        self._c = self._np.zeros(STATE_SHAPE, dtype=self._np.float32)
        self._input.fill(0.0)

    def __call__(self, frame: npt.NDArray[np.float32]) -> float:
        """Speech probability of one frame of exactly 512 samples (float32 in [-1, 1])."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"a VAD frame has {FRAME_SAMPLES} samples, got shape {frame.shape}")
        buf = self._input
        buf[0, :CONTEXT_SAMPLES] = buf[0, -CONTEXT_SAMPLES:]
        buf[0, CONTEXT_SAMPLES:] = frame
        prob, self._h, self._c = self._session.run(None, {"input": buf, "h": self._h, "c": self._c})
        return float(prob.reshape(-1)[0])


__all__ = ["SileroVad", "silero_model_path"]
