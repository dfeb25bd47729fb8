"""Translation files: every catalogue complete, every key the screens use defined, the .po reader strict."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kiosk_app.settings import KioskSection
from kiosk_app.ui.i18n import LOCALE_DIR, CatalogueError, Translator, load_catalogues, parse_po, pick

UI_DIR = LOCALE_DIR.parent
# Keys written literally in the screens: tr("key"...) in Python and .kv files.
LITERAL_KEY = re.compile(r"""\btr\(\s*["']([a-z_]+(?:\.[a-z_0-9]+)+)["']""")
# Keys built from a value: their every expansion must exist.
BUILT_KEYS = [f"rating.{int(r)}" for r in range(1, 5)] + [
    *(f"state.{s}" for s in ("ok", "missing", "failed", "loading", "unknown")),
    *(f"tech.outbox.{s}" for s in ("pending", "in_flight", "acked", "rejected")),
    "tech.clear",
    "tech.ok",
    "review.first",  # the page button's word on the last page (review.kv picks it in an expression)
    "language.name",
]


def used_keys() -> set[str]:
    keys = set(BUILT_KEYS)
    for path in [*UI_DIR.rglob("*.py"), *UI_DIR.rglob("*.kv")]:
        keys.update(LITERAL_KEY.findall(path.read_text(encoding="utf-8")))
    return keys


def test_french_english_and_spanish_are_shipped() -> None:
    assert {"fr", "en", "es"} <= set(load_catalogues())


def test_every_catalogue_has_every_message_of_the_french_one() -> None:
    catalogues = load_catalogues()
    reference = set(catalogues["fr"])
    for language, messages in catalogues.items():
        assert set(messages) == reference, f"{language}: missing {reference - set(messages)}"
        assert all(text.strip() for text in messages.values()), language


def test_every_key_the_screens_use_is_translated() -> None:
    keys = used_keys()
    assert len(keys) > 30  # the scan found the screens' texts
    missing = keys - set(load_catalogues()["fr"])
    assert not missing


def test_placeholders_are_kept_in_every_translation() -> None:
    catalogues = load_catalogues()
    for key, text in catalogues["fr"].items():
        expected = set(re.findall(r"\{\w+\}", text))
        for language, messages in catalogues.items():
            assert set(re.findall(r"\{\w+\}", messages[key])) == expected, (language, key)


def test_each_language_names_itself() -> None:
    translator = Translator()
    assert [translator.language_name(code) for code in ("fr", "en", "es")] == ["Français", "English", "Español"]


def test_a_missing_text_falls_back_to_french_then_to_the_key() -> None:
    translator = Translator({"fr": {"a.b": "Bonjour", "c.d": "Oui"}, "en": {"c.d": "Yes"}})
    assert translator.text("c.d", "en") == "Yes"
    assert translator.text("a.b", "en") == "Bonjour"
    assert translator.text("a.b", "de") == "Bonjour"
    assert translator.text("x.y", "en") == "x.y"


def test_settings_texts_fall_back_to_french() -> None:
    section = KioskSection()
    assert pick(section.question, "es").startswith("¿Qué tal su trámite")
    assert pick({"fr": "Oui"}, "en") == "Oui"


def test_po_strings_continue_over_lines_and_keep_escapes() -> None:
    text = 'msgid ""\nmsgstr "Language: fr\\n"\n\nmsgid "a.b"\nmsgstr ""\n"Dites \\"oui\\" "\n"ou non"\n'
    assert parse_po(text) == {"a.b": 'Dites "oui" ou non'}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('msgstr "x"\n', "msgstr without msgid"),
        ('msgid "a.b"\nmsgstr x\n', "expected a"),
        ("msgid_plural", "unexpected"),
    ],
)
def test_a_broken_po_file_names_the_line(text: str, problem: str) -> None:
    with pytest.raises(CatalogueError, match=problem) as error:
        parse_po(text, "fr.po")
    assert "fr.po:" in str(error.value)


def test_po_files_are_plain_utf8_text_in_the_gettext_layout() -> None:
    for po in LOCALE_DIR.glob("*/LC_MESSAGES/*.po"):
        assert po.name == "borne.po"
        assert 'msgid ""' in po.read_text(encoding="utf-8")
        assert Path(po.parent.parent.name).name in {"fr", "en", "es"}
