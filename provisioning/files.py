"""Files written whole or not at all: a temporary file beside the target, synced, then renamed over it."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(target: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Replace `target` with `data`, mode `mode` (and `owner`, uid and gid, when given); a failure leaves
    the previous file as it was and no temporary file behind."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if owner is not None:
            os.chown(temporary, *owner)
        temporary.chmod(mode)
        temporary.replace(target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


__all__ = ["write_atomically"]
