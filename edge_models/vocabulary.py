"""Whisper's tokens: the prompt's special tokens and the text of generated token ids.

Read from the bundle's `vocabulary.json` (the token strings in id order, as CTranslate2 writes them) instead
of loading the full `tokenizer.json` tokenizer (about 30 MB resident), since the pipeline only needs to
turn ids into text, never text into ids. Whisper's text tokens are byte-level BPE: each byte is written as
one printable character (GPT-2's byte-to-character table), so a token's bytes are read back character by
character.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

EOT = "<|endoftext|>"


@functools.cache
def byte_of_character() -> dict[str, int]:
    """GPT-2's table, inverted: printable Latin-1 bytes stand for themselves, the other 68 bytes (controls,
    space, non-breaking space, soft hyphen…) for the characters from U+0100 on, in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in printable}
    shifted = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + shifted)] = b
            shifted += 1
    return table


class Vocabulary:
    """Token strings by id; ids from the end-of-text token on are special (languages, tasks, timestamps)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens = list(tokens)
        self._special = {token: i for i, token in enumerate(self._tokens) if token.startswith("<|")}
        self.eot = self.special(EOT)

    @classmethod
    def load(cls, bundle_dir: Path) -> Vocabulary:
        path = bundle_dir / "vocabulary.json"
        try:
            tokens = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"{path}: unreadable ({exc}); reinstall the bundle: borne models install") from exc
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) or EOT not in tokens:
            raise RuntimeError(f"{path}: not a Whisper vocabulary; reinstall the bundle: borne models install")
        return cls(tokens)

    def special(self, token: str) -> int:
        """The id of a special token such as `<|fr|>`; an unknown one is an error that names it."""
        try:
            return self._special[token]
        except KeyError:
            raise ValueError(f"the model's vocabulary has no {token} token") from None

    def sot_sequence(self, language: str, *, timestamps: bool) -> list[int]:
        """The prompt of a transcription in `language`: start, language, task, and no-timestamps unless asked."""
        prompt = [self.special(f"<|{name}|>") for name in ("startoftranscript", language, "transcribe")]
        return prompt if timestamps else [*prompt, self.special("<|notimestamps|>")]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of the text tokens among `ids` (special and timestamp tokens carry none)."""
        table = byte_of_character()
        data = bytes(table[c] for i in ids if i < self.eot for c in self._tokens[i])
        return data.decode("utf-8", errors="replace")


__all__ = ["EOT", "Vocabulary", "byte_of_character"]
