"""From the speech pipeline's final text to the `Comment` the citizen reviews: moderation first.

Nothing before this point persists or is shown for review: the raw transcript lives in RAM only and
is dropped here; only the moderated text and the count of redactions per kind go on.
"""

from __future__ import annotations

from edge_models.moderation import moderate
from sync_agent.contract import MAX_COMMENT_CHARS, Comment


def moderated_comment(text: str, *, language: str, asr_model: str, confidence: float) -> Comment | None:
    """The comment to show for review, or None when nothing remains once moderated."""
    result = moderate(text, language)
    cleaned = " ".join(result.text.split())
    if not cleaned:
        return None
    return Comment(
        text=cleaned[:MAX_COMMENT_CHARS],
        language=language,
        asr_model=asr_model,
        redactions=result.counts(),
        confidence=min(1.0, max(0.0, confidence)),
    )


def joined_comment(earlier: Comment, added: Comment) -> Comment:
    """What the citizen said, then what they added after tapping "add" (both already moderated): one text,
    the redactions of both, and the confidence of each weighted by its length."""
    text = f"{earlier.text} {added.text}"[:MAX_COMMENT_CHARS]
    redactions = dict(earlier.redactions)
    for kind, count in added.redactions.items():
        redactions[kind] = redactions.get(kind, 0) + count
    weights = len(earlier.text), len(added.text)
    confidence = (earlier.confidence * weights[0] + added.confidence * weights[1]) / sum(weights)
    return Comment(
        text=text,
        language=earlier.language,
        asr_model=earlier.asr_model,
        redactions=redactions,
        confidence=min(1.0, max(0.0, confidence)),
    )
