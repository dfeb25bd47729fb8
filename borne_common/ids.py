"""Identifier patterns shared by the settings, the wire contract, provisioning and ingest."""

from __future__ import annotations

import re

# Identifiers also appear in MQTT topics: no '/', '+', '#', spaces or control characters.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
DEPARTMENT_PATTERN = r"^(0[1-9]|1[0-9]|2[1-9]|[3-8][0-9]|9[0-5]|2A|2B|97[1-46])$"  # no 20, no 975
# The platform's MQTT identities (certificate common names, client ids): no terminal may be named so.
PLATFORM_IDENTITY_PATTERN = r"^(ingest|platform)([-_][A-Za-z0-9_-]*)?$"


def is_platform_identity(name: str) -> bool:
    """True for a name reserved to the central platform (`ingest`, `ingest-2`, `platform_fleet`…)."""
    return re.match(PLATFORM_IDENTITY_PATTERN, name, flags=re.IGNORECASE) is not None


__all__ = ["DEPARTMENT_PATTERN", "IDENTIFIER_PATTERN", "PLATFORM_IDENTITY_PATTERN", "is_platform_identity"]
