"""UI texts from gettext `.po` catalogues under `locale/<lang>/LC_MESSAGES/borne.po`, read at start.

Message ids are stable keys (`review.send`); the French catalogue is the reference every other one
must match. The `.po` files are parsed directly, so no compiled `.mo` is needed. A missing text falls
back to French, then to the key itself (visible, so a gap is noticed, never a crash).
"""

from __future__ import annotations

import ast
from pathlib import Path

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "borne"
REFERENCE_LANGUAGE = "fr"


class CatalogueError(ValueError):
    """A `.po` file that cannot be read."""


def parse_po(text: str, where: str = "<po>") -> dict[str, str]:
    """msgid -> msgstr of a `.po` file (single forms; the header entry and empty translations are left out)."""
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None

    def flush() -> None:
        if msgid is not None and msgstr is not None:
            key, value = "".join(msgid), "".join(msgstr)
            if key and value:
                entries[key] = value

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            msgid, msgstr = [_quoted(line[6:], where, number)], None
            current = msgid
        elif line.startswith("msgstr "):
            if msgid is None:
                raise CatalogueError(f"{where}:{number}: msgstr without msgid")
            msgstr = [_quoted(line[7:], where, number)]
            current = msgstr
        elif line.startswith('"') and current is not None:
            current.append(_quoted(line, where, number))
        else:
            raise CatalogueError(f"{where}:{number}: unexpected line {line[:40]!r} (plural forms are not used)")
    flush()
    return entries


def _quoted(token: str, where: str, number: int) -> str:
    token = token.strip()
    if len(token) < 2 or token[0] != '"' or token[-1] != '"':
        raise CatalogueError(f'{where}:{number}: expected a "quoted string", got {token[:40]!r}')
    try:
        value = ast.literal_eval(token)
    except (ValueError, SyntaxError) as error:
        raise CatalogueError(f"{where}:{number}: bad string escape ({error})") from None
    if not isinstance(value, str):
        raise CatalogueError(f"{where}:{number}: not a string")
    return value


def load_catalogues(locale_dir: Path = LOCALE_DIR) -> dict[str, dict[str, str]]:
    """Every catalogue found: language code -> messages."""
    catalogues = {}
    for po in sorted(locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        language = po.parent.parent.name
        catalogues[language] = parse_po(po.read_text(encoding="utf-8"), str(po))
    return catalogues


class Translator:
    """UI texts per language with French fallback."""

    def __init__(self, catalogues: dict[str, dict[str, str]] | None = None) -> None:
        self.catalogues = load_catalogues() if catalogues is None else catalogues

    @property
    def languages(self) -> list[str]:
        return sorted(self.catalogues)

    def text(self, key: str, language: str) -> str:
        for candidate in (language, REFERENCE_LANGUAGE):
            found = self.catalogues.get(candidate, {}).get(key)
            if found is not None:
                return found
        return key

    def language_name(self, language: str) -> str:
        """The language's own name ("Français", "English"), from its own catalogue."""
        return self.catalogues.get(language, {}).get("language.name", language.upper())


def pick(texts: dict[str, str], language: str) -> str:
    """A settings text (`Texts`) in `language`, else French."""
    return texts.get(language) or texts.get(REFERENCE_LANGUAGE) or next(iter(texts.values()), "")
