"""The pages as each role sees them, on SQLite and PostgreSQL: figures, hidden small counts, scopes."""

from __future__ import annotations

import html as markup
import re
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from platform_ingest.dashboard.app import create_app
from platform_ingest.dashboard.settings import DashboardSection
from tests.platform_ingest.dashboard.conftest import PASSWORD, csrf, login

NNBSP = "\N{NARROW NO-BREAK SPACE}"
NBSP = "\N{NO-BREAK SPACE}"
MINUS = "\N{MINUS SIGN}"


def text_of(html: str) -> str:
    """The page's text, tags removed, entities decoded, ASCII spaces collapsed (no-break spaces kept)."""
    return markup.unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html)))


def row(html: str, label: str) -> str:
    """The text of the table row whose header contains `label`."""
    for found in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        if label in found:
            return text_of(found).strip()
    raise AssertionError(f"no row {label!r} in the page")


def test_anonymous_visitors_are_sent_to_the_login_form_with_the_page_to_come_back_to(client: TestClient) -> None:
    for path in ("/", "/region/53", "/departement/35", "/site/fs-35-01", "/commentaires?note=4", "/parc"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/connexion?suite=")
    response = client.get("/region/53")
    assert response.status_code == 200
    assert 'name="suite" value="/region/53"' in response.text


def test_the_national_page_shows_rates_volumes_regions_and_the_same_figures_as_a_table(client: TestClient) -> None:
    assert login(client, "nat").headers["location"] == "/"  # type: ignore[attr-defined]
    page = client.get("/")
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    text = text_of(page.text)
    # 138 ratings, 80 of them 3 or 4
    assert f"Taux de satisfaction 58,0{NNBSP}% Nombre d'avis 138" in text
    assert row(page.text, "Bretagne") == f"Bretagne 85 78,8{NNBSP}% +20,9{NBSP}pts"
    assert row(page.text, "Nouvelle-Aquitaine") == f"Nouvelle-Aquitaine 50 20,0{NNBSP}% {MINUS}38,0{NBSP}pts"
    # a region without ratings: hidden rate, no comparison
    assert row(page.text, "Corse") == "Corse 0 moins de 30 avis —"
    # records of a site the directory does not list: counted, shown apart (3 ratings: rate hidden)
    assert row(page.text, "Sites absents") == "Sites absents de l'annuaire 3 moins de 30 avis —"
    # the monthly chart (SVG drawn by the server) and its table
    assert "<svg" in page.text and page.text.count('class="bar"') == 2
    assert row(page.text, "oct. 2026") == f"oct. 2026 35 80,0{NNBSP}%"
    assert row(page.text, "nov. 2026") == f"nov. 2026 103 50,5{NNBSP}%"


def test_a_month_filter_narrows_the_figures_and_a_bad_month_is_named(client: TestClient) -> None:
    login(client, "nat")
    page = client.get("/", params={"mois": "2026-10"})
    assert f"Taux de satisfaction 80,0{NNBSP}% Nombre d'avis 35" in text_of(page.text)
    assert row(page.text, "Nouvelle-Aquitaine").startswith("Nouvelle-Aquitaine 0 moins de 30 avis")
    bad = client.get("/", params={"mois": "novembre"})
    assert bad.status_code == 400
    assert "attendu AAAA-MM" in bad.text


def test_region_department_and_site_pages_compare_with_the_national_figure(client: TestClient) -> None:
    login(client, "nat")
    region = client.get("/region/53")
    text = text_of(region.text)
    assert "<h1>Bretagne</h1>" in region.text
    assert f"Écart au taux national (58,0{NNBSP}%, 138 avis) +20,9{NBSP}pts" in text
    assert row(region.text, "Ille-et-Vilaine") == f"Ille-et-Vilaine (35) 50 78,0{NNBSP}% +20,0{NBSP}pts"
    assert row(region.text, "Morbihan") == "Morbihan (56) 0 moins de 30 avis —"
    # each month against the national rate of that month (November: 52 satisfied of 103)
    assert row(region.text, "nov. 2026") == f"nov. 2026 50 78,0{NNBSP}% +27,5{NBSP}pts"
    assert row(region.text, "oct. 2026") == f"oct. 2026 35 80,0{NNBSP}% ±0,0{NBSP}pt"

    department = client.get("/departement/35")
    assert row(department.text, "Rennes") == f"France services de Rennes 40 75,0{NNBSP}% +17,0{NBSP}pts"
    # 10 ratings: the rate is not shown, the count is
    assert row(department.text, "Vitré") == "France services de Vitré 10 moins de 30 avis —"
    assert "90,0" not in department.text

    site = client.get("/site/fs-35-02")
    assert site.status_code == 200
    assert "Taux de satisfaction moins de 30 avis Nombre d'avis 10" in text_of(site.text)
    assert "90,0" not in site.text
    assert client.get("/region/99").status_code == 404
    assert client.get("/departement/20").status_code == 404
    assert client.get("/site/nowhere").status_code == 404


def test_a_regional_account_sees_its_region_only_and_no_national_figure(client: TestClient) -> None:
    assert login(client, "bzh").headers["location"] == "/region/53"  # type: ignore[attr-defined]
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/region/53"
    region = client.get("/region/53")
    assert region.status_code == 200
    assert f"Taux de satisfaction 78,8{NNBSP}% Nombre d'avis 85" in text_of(region.text)
    # neither the national rate (58,0 %) and volume (138) nor another region
    for leak in ("58,0", "138", "Nouvelle-Aquitaine", "Guéret", "national"):
        assert leak not in region.text, leak
    department = client.get("/departement/35")
    assert department.status_code == 200
    assert row(department.text, "Rennes") == f"France services de Rennes 40 75,0{NNBSP}% {MINUS}3,8{NBSP}pts"
    assert "58,0" not in department.text
    assert row(department.text, "nov. 2026") == f"nov. 2026 50 78,0{NNBSP}% ±0,0{NBSP}pt"  # against its region
    for path in ("/region/75", "/departement/23", "/site/fs-23-01", "/site/fs-99-77"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "n'est pas dans le périmètre de votre compte" in text_of(response.text)
        assert "20,0" not in response.text and "Guéret" not in response.text


def test_a_site_account_sees_its_site_only(client: TestClient) -> None:
    assert login(client, "rennes").headers["location"] == "/site/fs-35-01"  # type: ignore[attr-defined]
    page = client.get("/site/fs-35-01")
    assert f"Taux de satisfaction 75,0{NNBSP}% Nombre d'avis 40" in text_of(page.text)
    assert "Écart" not in page.text and "58,0" not in page.text and "78,8" not in page.text
    for path in ("/region/53", "/departement/35", "/site/fs-35-02", "/site/fs-29-01"):
        assert client.get(path).status_code == 403, path
    assert client.get("/", follow_redirects=False).headers["location"] == "/site/fs-35-01"


def test_comments_are_filtered_searched_paginated_and_kept_in_scope(make_client: Callable[..., TestClient]) -> None:
    client = make_client(comments_per_page=2)
    login(client, "nat")
    first = client.get("/commentaires")
    assert "5 commentaire(s), page 1 sur 3" in text_of(first.text)
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    last = client.get("/commentaires", params={"page": 3})
    assert "Démarche réglée en dix minutes" in last.text  # October: the oldest, last
    assert 'rel="prev"' in last.text and 'rel="next"' not in last.text

    low = client.get("/commentaires", params={"note": 1})
    assert "2 commentaire(s)" in text_of(low.text)
    assert "Trop d'attente au guichet" in text_of(low.text) and "Accueil très aimable" not in low.text
    # search: case-insensitive, and % is a character, not a wildcard
    assert "1 commentaire(s)" in text_of(client.get("/commentaires", params={"q": "ACCUEIL"}).text)
    percent = client.get("/commentaires", params={"q": "100%"})
    assert "1 commentaire(s)" in text_of(percent.text) and "Conseillère 100% efficace" in percent.text
    assert "0 commentaire(s)" in text_of(client.get("/commentaires", params={"q": "0%e"}).text)
    october = client.get("/commentaires", params={"mois": "2026-10"})
    assert "1 commentaire(s)" in text_of(october.text)
    assert client.get("/commentaires", params={"note": 5}).status_code == 400

    regional = make_client(comments_per_page=50)
    login(regional, "bzh")
    page = regional.get("/commentaires")
    assert "4 commentaire(s)" in text_of(page.text)
    assert "Secret de Guéret" not in page.text
    assert "0 commentaire(s)" in text_of(regional.get("/commentaires", params={"q": "Guéret"}).text)

    site = make_client()
    login(site, "gueret")
    page = site.get("/commentaires")
    assert "1 commentaire(s)" in text_of(page.text) and "Secret de Guéret" in page.text


def test_every_asset_is_served_by_the_app_and_nothing_comes_from_elsewhere(client: TestClient) -> None:
    login(client, "nat")
    for path in ("/", "/region/53", "/departement/35", "/site/fs-35-01", "/commentaires", "/connexion"):
        page = client.get(path)
        references = re.findall(r'(?:src|href|action)="([^"]*)"', page.text)
        assert references and all(not ref.startswith(("http:", "https:", "//")) for ref in references), references
        assert "default-src 'self'" in page.headers["content-security-policy"]
    css = client.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in css.text


def test_a_removed_account_loses_its_session(client: TestClient, filled_url: str) -> None:
    from platform_ingest.store import open_store

    login(client, "bzh")
    assert client.get("/region/53").status_code == 200
    with open_store(filled_url) as store:
        assert store.delete_dashboard_user("bzh")
    response = client.get("/region/53", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/connexion")


def test_the_wrong_password_is_refused_without_saying_whether_the_account_exists(client: TestClient) -> None:
    wrong = login(client, "nat", "not the password")
    unknown = login(client, "nobody", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401  # type: ignore[attr-defined]
        assert "Nom ou mot de passe incorrect." in response.text  # type: ignore[attr-defined]
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_database_that_cannot_be_opened_gives_a_503_page_not_a_crash(
    section: DashboardSection, tmp_path: Path
) -> None:
    (tmp_path / "not-a-directory").write_text("", encoding="utf-8")
    app = create_app(section, f"sqlite:///{tmp_path / 'not-a-directory' / 'ingest.db'}")
    with TestClient(app) as client:
        client.cookies.clear()
        page = client.get("/connexion")
        assert page.status_code == 200  # the login form needs no database
        response = client.post("/connexion", data={"nom": "nat", "mot_de_passe": PASSWORD, "csrf_token": csrf(client)})
        assert response.status_code == 503
        assert "La base de données des avis ne répond pas" in response.text


def test_the_fleet_page_shows_each_terminal_of_the_accounts_scope_with_its_alerts(
    filled_url: str, section: DashboardSection
) -> None:
    from datetime import UTC, datetime, timedelta

    from platform_ingest.store import open_store
    from sync_agent.contract import DeviceConfig, Status

    now = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # a Monday, 15:00 in Paris: open

    def status(site: str, device: str, seen: datetime, **changes: object) -> Status:
        values: dict[str, object] = {"site_id": site, "device_id": device, "state": "online", "sent_at": seen}
        values |= {"microphone": "ok", "model": "ok", "versions": {"borne": "0.9.0"}, **changes}
        return Status.model_validate(values)

    with open_store(filled_url) as store:
        store.put_status(status("fs-35-01", "borne-a", now - timedelta(minutes=4), config_version=2), received=now)
        store.put_status(status("fs-35-02", "borne-a", now, microphone="missing"), received=now)
        old = now - timedelta(days=3)
        store.put_status(status("fs-23-01", "borne-a", old), received=old)
        hours = DeviceConfig.model_validate(  # its silence counts in these hours, not the fleet's
            {"config_version": 3, "question": {"fr": "Satisfait ?"}, "opening_hours": {"mon": ["08:00-20:00"]}}
        )
        store.put_device_config("fs-23-01", "borne-a", hours, old)
    client = TestClient(create_app(section, filled_url, now=lambda: now), base_url="http://testserver")
    with client:
        login(client, "nat")
        page = client.get("/parc")
        assert page.status_code == 200
        text = text_of(page.text)
        assert "3 borne(s), 3 en ligne, 2 signalée(s)." in text
        assert row(page.text, "Rennes").startswith("borne-a France services de Rennes en ligne")
        assert "0.9.0 2 0 aucun" in row(page.text, "Rennes")
        assert row(page.text, "Vitré").endswith("Micro absent")
        silent = "Silencieuse : aucun statut depuis plus de 2 h d'ouverture (horaires de la configuration 3)"
        assert silent in row(page.text, "Guéret")

        client.post("/deconnexion", data={"csrf_token": csrf(client, "/parc")})
        login(client, "bzh")  # Bretagne: its two terminals, not Guéret's
        text = text_of(client.get("/parc").text)
        assert "2 borne(s), 2 en ligne, 1 signalée(s)." in text and "Guéret" not in text
        client.post("/deconnexion", data={"csrf_token": csrf(client, "/parc")})
        login(client, "rennes")
        text = text_of(client.get("/parc").text)
        assert "1 borne(s), 1 en ligne, 0 signalée(s)." in text and "Vitré" not in text
