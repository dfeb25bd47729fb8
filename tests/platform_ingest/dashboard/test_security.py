"""Sessions, CSRF, login limits: what an attacker would try, refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from starlette.testclient import TestClient

from platform_ingest.dashboard.app import SESSION_COOKIE
from platform_ingest.dashboard.throttle import LoginThrottle
from tests.platform_ingest.dashboard.conftest import PASSWORD, csrf, login


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_login_without_the_form_s_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/connexion")  # a session with a token exists, but the post does not carry it
    for data in (
        {"nom": "nat", "mot_de_passe": PASSWORD},
        {"nom": "nat", "mot_de_passe": PASSWORD, "csrf_token": "forged"},
    ):
        response = client.post("/connexion", data=data, follow_redirects=False)
        assert response.status_code == 403
        assert "CSRF" in response.text
    assert client.get("/", follow_redirects=False).status_code == 303  # still not logged in


def test_a_token_from_another_session_is_refused(make_client: Callable[..., TestClient]) -> None:
    attacker, victim = make_client(), make_client()
    token = csrf(attacker)
    victim.get("/connexion")
    response = victim.post(
        "/connexion", data={"nom": "nat", "mot_de_passe": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 403


def test_logout_needs_the_token_and_ends_the_session(client: TestClient) -> None:
    login(client, "nat")
    assert client.get("/").status_code == 200
    assert client.post("/deconnexion", data={}, follow_redirects=False).status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200  # the forged logout did nothing
    token = csrf(client, "/")
    response = client.post("/deconnexion", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/connexion"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_session_cookie_is_signed_httponly_strict_and_renewed_at_login(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    client.get("/connexion")
    before = client.cookies[SESSION_COOKIE]
    response = login(client, "nat")
    header = response.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "httponly" in header.lower() and "samesite=strict" in header.lower()
    assert "secure" not in header.lower().replace("samesite", "")
    after = client.cookies[SESSION_COOKIE]
    assert after != before
    # a cookie altered by hand is not a session
    _, _, signature = after.partition(".")  # keep the signature, change what it signed
    forged = base64.b64encode(json.dumps({"user": "nat", "csrf": "x"}).encode()).decode()
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, f"{forged}.{signature}")
    assert client.get("/", follow_redirects=False).status_code == 303

    behind_tls = make_client(secure_cookie=True)
    behind_tls.base_url = behind_tls.base_url.copy_with(scheme="https")
    header = login(behind_tls, "nat").headers["set-cookie"]  # type: ignore[attr-defined]
    assert "; secure" in header.lower()


def test_the_page_to_come_back_to_stays_on_this_site(client: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        assert login(client, "nat", suite=target).headers["location"] == "/"  # type: ignore[attr-defined]
    assert login(client, "nat", suite="/region/53?mois=2026-11").headers["location"] == "/region/53?mois=2026-11"  # type: ignore[attr-defined]


def test_logins_are_limited_per_account_even_with_the_right_password(make_client: Callable[..., TestClient]) -> None:
    clock = Clock()
    client = make_client(clock=clock, login_failures_per_account=3, login_window_s=600)
    for _ in range(3):
        assert login(client, "nat", "wrong password!").status_code == 401  # type: ignore[attr-defined]
    refused = login(client, "nat")
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert "Trop de tentatives échouées : réessayez dans 10 minute(s)." in refused.text  # type: ignore[attr-defined]
    assert login(client, "bzh").status_code == 303  # type: ignore[attr-defined]  # another account is not blocked
    clock.now += 601
    assert login(client, "nat").status_code == 303  # type: ignore[attr-defined]


def test_logins_are_limited_per_address_across_account_names(make_client: Callable[..., TestClient]) -> None:
    clock = Clock()
    client = make_client(clock=clock, login_failures_per_account=100, login_failures_per_address=4)
    for name in ("a1", "a2", "a3", "a4"):
        assert login(client, name, "guess guess guess").status_code == 401  # type: ignore[attr-defined]
    assert login(client, "nat").status_code == 429  # type: ignore[attr-defined]


def test_the_throttle_forgets_failures_that_left_the_window() -> None:
    throttle = LoginThrottle(window_s=60, per_account=2, per_address=100, max_keys=10)
    throttle.failed("Nat", "10.0.0.1", 0)
    throttle.failed("nat", "10.0.0.2", 30)
    assert throttle.wait_s("NAT", "10.0.0.3", 31) == 29  # the first failure leaves the window at 60
    assert throttle.wait_s("nat", "10.0.0.3", 60) == 0
    for number in range(20):
        throttle.failed(f"made-up-{number}", "10.0.0.9", 100 + number * 10)
    assert len(throttle) <= 10 + 2
