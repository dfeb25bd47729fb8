"""A store with sites in two regions and records around the 30-ratings threshold, accounts of each role, and the
dashboard application on it (Starlette's TestClient)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from platform_ingest.dashboard.accounts import add_user, parse_role
from platform_ingest.dashboard.app import create_app
from platform_ingest.dashboard.settings import DashboardSection
from platform_ingest.store import Site, Store, open_store
from sync_agent.contract import Record
from tests.platform_ingest.factories import PARIS_WINTER, make_record

PASSWORD = "correct horse battery"
NOVEMBER = datetime(2026, 11, 23, 10, tzinfo=PARIS_WINTER)
OCTOBER = datetime(2026, 10, 12, 15, tzinfo=PARIS_WINTER)
SITES = [
    Site("fs-35-01", "France services de Rennes", "35"),  # Bretagne (53)
    Site("fs-35-02", "France services de Vitré", "35"),
    Site("fs-29-01", "France services de Quimper", "29"),
    Site("fs-23-01", "France services de Guéret", "23"),  # Nouvelle-Aquitaine (75)
]
ACCOUNTS = {"nat": "national", "bzh": "region:53", "rennes": "site:fs-35-01", "gueret": "site:fs-23-01"}


def ratings(site: str, period: datetime, satisfied: int, unsatisfied: int, comments: dict[int, str]) -> list[Record]:
    """`satisfied` ratings of 4 then `unsatisfied` of 1; record i carries comments[i] if given."""
    values = [4] * satisfied + [1] * unsatisfied
    return [
        make_record(value, site=site, device=f"{site}-a", period=period, comment=comments.get(index))
        for index, value in enumerate(values)
    ]


def fill(store: Store) -> None:
    store.upsert_sites(SITES)
    records = [
        # Rennes, November: 40 ratings, 30 satisfied (75 %)
        *ratings("fs-35-01", NOVEMBER, 30, 10, {0: "Accueil très aimable, merci", 35: "Trop d'attente au guichet"}),
        # Vitré, November: 10 ratings (under 30: hidden), 9 satisfied
        *ratings("fs-35-02", NOVEMBER, 9, 1, {0: "Conseillère 100% efficace"}),
        # Quimper, October: 35 ratings, 28 satisfied (80 %)
        *ratings("fs-29-01", OCTOBER, 28, 7, {0: "Démarche réglée en dix minutes"}),
        # Guéret, November: 50 ratings, 10 satisfied (20 %)
        *ratings("fs-23-01", NOVEMBER, 10, 40, {45: "Secret de Guéret : personne ne répond"}),
        # a site missing from the directory
        *ratings("fs-99-77", NOVEMBER, 3, 0, {}),
    ]
    store.store(records)
    for name, role in ACCOUNTS.items():
        add_user(store, name, parse_role(role), PASSWORD)


@pytest.fixture
def filled_url(db_url: str) -> str:
    with open_store(db_url) as store:
        fill(store)
    return db_url


@pytest.fixture
def section(tmp_path: Path) -> DashboardSection:
    return DashboardSection(cookie_secret_file=tmp_path / "secret" / "cookie-secret")


@pytest.fixture
def make_client(filled_url: str, section: DashboardSection) -> Iterator[Callable[..., TestClient]]:
    """make_client(**[dashboard] overrides) -> a TestClient on the filled store."""
    clients: list[TestClient] = []

    def make(clock: Callable[[], float] | None = None, **overrides: object) -> TestClient:
        app = create_app(section.model_copy(update=overrides), filled_url, **({"clock": clock} if clock else {}))
        client = TestClient(app, base_url="http://testserver")
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def csrf(client: TestClient, path: str = "/connexion") -> str:
    """The CSRF token of the form on `path`."""
    page = client.get(path).text
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def login(client: TestClient, name: str, password: str = PASSWORD, **extra: str) -> object:
    return client.post(
        "/connexion",
        data={"nom": name, "mot_de_passe": password, "csrf_token": csrf(client), **extra},
        follow_redirects=False,
    )
