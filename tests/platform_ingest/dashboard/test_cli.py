"""`borne dashboard user add|list|remove`, and `borne dashboard run` as a real uvicorn process."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from borne_cli.main import cli
from platform_ingest.dashboard.accounts import verify_password
from platform_ingest.store import open_store
from tests.platform_ingest.dashboard.conftest import PASSWORD
from tests.platform_ingest.dashboard.server import dashboard_server


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_user_add_reads_the_password_from_stdin_and_stores_only_its_hash(runner: CliRunner, db_url: str) -> None:
    result = runner.invoke(
        cli,
        ["dashboard", "user", "add", "bzh", "--role", "region:53", "--db", db_url, "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "account bzh (region:53) saved" in result.output
    with open_store(db_url) as store:
        user = store.dashboard_user("bzh")
    assert user is not None and user.role == "region:53" and verify_password(user.password_hash, PASSWORD)
    listed = runner.invoke(cli, ["dashboard", "user", "list", "--db", db_url])
    assert re.fullmatch(r"bzh\tregion:53\t\d{4}-\d\d-\d\d\n", listed.output)
    assert runner.invoke(cli, ["dashboard", "user", "remove", "bzh", "--db", db_url]).exit_code == 0
    again = runner.invoke(cli, ["dashboard", "user", "remove", "bzh", "--db", db_url])
    assert again.exit_code == 1 and "no account named 'bzh'" in again.output


def test_user_add_asks_the_password_twice(runner: CliRunner, sqlite_url: str) -> None:
    mismatch = runner.invoke(
        cli,
        ["dashboard", "user", "add", "nat", "--role", "national", "--db", sqlite_url],
        input=f"{PASSWORD}\n{PASSWORD}x\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert mismatch.exit_code == 0, mismatch.output
    assert "do not match" in mismatch.output


def test_user_add_names_a_bad_role_or_a_short_password(runner: CliRunner, sqlite_url: str) -> None:
    bad = runner.invoke(cli, ["dashboard", "user", "add", "x", "--role", "region:99", "--db", sqlite_url])
    assert bad.exit_code == 2 and "unknown region code '99'" in bad.output
    short = runner.invoke(
        cli,
        ["dashboard", "user", "add", "x", "--role", "national", "--db", sqlite_url, "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.output


def test_a_dashboard_section_with_an_unknown_key_is_named(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "borne.toml"
    config.write_text("[dashboard]\nprot = 8000\n", encoding="utf-8")
    result = runner.invoke(cli, ["dashboard", "user", "list", "--config", str(config)])
    assert result.exit_code == 1 and "dashboard.prot" in result.output and "unknown key" in result.output


@pytest.mark.slow
def test_borne_dashboard_run_serves_the_pages_over_http(runner: CliRunner, db_url: str, tmp_path: Path) -> None:
    runner.invoke(
        cli,
        ["dashboard", "user", "add", "nat", "--role", "national", "--db", db_url, "--password-stdin"],
        input=PASSWORD + "\n",
    )
    with dashboard_server(db_url, tmp_path) as base, httpx.Client(base_url=base, follow_redirects=True) as http:
        form = http.get("/connexion")
        assert form.status_code == 200 and "server" not in form.headers
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        response = http.post("/connexion", data={"nom": "nat", "mot_de_passe": PASSWORD, "csrf_token": token[1]})
        assert response.status_code == 200 and "<h1>France entière</h1>" in response.text
        assert http.get("/static/dashboard.css").status_code == 200
    secret = tmp_path / "cookie-secret"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text().strip()) == 64


@pytest.mark.slow
def test_behind_a_trusted_proxy_logins_are_limited_per_forwarded_address(sqlite_url: str, tmp_path: Path) -> None:
    with dashboard_server(
        sqlite_url, tmp_path, "login_failures_per_address = 2", 'trusted_proxies = "127.0.0.1"'
    ) as base:

        def attempt(address: str, name: str) -> int:
            with httpx.Client(base_url=base, headers={"X-Forwarded-For": address}) as http:
                form = http.get("/connexion")
                token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
                assert token is not None
                data = {"nom": name, "mot_de_passe": "wrong password", "csrf_token": token[1]}
                return http.post("/connexion", data=data).status_code

        assert [attempt("203.0.113.7", name) for name in ("a", "b", "c")] == [401, 401, 429]
        assert attempt("198.51.100.2", "d") == 401  # another citizen behind the same proxy is not blocked
