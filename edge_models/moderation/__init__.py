"""French moderation: insults and personal data removed before anything is stored.

>>> from edge_models.moderation import moderate
>>> moderate("Appelez-moi au 06 12 34 56 78, putain !").text
'Appelez-moi au [téléphone], […] !'
"""

from edge_models.moderation.moderator import (
    INSULT_KIND,
    INSULT_TOKEN,
    TOKENS,
    ModerationResult,
    Redaction,
    moderate,
    warm_up,
)
from edge_models.moderation.personal_data import KINDS

__all__ = [
    "INSULT_KIND",
    "INSULT_TOKEN",
    "KINDS",
    "TOKENS",
    "ModerationResult",
    "Redaction",
    "moderate",
    "warm_up",
]
