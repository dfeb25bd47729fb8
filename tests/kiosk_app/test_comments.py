from __future__ import annotations

from kiosk_app.comments import joined_comment, moderated_comment
from kiosk_app.flow import State
from sync_agent.contract import MAX_COMMENT_CHARS, Comment
from tests.kiosk_app import listening_flow

SPOKEN = (
    "Je m'appelle Martine Dupont, mon numéro c'est le 06 12 34 56 78, "
    "et franchement ce connard au guichet m'a mal parlé."
)


def test_the_comment_holds_only_moderated_text_and_counts() -> None:
    comment = moderated_comment(SPOKEN, language="fr", asr_model="whisper-base", confidence=0.8)
    assert comment is not None
    for secret in ("Martine", "Dupont", "06 12", "34 56 78", "connard"):
        assert secret not in comment.text
    assert "[téléphone]" in comment.text and "[nom]" in comment.text and "[…]" in comment.text
    assert comment.redactions == {"nom": comment.redactions["nom"], "telephone": 1, "insult": 1}
    assert all(count >= 1 for count in comment.redactions.values())


def test_nothing_left_gives_no_comment() -> None:
    assert moderated_comment("   ", language="fr", asr_model="m", confidence=0.5) is None


def test_benign_text_is_kept_and_confidence_clamped() -> None:
    comment = moderated_comment("Très bon accueil, merci.", language="fr", asr_model="m", confidence=1.7)
    assert comment is not None
    assert comment.text == "Très bon accueil, merci." and comment.redactions == {} and comment.confidence == 1.0


def test_the_record_stored_after_review_is_moderated() -> None:
    flow, clock, records = listening_flow()
    assert flow.voice_final(moderated_comment(SPOKEN, language="fr", asr_model="m", confidence=0.9))
    assert flow.state == State.REVIEW
    clock.advance(1)
    assert flow.send()
    stored = records[0].model_dump_json()
    assert "Dupont" not in stored and "06 12 34 56 78" not in stored and "connard" not in stored


def test_a_joined_comment_stays_within_the_contracts_length() -> None:
    long = Comment(text="a" * (MAX_COMMENT_CHARS - 10), language="fr", asr_model="whisper-base", confidence=0.8)
    more = Comment(text="b" * 50, language="fr", asr_model="whisper-base", confidence=0.4)
    joined = joined_comment(long, more)
    assert len(joined.text) == MAX_COMMENT_CHARS and joined.text.startswith(long.text + " b")
