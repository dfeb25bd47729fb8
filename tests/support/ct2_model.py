"""Tiny CTranslate2 `model.bin` files for bundle tests (real files CTranslate2's format, not real models)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edge_models.quantize import write_model


def tiny_model_bin(*, int8: bool = True) -> bytes:
    """A model.bin with one weight, stored as int8 (nothing for an install to re-store) or as float16."""
    weight = np.arange(-60, 60, dtype=np.float16).reshape(24, 5)
    if int8:
        variables = [
            ("encoder/layer_0/ffn/linear_0/weight", weight.astype(np.int8)),
            ("encoder/conv1/weight_scale", np.ones(24, dtype=np.float32)),
        ]
    else:
        variables = [("encoder/layer_0/ffn/linear_0/weight", weight)]
    variables.append(("encoder/layer_norm/gamma", np.ones(5, dtype=np.float16)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.bin"
        write_model(path, "WhisperSpec", 3, variables)
        return path.read_bytes()


__all__ = ["tiny_model_bin"]
