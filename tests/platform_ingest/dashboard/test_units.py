"""Roles, password hashes, the figures' rules, and the store's dashboard queries on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from platform_ingest.dashboard import figures
from platform_ingest.dashboard.accounts import (
    AccountError,
    Role,
    add_user,
    hash_password,
    parse_role,
    verify_password,
)
from platform_ingest.dashboard.geography import REGION_CODES, departments_of
from platform_ingest.departments import REGIONS
from platform_ingest.store import DashboardUser, Store, open_store
from tests.platform_ingest.dashboard.conftest import PASSWORD, fill


def test_every_region_has_its_insee_code() -> None:
    assert sorted(REGION_CODES.values()) == sorted(REGIONS)
    assert departments_of("53") == ["22", "29", "35", "56"]
    assert departments_of("94") == ["2A", "2B"]


def test_roles_are_read_and_mistakes_named() -> None:
    assert parse_role("national") == Role("national")
    assert parse_role("region:53") == Role("region", "53")
    assert parse_role("site:fs-35-01") == Role("site", "fs-35-01")
    assert str(parse_role("region:53")) == "region:53"
    with pytest.raises(AccountError, match=r"unknown region code 'Bretagne'.*53 Bretagne"):
        parse_role("region:Bretagne")
    with pytest.raises(AccountError, match="not a site id"):
        parse_role("site:a b")
    with pytest.raises(AccountError, match="expected national, region:CODE"):
        parse_role("admin")
    region = parse_role("region:53")
    assert region.sees_department("35") and not region.sees_department("23")
    assert region.sees_site("fs-35-01", "35") and not region.sees_site("fs-99", None)
    assert not parse_role("site:a").sees_site("b", "35")


def test_passwords_are_argon2id_hashes_that_verify_only_the_password() -> None:
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert hashed != hash_password(PASSWORD)  # salted
    assert verify_password(hashed, PASSWORD)
    assert not verify_password(hashed, PASSWORD + "!")
    assert not verify_password("not a hash", PASSWORD)


def test_accounts_need_a_usable_name_and_a_long_password(memory_store: Store) -> None:
    with pytest.raises(AccountError, match="at least 12 characters"):
        add_user(memory_store, "nat", Role("national"), "short")
    with pytest.raises(AccountError, match="not an account name"):
        add_user(memory_store, "a b", Role("national"), PASSWORD)
    assert memory_store.dashboard_users() == []


def test_a_rate_under_30_ratings_is_hidden_and_differences_read_in_points() -> None:
    assert figures.Figure(29, 29).rate is None
    assert figures.Figure(30, 24).rate == 0.8
    assert figures.percent(None) == "moins de 30 avis"
    assert figures.percent(0.8754) == "87,5\N{NARROW NO-BREAK SPACE}%"
    assert figures.difference(0.80, 0.75) == "+5,0\N{NO-BREAK SPACE}pts"
    assert figures.difference(0.74, 0.75) == "\N{MINUS SIGN}1,0\N{NO-BREAK SPACE}pt"
    assert figures.difference(0.75, 0.75) == "±0,0\N{NO-BREAK SPACE}pt"
    assert figures.difference(None, 0.75) == "—"
    assert figures.month_label("2026-02") == "févr. 2026"
    assert figures.count(1234567) == "1\N{NARROW NO-BREAK SPACE}234\N{NARROW NO-BREAK SPACE}567"


def test_the_chart_keeps_the_last_twelve_months_and_flattens_hidden_rates() -> None:
    rows = [
        figures.Row(f"2025-{m:02d}", figures.month_label(f"2025-{m:02d}"), figures.Figure(100, m * 8))
        for m in range(1, 13)
    ]
    rows.append(figures.Row("2026-01", "janv. 2026", figures.Figure(10, 10)))
    bars = figures.chart(rows)
    assert len(bars) == 12 and bars[0].label == "févr. 2025" and bars[-1].label == "janv. 2026"
    assert not bars[-1].shown and bars[-1].height == 0 and bars[-1].value == "< 30"
    full = figures.CHART_BOTTOM - figures.CHART_TOP
    assert bars[-2].height == pytest.approx(full * 0.96) and bars[-2].y == pytest.approx(
        figures.CHART_BOTTOM - bars[-2].height
    )


def test_the_store_keeps_dashboard_accounts(db_url: str) -> None:
    created = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)
    with open_store(db_url) as store:
        store.put_dashboard_user(DashboardUser("nat", "$argon2id$x", "national", created))
        store.put_dashboard_user(DashboardUser("bzh", "$argon2id$y", "region:53", created))
        store.put_dashboard_user(DashboardUser("nat", "$argon2id$z", "region:11", created))  # replaced
        assert [user.name for user in store.dashboard_users()] == ["bzh", "nat"]
        nat = store.dashboard_user("nat")
        assert nat is not None and (nat.password_hash, nat.role, nat.created_at) == (
            "$argon2id$z",
            "region:11",
            created,
        )
        assert store.dashboard_user("NAT") is None
        assert store.delete_dashboard_user("nat") and not store.delete_dashboard_user("nat")
    with open_store(db_url) as store:  # opening an existing database again keeps them
        assert [user.name for user in store.dashboard_users()] == ["bzh"]


def test_the_store_lists_comments_in_a_scope_with_filters(db_url: str) -> None:
    with open_store(db_url) as store:
        fill(store)
        every, total = store.comments(limit=100)
        assert total == 5 and len(every) == 5
        assert [c.month for c in every] == ["2026-11"] * 4 + ["2026-10"]
        brittany, total = store.comments(departments=["22", "29", "35", "56"])
        assert total == 4 and {c.site_id for c in brittany} == {"fs-35-01", "fs-35-02", "fs-29-01"}
        assert store.comments(departments=[]) == ([], 0)
        (gueret,), total = store.comments(site_id="fs-23-01")
        assert (gueret.site_name, gueret.rating, gueret.month, total) == ("France services de Guéret", 1, "2026-11", 1)
        assert store.comments(rating=4, month="2026-11")[1] == 2
        assert store.comments(search="guichet")[1] == 1
        assert store.comments(search="GUICHET")[1] == 1
        assert store.comments(search="_")[1] == 0  # a literal underscore, not "any character"
        page, total = store.comments(limit=2, offset=4)
        assert total == 5 and [c.month for c in page] == ["2026-10"]
        assert [site.site_id for site in store.sites()] == ["fs-23-01", "fs-29-01", "fs-35-01", "fs-35-02"]
