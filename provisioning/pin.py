"""`borne provision pin`: the technician screen's PIN, kept in borne.toml as a scrypt hash only.

The settings file is edited, not rewritten: every other line stays as it is. A plain
`technician_pin` of older settings is removed from the file and from the backups `init --force` left
beside it, so that the PIN is nowhere on disk in clear.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from kiosk_app.technician import hash_pin
from provisioning.errors import ProvisioningError
from provisioning.files import write_atomically

PIN_DIGITS = re.compile(r"[0-9]{6,12}")
_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_ANY_PIN_KEY = re.compile(r"^\s*technician_pin(_hash)?\s*=")
_PLAIN_PIN_KEY = re.compile(r"^\s*technician_pin\s*=")


def check_new_pin(pin: str) -> None:
    if not PIN_DIGITS.fullmatch(pin):
        raise ProvisioningError(
            "the PIN must be 6 to 12 digits", "choose another: not a date, not the site's phone number, not 123456"
        )
    if len(set(pin)) == 1 or pin in "01234567890123" or pin in "98765432109876":
        raise ProvisioningError(f"{pin[:2]}… is a run or a repeat anyone would try first", "choose another PIN")


def with_pin_hash(text: str, hashed: str) -> str:
    """`text` (a borne.toml) with `[kiosk] technician_pin_hash = hashed` and no plain `technician_pin`."""
    entry = f'technician_pin_hash = "{hashed}"\n'
    out: list[str] = []
    for line in _without_kiosk_keys(text, _ANY_PIN_KEY):
        out.append(line)
        header = _TABLE.match(line)
        if header and header.group(1) == "kiosk":
            out.append(entry)
    if entry not in out:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(("\n" if out else "") + "[kiosk]\n" + entry)
    return "".join(out)


def without_plain_pin(text: str) -> str:
    """`text` without any `technician_pin = …` line of its [kiosk] table."""
    return "".join(_without_kiosk_keys(text, _PLAIN_PIN_KEY))


def _without_kiosk_keys(text: str, key: re.Pattern[str]) -> list[str]:
    """The lines of `text`, less those of its [kiosk] table that `key` matches."""
    lines: list[str] = []
    table: str | None = None
    for line in text.splitlines(keepends=True):
        header = _TABLE.match(line)
        if header:
            table = header.group(1)
        elif table == "kiosk" and key.match(line):
            continue
        lines.append(line)
    return lines


def _replace_text(path: Path, text: str) -> None:
    """Write `text` over `path` atomically, keeping its mode and owner."""
    status = path.stat()
    owner = (status.st_uid, status.st_gid) if os.geteuid() == 0 else None
    write_atomically(path, text.encode("utf-8"), status.st_mode & 0o7777, owner)


def set_pin(config: Path, pin: str) -> list[Path]:
    """Store `pin`'s hash in `config`; returns the backups a plain PIN was removed from."""
    check_new_pin(pin)
    try:
        text = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProvisioningError(
            f"no settings file at {config}", "enrol the terminal first: borne provision init …"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ProvisioningError(f"cannot read {config} ({error})", "run the command as root (sudo)") from None
    updated = with_pin_hash(text, hash_pin(pin))
    try:
        tomllib.loads(updated)
    except tomllib.TOMLDecodeError as error:
        raise ProvisioningError(
            f"{config} would not be valid TOML with the PIN added ({error})", f"correct {config} by hand first"
        ) from None
    _replace_text(config, updated)
    scrubbed = []
    for backup in sorted(config.parent.glob(f"{config.name}.replaced-*")):
        old = backup.read_text(encoding="utf-8", errors="replace")
        clean = without_plain_pin(old)
        if clean != old:
            _replace_text(backup, clean)
            scrubbed.append(backup)
    return scrubbed


__all__ = ["check_new_pin", "set_pin", "with_pin_hash", "without_plain_pin"]
