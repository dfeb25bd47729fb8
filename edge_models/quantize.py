"""Store a CTranslate2 model's float weights as int8 once, at install, so that loading converts nothing.

With the int8 compute type, CTranslate2 converts float16 weights to int8 while it loads them, holding
the float and the int8 copies at once: whisper-base loaded that way peaks at about 350 MB of resident
memory for a model that then holds 175 MB. Stored as int8 it loads at its final size (`borne bench
model-load` measures both). The variables quantized and the numbers are those of CTranslate2's own
load-time conversion (and of its converter's `--quantization int8`): linear and embedding weights,
one scale per output row, `scale = 127 / max|row|`, values rounded to nearest. So the model computes
exactly what it computed from the shipped file.

`model.bin` (binary version 6, little-endian, as CTranslate2's `ModelSpec` writes it):
    u32 version, str spec name, u32 spec revision, u32 variable count,
    per variable: str name, u8 rank, u32 × rank shape, u8 dtype, u32 byte count, the bytes;
    u32 alias count, per alias: str alias, str variable name.
A str is a u16 length (with the terminating NUL), the UTF-8 bytes and a NUL.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

BINARY_VERSION = 6
# Type ids in CTranslate2's DataType enum order (include/ctranslate2/types.h).
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
FLOAT_DTYPES = frozenset({"float32", "float16"})
_ITEM_SIZE = {"float32": 4, "int8": 1, "int16": 2, "int32": 4, "float16": 2, "bfloat16": 2}
SCALE_SUFFIX = "_scale"
BLOCK_BYTES = 1 << 22  # rows quantized at a time: the float copies stay a few MB, whatever the model


class ModelFileError(ValueError):
    """`model.bin` is not a CTranslate2 model this module can read; the message says what is wrong."""


@dataclass(frozen=True)
class Variable:
    """One variable of `model.bin`, located by the offset of its data in the file."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int
    nbytes: int

    @property
    def quantizable(self) -> bool:
        """A float weight matrix of a linear layer or the embeddings: what CTranslate2 itself turns into
        int8 when it loads a Whisper model. It leaves the convolutions' kernels as floats: stored as
        int8 they would change the encoder's output (a test compares it with a load-time conversion)."""
        return (
            self.name.endswith("/weight")
            and "conv" not in self.name
            and len(self.shape) >= 2
            and self.dtype in FLOAT_DTYPES
            and _product(self.shape) > 0
        )


@dataclass(frozen=True)
class ModelTable:
    """What `model.bin` holds, without its data."""

    version: int
    spec: str
    revision: int
    variables: tuple[Variable, ...]
    aliases: tuple[tuple[str, str], ...]

    @property
    def quantizable(self) -> tuple[Variable, ...]:
        names = {v.name for v in self.variables}
        return tuple(v for v in self.variables if v.quantizable and v.name + SCALE_SUFFIX not in names)

    @property
    def stored_weights(self) -> str:
        """`int8` when no weight is left to quantize, else the weights' float type(s), e.g. `float16`."""
        floats = sorted({v.dtype for v in self.quantizable})
        return "+".join(floats) if floats else "int8"


class _Reader:
    def __init__(self, stream: IO[bytes], size: int, path: Path) -> None:
        self.stream, self.size, self.path = stream, size, path

    def unpack(self, fmt: str) -> int:
        width = struct.calcsize(fmt)
        data = self.stream.read(width)
        if len(data) != width:
            raise ModelFileError(f"{self.path} ends early at byte {self.size} (truncated)")
        value: int = struct.unpack("<" + fmt, data)[0]
        return value

    def string(self) -> str:
        length = self.unpack("H")
        data = self.stream.read(length)
        if len(data) != length:
            raise ModelFileError(f"{self.path} ends early at byte {self.size} (truncated)")
        if length == 0 or data[-1:] != b"\0":
            raise ModelFileError(f"{self.path} has a malformed name near byte {self.stream.tell()}")
        try:
            return data[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelFileError(f"{self.path} has a name that is not UTF-8 near byte {self.stream.tell()}") from exc

    def skip(self, count: int) -> int:
        offset = self.stream.tell()
        if offset + count > self.size:
            raise ModelFileError(f"{self.path} ends early: a variable runs past its {self.size} bytes (truncated)")
        self.stream.seek(count, os.SEEK_CUR)
        return offset


def read_table(path: Path) -> ModelTable:
    """The variables and aliases of `path`, read without loading the weights (it seeks over them)."""
    with path.open("rb") as stream:
        reader = _Reader(stream, path.stat().st_size, path)
        version = reader.unpack("I")
        if version != BINARY_VERSION:
            raise ModelFileError(
                f"{path} has CTranslate2 binary version {version}; only version {BINARY_VERSION} can be re-stored"
            )
        spec, revision, count = reader.string(), reader.unpack("I"), reader.unpack("I")
        variables = []
        for _ in range(count):
            name = reader.string()
            shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
            type_id = reader.unpack("B")
            if type_id >= len(DTYPES):
                raise ModelFileError(f"{path}: variable {name} has an unknown type id {type_id}")
            dtype, nbytes = DTYPES[type_id], reader.unpack("I")
            expected = _ITEM_SIZE[dtype] * _product(shape)
            if nbytes != expected:
                raise ModelFileError(f"{path}: variable {name} has {nbytes} bytes, its shape {shape} needs {expected}")
            variables.append(Variable(name, shape, dtype, reader.skip(nbytes), nbytes))
        aliases = tuple((reader.string(), reader.string()) for _ in range(reader.unpack("I")))
        if stream.read(1):
            raise ModelFileError(f"{path} has bytes after its last alias (not a CTranslate2 model file)")
    return ModelTable(version, spec, revision, tuple(variables), aliases)


def quantize_rows(values: npt.NDArray[np.floating]) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """int8 values and one float32 scale per first-axis row (`values ≈ int8 / scale`), as CTranslate2 does."""
    import numpy as np

    rows = values.astype(np.float32).reshape(values.shape[0], -1)
    amax = np.amax(np.absolute(rows), axis=1)
    amax[amax == 0] = 127.0  # an all-zero row keeps scale 1
    amax = np.maximum(amax, np.float32(127) / np.finfo(np.float32).max)  # a finite scale for tiny rows
    scale = (np.float32(127.0) / amax).astype(np.float32)
    quantized = np.rint(rows * scale[:, None]).astype(np.int8).reshape(values.shape)
    return quantized, scale


def store_int8(path: Path) -> int:
    """Rewrite `path` with its float weights as int8 (atomically); return how many were quantized.

    A model already stored as int8 is left as it is (0). Raises `ModelFileError` when `path` is not a
    CTranslate2 model this module can read; `path` is then untouched.
    """
    import numpy as np

    table = read_table(path)
    targets = {v.name for v in table.quantizable}
    if not targets:
        return 0
    partial = path.with_name(path.name + ".int8.partial")
    try:
        with path.open("rb") as source, partial.open("wb") as out:
            _write_header(out, table, len(table.variables) + len(targets))
            for variable in table.variables:
                if variable.name in targets:
                    scales: list[npt.NDArray[np.float32]] = []
                    _write_variable(
                        out, variable.name, variable.shape, "int8", _quantized_blocks(source, variable, scales)
                    )
                    scale = np.concatenate(scales)
                    _write_variable(out, variable.name + SCALE_SUFFIX, scale.shape, "float32", scale.tobytes())
                else:
                    source.seek(variable.offset)
                    _write_variable(
                        out, variable.name, variable.shape, variable.dtype, _chunks(source, variable.nbytes)
                    )
            _write_aliases(out, table.aliases)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return len(targets)


def write_model(
    path: Path,
    spec: str,
    revision: int,
    variables: list[tuple[str, npt.NDArray[np.generic]]],
    aliases: tuple[tuple[str, str], ...] = (),
) -> None:
    """Write a `model.bin` holding `variables` (numpy arrays of the types in DTYPES)."""
    with path.open("wb") as out:
        placeholder = ModelTable(BINARY_VERSION, spec, revision, (), aliases)
        _write_header(out, placeholder, len(variables))
        for name, array in variables:
            _write_variable(out, name, tuple(array.shape), str(array.dtype), array.tobytes())
        _write_aliases(out, aliases)


def _quantized_blocks(source: IO[bytes], variable: Variable, scales: list[npt.NDArray[np.float32]]) -> Iterator[bytes]:
    """The int8 bytes of `variable`, a block of rows at a time (rows are independent), appending the scales."""
    import numpy as np

    dtype = np.dtype(variable.dtype).newbyteorder("<")
    rows, row_shape = variable.shape[0], variable.shape[1:]
    row_bytes = variable.nbytes // rows
    step = max(1, BLOCK_BYTES // row_bytes)
    source.seek(variable.offset)
    for start in range(0, rows, step):
        count = min(rows - start, step)
        data = source.read(count * row_bytes)
        if len(data) != count * row_bytes:
            raise ModelFileError(f"{getattr(source, 'name', 'model.bin')} ends early (truncated)")
        quantized, scale = quantize_rows(np.frombuffer(data, dtype=dtype).reshape((count, *row_shape)))
        scales.append(scale)
        yield quantized.tobytes()


def _chunks(source: IO[bytes], count: int) -> Iterator[bytes]:
    while count:
        block = source.read(min(count, 1 << 20))
        if not block:
            raise ModelFileError(f"{getattr(source, 'name', 'model.bin')} ends early (truncated)")
        count -= len(block)
        yield block


def _write_header(out: IO[bytes], table: ModelTable, count: int) -> None:
    out.write(struct.pack("<I", table.version))
    _write_string(out, table.spec)
    out.write(struct.pack("<II", table.revision, count))


def _write_variable(
    out: IO[bytes], name: str, shape: tuple[int, ...], dtype: str, data: bytes | Iterator[bytes]
) -> None:
    _write_string(out, name)
    out.write(struct.pack("<B", len(shape)))
    out.write(struct.pack(f"<{len(shape)}I", *shape))
    out.write(struct.pack("<BI", DTYPES.index(dtype), _ITEM_SIZE[dtype] * _product(shape)))
    for block in [data] if isinstance(data, bytes) else data:
        out.write(block)


def _write_aliases(out: IO[bytes], aliases: tuple[tuple[str, str], ...]) -> None:
    out.write(struct.pack("<I", len(aliases)))
    for alias, target in aliases:
        _write_string(out, alias)
        _write_string(out, target)


def _write_string(out: IO[bytes], text: str) -> None:
    encoded = text.encode("utf-8") + b"\0"
    out.write(struct.pack("<H", len(encoded)))
    out.write(encoded)


def _product(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= dim
    return total


__all__ = [
    "BINARY_VERSION",
    "ModelFileError",
    "ModelTable",
    "Variable",
    "quantize_rows",
    "read_table",
    "store_int8",
    "write_model",
]
