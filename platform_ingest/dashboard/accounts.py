"""Dashboard accounts: a role decides the scope (the whole country, one region, one site); passwords are
kept as argon2id hashes (argon2-cffi) in the store's `dashboard_users` table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from borne_common.ids import IDENTIFIER_PATTERN
from platform_ingest.dashboard.geography import REGION_CODES, departments_of
from platform_ingest.store import DashboardUser, Store

MIN_PASSWORD_LENGTH = 12
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_SITE = re.compile(IDENTIFIER_PATTERN)


class AccountError(ValueError):
    """An account that cannot be created as asked; the message says what to change."""


@dataclass(frozen=True)
class Role:
    """What an account may see: `national` (everything), `region` (one region, by INSEE code), `site` (one site)."""

    kind: Literal["national", "region", "site"]
    code: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "national" else f"{self.kind}:{self.code}"

    @property
    def departments(self) -> list[str] | None:
        """The départements a regional account sees (None: every one, or not by département)."""
        return departments_of(self.code) if self.kind == "region" else None

    def sees_region(self, code: str) -> bool:
        return self.kind == "national" or (self.kind == "region" and self.code == code)

    def sees_department(self, code: str) -> bool:
        return self.kind == "national" or (self.kind == "region" and code in departments_of(self.code))

    def sees_site(self, site_id: str, department: str | None) -> bool:
        if self.kind == "site":
            return site_id == self.code
        return self.kind == "national" or (department is not None and self.sees_department(department))

    def home(self) -> str:
        """The page this account starts on."""
        return {"national": "/", "region": f"/region/{self.code}", "site": f"/site/{self.code}"}[self.kind]


def parse_role(text: str) -> Role:
    """`national`, `region:CODE` (INSEE region code, e.g. 53) or `site:ID`; AccountError otherwise."""
    kind, _, code = text.strip().partition(":")
    if kind == "national" and not code:
        return Role("national")
    if kind == "region":
        if code in REGION_CODES:
            return Role("region", code)
        known = ", ".join(f"{number} {name}" for number, name in sorted(REGION_CODES.items()))
        raise AccountError(f"unknown region code {code!r}; expected an INSEE region code: {known}")
    if kind == "site":
        if _SITE.fullmatch(code):
            return Role("site", code)
        raise AccountError(f"{code!r} is not a site id (letters, digits, '-' or '_', at most 64)")
    raise AccountError(f"unknown role {text!r}; expected national, region:CODE (INSEE code, e.g. region:53) or site:ID")


@lru_cache(maxsize=1)
def _hasher() -> Any:
    try:
        from argon2 import PasswordHasher
    except ImportError as error:
        raise RuntimeError("the dashboard requires argon2-cffi: pip install 'borne[dashboard]'") from error
    return PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (with its own salt and the library's current parameters)."""
    return str(_hasher().hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash` (False for a malformed hash, never an exception)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


_DUMMY_HASH: list[str] = []


def dummy_verify(password: str) -> None:
    """Spend the time of a verification for an unknown account, so timing does not tell which names exist."""
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password("not a password of anyone"))
    verify_password(_DUMMY_HASH[0], password)


def add_user(store: Store, name: str, role: Role, password: str, *, now: datetime | None = None) -> DashboardUser:
    """Create (or replace the password and role of) the account `name`."""
    if not _NAME.fullmatch(name):
        raise AccountError(
            f"{name!r} is not an account name; use letters, digits, '.', '_', '@' or '-' (at most 64, "
            "starting with a letter or digit)"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password is too short: at least {MIN_PASSWORD_LENGTH} characters")
    user = DashboardUser(name, hash_password(password), str(role), now or datetime.now(UTC))
    store.put_dashboard_user(user)
    return user
