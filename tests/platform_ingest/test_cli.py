"""`borne ingest stats`, `sites import`, `dead-letters` and `run`'s start-up errors, through click."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from borne_cli.main import cli
from platform_ingest.store import DeadLetter, open_store
from tests.platform_ingest.factories import PARIS_WINTER, make_record


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def filled_db(db_url: str) -> str:
    with open_store(db_url) as store:
        november = datetime(2026, 11, 5, 14, tzinfo=PARIS_WINTER)
        store.store(
            [make_record(4, site="fs-13-01", period=november), make_record(1, site="fs-13-01", period=november)]
        )
        store.store([make_record(3, site="fs-75-01", period=november, comment="merci")])
        store.store([make_record(2, site="fs-75-01", period=datetime(2026, 12, 1, 9, tzinfo=PARIS_WINTER))])
    return db_url


def write_sites(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sites.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_stats_as_json_per_site(runner: CliRunner, filled_db: str) -> None:
    result = runner.invoke(cli, ["ingest", "stats", "--db", filled_db, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = {(row["group"], row["month"]): row for row in report["indicators"]}
    assert set(rows) == {("fs-13-01", "2026-11"), ("fs-75-01", "2026-11"), ("fs-75-01", "2026-12")}
    assert rows[("fs-13-01", "2026-11")]["satisfaction_rate"] == 0.5
    assert rows[("fs-75-01", "2026-11")]["comments"] == 1


def test_sites_import_then_stats_per_region_for_one_month(runner: CliRunner, filled_db: str, tmp_path: Path) -> None:
    sites = write_sites(tmp_path, "site_id,name,department\nfs-13-01,Marseille 3e,13\nfs-75-01,Paris 19e,75\n")
    result = runner.invoke(cli, ["ingest", "sites", "import", str(sites), "--db", filled_db])
    assert result.exit_code == 0, result.output
    assert "imported 2 site(s)" in result.output
    result = runner.invoke(cli, ["ingest", "stats", "--db", filled_db, "--by", "region", "--month", "2026-11"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["region", "name", "month"]
    assert any(line.startswith("Provence-Alpes-Côte d'Azur") and "50.0" in line for line in lines)
    assert any(line.startswith("Île-de-France") and "100.0" in line for line in lines)
    assert not any("2026-12" in line for line in lines)


def test_records_of_sites_missing_from_the_directory_count_as_unknown(runner: CliRunner, filled_db: str) -> None:
    result = runner.invoke(cli, ["ingest", "stats", "--db", filled_db, "--by", "department", "--json"])
    assert {row["group"] for row in json.loads(result.output)["indicators"]} == {"unknown"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("site,name\nx,y\n", "expected a CSV header with the columns site_id,name,department"),
        ("site_id,name,department\nfs-1,Somewhere,20\n", "sites.csv:2: department '20'"),
        ("site_id,name,department\nfs/1,Somewhere,75\n", "is not an identifier"),
        ("site_id,name,department\nfs-1,A,75\nfs-1,B,75\n", "sites.csv:3: site fs-1 appears twice"),
    ],
)
def test_a_bad_sites_file_is_refused_with_the_line(
    runner: CliRunner, tmp_path: Path, content: str, message: str
) -> None:
    db = f"sqlite:///{tmp_path / 'ingest.db'}"
    result = runner.invoke(cli, ["ingest", "sites", "import", str(write_sites(tmp_path, content)), "--db", db])
    assert result.exit_code == 1
    assert message in result.output
    with open_store(db) as store:
        assert store.indicators("site") == []


def test_stats_refuses_a_malformed_month(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["ingest", "stats", "--db", f"sqlite:///{tmp_path / 'i.db'}", "--month", "11/2026"])
    assert result.exit_code == 2
    assert "YYYY-MM" in result.output


def test_stats_reads_the_database_from_the_settings_file(runner: CliRunner, filled_db: str, tmp_path: Path) -> None:
    config = tmp_path / "borne.toml"
    config.write_text(f'[ingest]\ndb = "{filled_db}"\n', encoding="utf-8")
    result = runner.invoke(cli, ["ingest", "stats", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["indicators"]) == 3


def test_dead_letters_are_listed_newest_first(runner: CliRunner, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ingest.db'}"
    with open_store(db) as store:
        store.add_dead_letter(DeadLetter("borne/v1/a/b/batch", b"first", "payload is not JSON"))
        store.add_dead_letter(DeadLetter("borne/v1/a/b/batch", b"\xffsecond", "payload is not UTF-8"))
    result = runner.invoke(cli, ["ingest", "dead-letters", "--db", db, "--json"])
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.output.splitlines()]
    assert [entry["reason"] for entry in entries] == ["payload is not UTF-8", "payload is not JSON"]
    assert entries[0]["payload"] == "\ufffdsecond"


def test_an_unknown_database_url_is_a_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["ingest", "stats", "--db", "mysql://x/y"])
    assert result.exit_code == 1
    assert "expected sqlite:////absolute/path.db or postgresql://" in result.output


def test_run_with_missing_certificates_names_the_setting(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "borne.toml"
    config.write_text(f'[ingest]\ntls_ca = "{tmp_path / "missing-ca.crt"}"\n', encoding="utf-8")
    result = runner.invoke(cli, ["ingest", "run", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'i.db'}"])
    assert result.exit_code == 1
    assert "[ingest] tls_ca" in result.output


def test_run_with_a_bad_sites_file_names_the_setting(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "borne.toml"
    sites = write_sites(tmp_path, "nope\n")
    config.write_text(f'[ingest]\nsites_file = "{sites}"\n', encoding="utf-8")
    result = runner.invoke(cli, ["ingest", "run", "--config", str(config)])
    assert result.exit_code == 1
    assert "[ingest] sites_file" in result.output


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("broker.example", ("broker.example", None)),
        ("broker.example:1883", ("broker.example", 1883)),
        ("[::1]:8883", ("::1", 8883)),
    ],
)
def test_broker_option(argument: str, expected: tuple[str, int | None]) -> None:
    from platform_ingest.ingest.cli import _split_broker

    assert _split_broker(argument) == expected


def test_purge_dead_letters_deletes_those_past_the_retention(runner: CliRunner, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    db = f"sqlite:///{tmp_path / 'ingest.db'}"
    now = datetime.now(UTC)
    with open_store(db) as store:
        store.add_dead_letter(DeadLetter("t", b"old", "bad"), received=now - timedelta(days=31))
        store.add_dead_letter(DeadLetter("t", b"young", "bad"), received=now - timedelta(days=2))
    result = runner.invoke(cli, ["ingest", "purge-dead-letters", "--db", db])  # the default: 30 days
    assert result.exit_code == 0, result.output
    assert result.output.startswith("deleted 1 dead letter(s) received before ")
    result = runner.invoke(cli, ["ingest", "purge-dead-letters", "--db", db, "--older-than-days", "1"])
    assert result.output.startswith("deleted 1 dead letter(s)")
    with open_store(db) as store:
        assert store.dead_letters() == []
