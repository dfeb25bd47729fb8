"""The public API: result shape, offsets, kind keys, logging hygiene, and invariants on any text."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edge_models.moderation as moderation
from edge_models.moderation import INSULT_KIND, KINDS, TOKENS, ModerationResult, Redaction, moderate

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")
PLACEHOLDER = re.compile("|".join(re.escape(token) for token in TOKENS.values()))


def test_public_api_is_exported() -> None:
    for name in moderation.__all__:
        assert hasattr(moderation, name), name


def test_kind_keys_fit_the_record_contract_and_tokens_are_bracketed() -> None:
    assert INSULT_KIND in TOKENS and set(KINDS) < set(TOKENS)
    for key, token in TOKENS.items():
        assert KEY_RE.match(key), key
        assert token.startswith("[") and token.endswith("]")
    assert len(set(TOKENS.values())) == len(TOKENS)


def test_result_is_frozen_and_describes_the_input() -> None:
    text = "Merci Karim, mon numéro est 06 12 34 56 78, putain de file d'attente."
    result = moderate(text)
    assert isinstance(result, ModerationResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.text = "x"  # type: ignore[misc]
    assert [(r.kind, text[r.start : r.end]) for r in result.redactions] == [
        ("nom", "Karim"),
        ("telephone", "06 12 34 56 78"),
        ("insult", "putain"),
    ]
    assert result.insults == 1
    assert result.counts() == {"nom": 1, "telephone": 1, "insult": 1}
    assert result.text == "Merci [nom], mon numéro est [téléphone], […] de file d'attente."
    as_dict = result.as_dict()
    assert as_dict["text"] == result.text
    assert as_dict["counts"] == result.counts()


def test_benign_text_is_returned_unchanged() -> None:
    result = moderate("Très bon accueil, merci.")
    assert result == ModerationResult(text="Très bon accueil, merci.", redactions=(), insults=0)
    assert not result.changed
    assert result.counts() == {}


def test_empty_text() -> None:
    assert moderate("").text == ""


def test_non_text_is_refused() -> None:
    with pytest.raises(TypeError, match="expects str"):
        moderate(b"06 12 34 56 78")  # type: ignore[arg-type]


def test_logs_never_hold_the_unredacted_text(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="edge_models"):
        moderate("Je m'appelle Odile Vasseur, 06 98 76 54 32, connard.")
    logged = " ".join(record.getMessage() for record in caplog.records)
    for secret in ("Odile", "Vasseur", "06 98 76 54 32", "connard"):
        assert secret not in logged


def _rebuild(text: str, redactions: tuple[Redaction, ...]) -> str:
    pieces, cursor = [], 0
    for r in redactions:
        pieces += [text[cursor : r.start], r.token]
        cursor = r.end
    return "".join([*pieces, text[cursor:]])


WORDS = st.sampled_from(
    [
        "bonjour", "Sophie", "06", "12", "34", "56", "78", "zéro", "six", "putain", "con", "calcul",
        "rue", "12", "avenue", "Madame", "Martin", "arobase", "point", "gmail", "com", "FR76", "3000",
        "d'enculé", "p", "u", "t", "a", "i", "n", "CAF", "1234567", "je", "m'appelle", "ma", "fille",
        "Léa", "AB-123-CD", "bordel", "le", "baiser", ",", ".", "!", "+33", "sécu", "passeport",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(WORDS, max_size=30).map(" ".join) | st.text(alphabet=st.characters(exclude_characters="[]"), max_size=200)
)
def test_redactions_are_sorted_disjoint_in_bounds_and_rebuild_the_text(text: str) -> None:
    result = moderate(text)
    previous_end = 0
    for r in result.redactions:
        assert previous_end <= r.start < r.end <= len(text)
        assert r.kind in TOKENS
        previous_end = r.end
    assert result.text == _rebuild(text, result.redactions)
    assert result.insults == result.counts().get(INSULT_KIND, 0)
    # Moderating again never touches the tokens of the first pass ("[nom]" never becomes "[[nom]]").
    placeholders = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(result.text)]
    assert len(placeholders) == len(result.redactions)
    again = moderate(result.text)
    for r in again.redactions:
        assert not any(r.start < end and start < r.end for start, end in placeholders)


def test_moderating_twice_changes_nothing_more() -> None:
    text = "Je m'appelle Léa Morel, 06 12 34 56 78, j'habite 3 rue Haute, putain."
    once = moderate(text)
    assert moderate(once.text).text == once.text
    assert not moderate(once.text).changed
