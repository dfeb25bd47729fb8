"""The exports: the indicators' CSV and the monthly open-data JSON, per account scope, on SQLite and PostgreSQL;
the same bytes from `borne dashboard export`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from borne_cli.main import cli
from platform_ingest.dashboard.app import create_app
from platform_ingest.dashboard.exports import ExportRow, indicators_csv
from platform_ingest.dashboard.figures import Figure
from platform_ingest.dashboard.settings import DashboardSection
from tests.platform_ingest.dashboard.conftest import csrf, login

GENERATED = datetime(2026, 12, 8, 7, 30, tzinfo=UTC)
BOM = "\N{BYTE ORDER MARK}"
HEADER = "niveau;code;nom;departement;region;mois;avis;avis_satisfaits;taux_satisfaction_pct;commentaires"
COMMENTS = ("Accueil très aimable", "Trop d'attente", "Conseillère 100% efficace", "Démarche réglée", "Secret de")


@pytest.fixture
def exporter(filled_url: str, section: DashboardSection) -> Iterator[TestClient]:
    """A client of the dashboard whose clock says GENERATED."""
    with TestClient(create_app(section, filled_url, now=lambda: GENERATED), base_url="http://testserver") as client:
        yield client


def as_account(client: TestClient, name: str) -> TestClient:
    client.cookies.clear()
    login(client, name)
    return client


def lines(body: bytes) -> list[str]:
    text = body.decode("utf-8")
    assert text.startswith(BOM) and text.endswith("\r\n")
    return text.removeprefix(BOM).split("\r\n")[:-1]


def test_a_national_account_gets_every_level_in_a_csv_for_french_spreadsheets(exporter: TestClient) -> None:
    as_account(exporter, "nat")
    response = exporter.get("/export/indicateurs.csv", params={"mois": "2026-11"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="indicateurs-national-2026-11.csv"'
    assert response.headers["cache-control"] == "no-store"
    assert lines(response.content) == [
        HEADER,
        "national;FR;France entière;;;2026-11;103;52;50,5;4",
        "region;53;Bretagne;;53;2026-11;50;39;78,0;3",
        "region;75;Nouvelle-Aquitaine;;75;2026-11;50;10;20,0;1",
        "departement;23;Creuse;23;75;2026-11;50;10;20,0;1",
        "departement;35;Ille-et-Vilaine;35;53;2026-11;50;39;78,0;3",
        "site;fs-23-01;France services de Guéret;23;75;2026-11;50;10;20,0;1",
        "site;fs-35-01;France services de Rennes;35;53;2026-11;40;30;75,0;2",
        # under 30 ratings: neither the rate nor the satisfied count (90 % would be one division away)
        "site;fs-35-02;France services de Vitré;35;53;2026-11;10;;;1",
        "site;fs-99-77;;;;2026-11;3;;;0",  # a site the directory does not list
    ]
    every = exporter.get("/export/indicateurs.csv")
    assert every.headers["content-disposition"] == 'attachment; filename="indicateurs-national-toutes-periodes.csv"'
    rows = list(csv.DictReader(io.StringIO(every.content.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert [row["mois"] for row in rows] == sorted(row["mois"] for row in rows)  # by month first
    assert {(row["niveau"], row["code"]) for row in rows if row["mois"] == "2026-10"} == {
        ("national", "FR"),
        ("region", "53"),
        ("departement", "29"),
        ("site", "fs-29-01"),
    }


def test_a_regional_or_site_account_never_gets_another_scope_s_rows(exporter: TestClient) -> None:
    as_account(exporter, "bzh")
    regional = exporter.get("/export/indicateurs.csv")
    assert regional.headers["content-disposition"] == 'attachment; filename="indicateurs-region-53-toutes-periodes.csv"'
    rows = [line.split(";") for line in lines(regional.content)[1:]]
    assert {(row[0], row[1]) for row in rows} == {
        ("region", "53"),
        ("departement", "29"),
        ("departement", "35"),
        ("site", "fs-29-01"),
        ("site", "fs-35-01"),
        ("site", "fs-35-02"),
    }
    for leak in ("national", "Guéret", "Creuse", "Nouvelle-Aquitaine", "fs-99-77", "103", "138"):
        assert leak not in regional.content.decode(), leak
    document = exporter.get("/export/opendata/2026-11.json").json()
    assert [site["site"] for site in document["sites"]] == ["fs-29-01", "fs-35-01", "fs-35-02"]
    assert document["perimetre"] == "region:53"

    as_account(exporter, "rennes")
    site = exporter.get("/export/indicateurs.csv")
    assert lines(site.content) == [HEADER, "site;fs-35-01;France services de Rennes;35;53;2026-11;40;30;75,0;2"]
    document = exporter.get("/export/opendata/2026-11.json").json()
    assert [entry["site"] for entry in document["sites"]] == ["fs-35-01"]
    assert "Vitré" not in json.dumps(document, ensure_ascii=False)


def test_the_open_data_lists_each_site_of_the_month_with_its_licence_and_no_comment(exporter: TestClient) -> None:
    as_account(exporter, "nat")
    response = exporter.get("/export/opendata/2026-11.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == ('attachment; filename="donnees-ouvertes-national-2026-11.json"')
    document: dict[str, Any] = response.json()
    sites = {entry["site"]: entry for entry in document.pop("sites")}
    assert document == {
        "schema": "borne-satisfaction-france-services-par-site",
        "version": 1,
        "titre": "Satisfaction des usagers de France services par site, nov. 2026 (France entière)",
        "mois": "2026-11",
        "perimetre": "national",
        "licence": {
            "nom": "Licence Ouverte / Open Licence version 2.0",
            "url": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
            "spdx": "etalab-2.0",
        },
        "genere_le": "2026-12-08T07:30:00Z",
        "seuil_avis": 30,
        "definition": document["definition"],
    }
    assert "moins de 30" not in document["definition"] and "sous 30 avis" in document["definition"]
    # every site of the directory (Quimper had no rating in November) and the one it lacks
    assert sorted(sites) == ["fs-23-01", "fs-29-01", "fs-35-01", "fs-35-02", "fs-99-77"]
    assert sites["fs-35-01"] == {
        "site": "fs-35-01",
        "nom": "France services de Rennes",
        "departement": "35",
        "nom_departement": "Ille-et-Vilaine",
        "region": "53",
        "nom_region": "Bretagne",
        "avis": 40,
        "avis_satisfaits": 30,
        "taux_satisfaction": 0.75,
    }
    assert (sites["fs-35-02"]["avis"], sites["fs-35-02"]["avis_satisfaits"]) == (10, None)
    assert sites["fs-35-02"]["taux_satisfaction"] is None
    assert (sites["fs-29-01"]["avis"], sites["fs-29-01"]["taux_satisfaction"]) == (0, None)
    assert sites["fs-99-77"]["nom"] is None and sites["fs-99-77"]["departement"] is None
    text = response.content.decode("utf-8")
    assert "Guéret" in text  # UTF-8, not \u escapes
    for comment in COMMENTS:
        assert comment not in text, comment
    assert "comment" not in text


def test_exports_need_a_login_a_real_month_and_a_get(exporter: TestClient) -> None:
    for path in ("/exports", "/export/indicateurs.csv", "/export/opendata/2026-11.json"):
        response = exporter.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/connexion?suite="), path
    as_account(exporter, "nat")
    for path in ("/export/opendata/2026-13.json", "/export/opendata/novembre.json", "/export/opendata/2026-1.json"):
        response = exporter.get(path)
        assert response.status_code == 400 and "attendu AAAA-MM" in response.text, path
    assert exporter.get("/export/indicateurs.csv", params={"mois": "nov"}).status_code == 400
    token = csrf(exporter, "/exports")
    for path in ("/export/indicateurs.csv", "/export/opendata/2026-11.json", "/exports"):
        assert exporter.post(path, data={"csrf_token": token}).status_code == 405, path


def test_the_exports_page_lists_each_month_of_the_scope(exporter: TestClient) -> None:
    as_account(exporter, "nat")
    home = exporter.get("/")
    assert '<a href="/exports">Exports</a>' in home.text  # in the navigation of every page
    page = exporter.get("/exports")
    assert page.status_code == 200
    assert page.text.index("/export/opendata/2026-11.json") < page.text.index("/export/opendata/2026-10.json")
    assert "Données ouvertes de nov. 2026 (JSON)" in page.text and "Indicateurs de oct. 2026 (CSV)" in page.text
    assert "Licence Ouverte / Open Licence version 2.0" in page.text

    as_account(exporter, "gueret")  # Guéret had ratings in November only
    page = exporter.get("/exports")
    assert "/export/opendata/2026-11.json" in page.text and "2026-10" not in page.text
    assert "le site fs-23-01" in page.text


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_neutralised() -> None:
    def row(name: str, code: str = "fs-1") -> ExportRow:
        return ExportRow("site", code, name, "35", "53", "2026-11", Figure(40, 30, 1))

    body = indicators_csv(
        [
            row('=HYPERLINK("http://evil.example";"clic")'),
            row("+33 1 23"),
            row("-2+3"),
            row("@SUM(A1)"),
            row("\tcaché"),
            row('Guéret; centre "ville"'),
            row("France services", code="-fs"),
        ]
    )
    cells = [next(csv.reader([line], delimiter=";")) for line in lines(body)[1:]]
    assert [cell[2] for cell in cells] == [
        '\'=HYPERLINK("http://evil.example";"clic")',
        "'+33 1 23",
        "'-2+3",
        "'@SUM(A1)",
        "'\tcaché",
        'Guéret; centre "ville"',  # quoted, read back whole
        "France services",
    ]
    assert cells[-1][1] == "'-fs"
    assert cells[0][6:] == ["40", "30", "75,0", "1"]  # numbers left as numbers


def test_borne_dashboard_export_writes_the_same_bytes_as_the_pages(
    exporter: TestClient, filled_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    for account, scope in (("nat", "national"), ("bzh", "region:53"), ("rennes", "site:fs-35-01")):
        as_account(exporter, account)
        out = tmp_path / f"{account}.csv"
        result = runner.invoke(
            cli,
            ["dashboard", "export", "csv", "--db", filled_url, "--scope", scope, "--month", "2026-11", "--out", out],
        )
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == exporter.get("/export/indicateurs.csv", params={"mois": "2026-11"}).content

        result = runner.invoke(
            cli, ["dashboard", "export", "opendata", "--db", filled_url, "--scope", scope, "--month", "2026-11"]
        )
        assert result.exit_code == 0, result.output
        page = exporter.get("/export/opendata/2026-11.json").content
        generated = json.loads(result.stdout_bytes)["genere_le"]
        assert result.stdout_bytes == page.replace(b"2026-12-08T07:30:00Z", generated.encode())

    every = runner.invoke(cli, ["dashboard", "export", "csv", "--db", filled_url])
    assert every.exit_code == 0 and every.stdout_bytes.startswith(BOM.encode()) and b"2026-10" in every.stdout_bytes
    bad = runner.invoke(cli, ["dashboard", "export", "opendata", "--db", filled_url, "--month", "novembre"])
    assert bad.exit_code == 2 and "expected YYYY-MM" in bad.output
    unknown = runner.invoke(cli, ["dashboard", "export", "csv", "--db", filled_url, "--scope", "region:99"])
    assert unknown.exit_code == 2 and "unknown region code '99'" in unknown.output
