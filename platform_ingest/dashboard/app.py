"""The dashboard's Starlette application: pages in French, rendered on the server (Jinja2), one stylesheet served
by the app, sessions in signed cookies, a CSRF token on every form, logins limited per account and address.

The store is used from one thread, as it expects: every query runs on the application's single store thread.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import secrets
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from platform_ingest.dashboard import exports, figures
from platform_ingest.dashboard.accounts import AccountError, Role, dummy_verify, parse_role, verify_password
from platform_ingest.dashboard.geography import CODE_OF_REGION, REGION_CODES, departments_of
from platform_ingest.dashboard.settings import DashboardSection
from platform_ingest.dashboard.throttle import LoginThrottle
from platform_ingest.departments import DEPARTMENTS, UNKNOWN
from platform_ingest.fleet.status import TerminalRow, fleet_rows
from platform_ingest.settings import FleetSection
from platform_ingest.store import GroupBy, Indicator, Site, Store, StoreError, iso_month, open_store

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.requests import Request
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
    from starlette.templating import Jinja2Templates
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as error:  # pragma: no cover - depends on the installation
    raise RuntimeError("the dashboard requires starlette and jinja2: pip install 'borne[dashboard]'") from error

logger = logging.getLogger(__name__)
HERE = Path(__file__).parent
SESSION_COOKIE = "borne_session"
T = TypeVar("T")

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


COMPONENT_STATES = {"missing": "absent", "failed": "en panne", "loading": "en chargement", "unknown": "inconnu"}


def _alerts_fr(row: TerminalRow, settings: FleetSection) -> list[str]:
    """The terminal's alerts in French, one sentence each."""
    status, sentences = row.status, []
    for alert in row.alerts:
        if alert.kind == "silent":
            hours = (
                "horaires par défaut du parc"
                if row.hours.config_version is None
                else f"horaires de la configuration {row.hours.config_version}"
            )
            sentences.append(
                f"Silencieuse : aucun statut depuis plus de {settings.silent_after_h:g} h d'ouverture ({hours})"
                + (", hors ligne" if status.state == "offline" else "")
            )
        elif alert.kind == "microphone":
            sentences.append(f"Micro {COMPONENT_STATES.get(status.microphone, status.microphone)}")
        elif alert.kind == "model":
            sentences.append(f"Reconnaissance vocale {COMPONENT_STATES.get(status.model, status.model)}")
        elif alert.kind == "backlog":
            sentences.append(f"Avis en attente d'accusé de réception depuis plus de {settings.backlog_after_h:g} h")
        elif alert.kind == "config":
            running = f"la version {status.config_version}" if status.config_version else "ses réglages locaux"
            sentences.append(f"Configuration {status.config_sent} envoyée, la borne applique {running}")
        else:
            sentences.append(alert.message)
    return sentences


def _sort_key(name: str) -> str:
    """`name` without accents, for alphabetical order (Île-de-France among the I)."""
    return unicodedata.normalize("NFD", name).encode("ascii", "ignore").decode().casefold()


class DashboardError(Exception):
    """The dashboard cannot start; the message says what to fix."""


def cookie_secret(path: Path) -> str:
    """The key in `path`, created (32 random bytes, hex, mode 0600) if the file does not exist."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cookie_secret(path)
        except OSError as error:
            raise DashboardError(
                f"cannot create the cookie secret {path} ({error.strerror}); create it or set [dashboard] "
                "cookie_secret_file to a writable place"
            ) from None
        text = secrets.token_hex(32)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(text + "\n")
        logger.info("created the cookie secret %s", path)
    except (OSError, UnicodeDecodeError) as error:
        raise DashboardError(f"cannot read the cookie secret {path} ({error}); check its owner and mode") from None
    if len(text) < 32:
        raise DashboardError(
            f"the cookie secret {path} is too short ({len(text)} characters, at least 32); delete it to have a "
            "new one made"
        )
    return text


class StoreThread:
    """Runs store calls on one thread of its own (the store is used from one thread), opening it on first use."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._store: Store | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-store")

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_store(self._url)
        return self._store

    async def run(self, function: Callable[[Store], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(self._open()))

    def close(self) -> None:
        def close() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        self._executor.submit(close).result()
        self._executor.shutdown()


class SecurityHeaders:
    """Adds a strict Content-Security-Policy (only the app's own assets) and related headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True)
class Reference:
    """The figure a page's figures are compared with: its name, over the page's period, and per month."""

    label: str
    figure: figures.Figure
    months: dict[str, figures.Figure]


@dataclass(frozen=True)
class Account:
    name: str
    role: Role


def create_app(
    section: DashboardSection,
    db_url: str,
    *,
    clock: Callable[[], float] = time.monotonic,
    fleet: FleetSection | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The dashboard on the store `db_url`, with the `[dashboard]` settings `section` (and `[fleet]`'s alerts)."""
    fleet_settings = fleet or FleetSection()
    secret = cookie_secret(section.cookie_secret_file)
    stores = StoreThread(db_url)
    throttle = LoginThrottle(
        section.login_window_s, section.login_failures_per_account, section.login_failures_per_address
    )
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(percent=figures.percent, difference=figures.difference, count=figures.count)
    templates.env.globals.update(min_ratings=figures.MIN_RATINGS, chart_width=figures.CHART_WIDTH)
    templates.env.globals.update(chart_height=figures.CHART_HEIGHT, chart_bottom=figures.CHART_BOTTOM)

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
        context = {"csrf_token": csrf_token(request), "account": request.scope.get("account"), **context}
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    async def check_csrf(request: Request) -> dict[str, str]:
        form = await request.form()
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        expected = request.session.get("csrf")
        given = values.get("csrf_token", "")
        if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), given.encode()):
            raise HTTPException(403, "Jeton de sécurité (CSRF) absent ou périmé : rechargez la page et recommencez.")
        return values

    async def account(request: Request) -> Account | None:
        name = request.session.get("user")
        if not isinstance(name, str):
            return None
        user = await stores.run(lambda store: store.dashboard_user(name))
        if user is None:  # the account was removed: the session ends
            request.session.clear()
            return None
        try:
            role = parse_role(user.role)
        except AccountError:
            logger.error("dashboard account %s has an unreadable role %r; recreate it", name, user.role)
            return None
        found = Account(user.name, role)
        request.scope["account"] = found
        return found

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/connexion?{urlencode({'suite': target})}", status_code=303)

    def month_filter(request: Request) -> str | None:
        month = request.query_params.get("mois") or None
        if month is None:
            return None
        try:
            return iso_month(month)
        except ValueError:
            raise HTTPException(400, f"Mois {month!r} invalide : attendu AAAA-MM, par exemple 2026-11.") from None

    async def indicators(by: GroupBy, month: str | None = None) -> list[Indicator]:
        return await stores.run(lambda store: store.indicators(by, month))

    async def reference(role: Role, month: str | None) -> Reference | None:
        """What figures are compared with: the country for a national account, its region for a regional one."""
        if role.kind == "site":
            return None
        rows = await indicators("region")
        label = "national"
        if role.kind == "region":
            name = REGION_CODES[role.code]
            rows = [row for row in rows if row.group == name]
            label = f"région {name}"
        selected = [row for row in rows if month is None or row.month == month]
        monthly = {row.key: row.figure for row in figures.by_month(rows)}
        return Reference(label, figures.figure_of(selected), monthly)

    def page(
        request: Request,
        *,
        title: str,
        crumbs: Sequence[tuple[str, str]],
        headline: figures.Figure,
        trend: list[figures.Row],
        groups: list[figures.Row],
        group_title: str,
        month: str | None,
        compared: Reference | None,
        months: list[str],
        own_label: str = "",
    ) -> Response:
        return render(
            request,
            "overview.html",
            {
                "title": title,
                "crumbs": crumbs,
                "headline": headline,
                "trend": trend,
                "bars": figures.chart(trend),
                "groups": groups,
                "group_title": group_title,
                "month": month,
                "month_label": figures.month_label(month) if month else "toutes périodes",
                "months": [(value, figures.month_label(value)) for value in reversed(months)],
                "compared": compared,
                "rows_against": compared or Reference(own_label, headline, {}),
            },
        )

    async def national(request: Request) -> Response:
        who = await account(request)
        if who is None:
            return to_login(request)
        if who.role.kind != "national":
            return RedirectResponse(who.role.home(), status_code=303)
        month = month_filter(request)
        every = await indicators("region")
        selected = [row for row in every if month is None or row.month == month]
        per_region = figures.by_group(selected)
        groups = [
            figures.Row(code, name, per_region.get(name, figures.Figure()), f"/region/{code}")
            for code, name in sorted(REGION_CODES.items(), key=lambda item: _sort_key(item[1]))
        ]
        if UNKNOWN in per_region:
            groups.append(figures.Row(UNKNOWN, "Sites absents de l'annuaire", per_region[UNKNOWN]))
        return page(
            request,
            title="France entière",
            crumbs=[],
            headline=figures.figure_of(selected),
            trend=figures.by_month(every),
            groups=groups,
            group_title="Par région",
            month=month,
            compared=None,
            own_label="national",
            months=sorted({row.month for row in every}),
        )

    async def region(request: Request) -> Response:
        who = await account(request)
        if who is None:
            return to_login(request)
        code = request.path_params["code"]
        if code not in REGION_CODES:
            raise HTTPException(404, f"Aucune région n'a le code {code!r}.")
        if not who.role.sees_region(code):
            raise HTTPException(403, "Cette région n'est pas dans le périmètre de votre compte.")
        month = month_filter(request)
        members = departments_of(code)
        every = [row for row in await indicators("department") if row.group in members]
        selected = [row for row in every if month is None or row.month == month]
        per_department = figures.by_group(selected)
        groups = [
            figures.Row(
                department,
                f"{DEPARTMENTS[department].name} ({department})",
                per_department.get(department, figures.Figure()),
                f"/departement/{department}",
            )
            for department in members
        ]
        return page(
            request,
            title=REGION_CODES[code],
            crumbs=[("France entière", "/")] if who.role.kind == "national" else [],
            headline=figures.figure_of(selected),
            trend=figures.by_month(every),
            groups=groups,
            group_title="Par département",
            month=month,
            compared=await reference(who.role, month) if who.role.kind == "national" else None,
            own_label=f"région {REGION_CODES[code]}",
            months=sorted({row.month for row in every}),
        )

    async def directory() -> dict[str, Site]:
        return {site.site_id: site for site in await stores.run(lambda store: store.sites())}

    async def department(request: Request) -> Response:
        who = await account(request)
        if who is None:
            return to_login(request)
        code = request.path_params["code"]
        if code not in DEPARTMENTS:
            raise HTTPException(404, f"Aucun département n'a le code {code!r}.")
        if not who.role.sees_department(code):
            raise HTTPException(403, "Ce département n'est pas dans le périmètre de votre compte.")
        month = month_filter(request)
        sites = {site_id: site for site_id, site in (await directory()).items() if site.department == code}
        every = await stores.run(lambda store: store.site_indicators(sites, None))
        selected = [row for row in every if month is None or row.month == month]
        per_site = figures.by_group(selected)
        groups = [
            figures.Row(site_id, site.name, per_site.get(site_id, figures.Figure()), f"/site/{quote(site_id)}")
            for site_id, site in sorted(sites.items(), key=lambda item: _sort_key(item[1].name))
        ]
        info = DEPARTMENTS[code]
        region_code = CODE_OF_REGION[info.region]
        crumbs = [("France entière", "/")] if who.role.kind == "national" else []
        return page(
            request,
            title=f"{info.name} ({code})",
            crumbs=[*crumbs, (info.region, f"/region/{region_code}")],
            headline=figures.figure_of(selected),
            trend=figures.by_month(every),
            groups=groups,
            group_title="Par site",
            month=month,
            compared=await reference(who.role, month),
            months=sorted({row.month for row in every}),
        )

    async def site(request: Request) -> Response:
        who = await account(request)
        if who is None:
            return to_login(request)
        site_id = request.path_params["site_id"]
        known = (await directory()).get(site_id)
        if not who.role.sees_site(site_id, known.department if known else None):
            raise HTTPException(403, "Ce site n'est pas dans le périmètre de votre compte.")
        month = month_filter(request)
        every = await stores.run(lambda store: store.site_indicators([site_id], None))
        if known is None and not every and who.role.kind == "national":
            raise HTTPException(404, f"Aucun site {site_id!r} : ni dans l'annuaire, ni dans les avis reçus.")
        selected = [row for row in every if month is None or row.month == month]
        crumbs: list[tuple[str, str]] = []
        if known is not None and who.role.kind != "site":
            info = DEPARTMENTS[known.department]
            if who.role.kind == "national":
                crumbs.append(("France entière", "/"))
            crumbs.append((info.region, f"/region/{CODE_OF_REGION[info.region]}"))
            crumbs.append((f"{info.name} ({known.department})", f"/departement/{known.department}"))
        return page(
            request,
            title=known.name if known else site_id,
            crumbs=crumbs,
            headline=figures.figure_of(selected),
            trend=figures.by_month(every),
            groups=[],
            group_title="",
            month=month,
            compared=await reference(who.role, month),
            months=sorted({row.month for row in every}),
        )

    async def comments(request: Request) -> Response:
        who = await account(request)
        if who is None:
            return to_login(request)
        month = month_filter(request)
        rating_text = request.query_params.get("note") or ""
        if rating_text not in ("", "1", "2", "3", "4"):
            raise HTTPException(400, f"Note {rating_text!r} invalide : attendu 1, 2, 3 ou 4.")
        rating = int(rating_text) if rating_text else None
        search = (request.query_params.get("q") or "").strip()[:200]
        try:
            number = max(1, int(request.query_params.get("page") or "1"))
        except ValueError:
            raise HTTPException(400, "Numéro de page invalide : attendu un entier à partir de 1.") from None
        size = section.comments_per_page
        role = who.role
        found, total = await stores.run(
            lambda store: store.comments(
                departments=role.departments,
                site_id=role.code if role.kind == "site" else None,
                month=month,
                rating=rating,
                search=search or None,
                limit=size,
                offset=(number - 1) * size,
            )
        )
        pages = max(1, -(-total // size))
        base = {key: value for key, value in (("mois", month), ("note", rating_text), ("q", search)) if value}
        return render(
            request,
            "comments.html",
            {
                "title": "Commentaires",
                "comments": [(comment, figures.month_label(comment.month)) for comment in found],
                "total": total,
                "page": number,
                "pages": pages,
                "previous": f"?{urlencode({**base, 'page': number - 1})}" if number > 1 else None,
                "next": f"?{urlencode({**base, 'page': number + 1})}" if number < pages else None,
                "month": month or "",
                "rating": rating_text,
                "search": search,
            },
        )

    async def terminals(request: Request) -> Response:
        who = await account(request)
        if who is None:
            return to_login(request)
        statuses, published = await stores.run(lambda store: (store.terminals(), store.latest_device_configs()))
        mine = [status for status in statuses if who.role.sees_site(status.site_id, status.department)]
        rows = fleet_rows(mine, now(), fleet_settings, published)
        return render(
            request,
            "fleet.html",
            {
                "title": "Parc des bornes",
                "rows": [(row, _alerts_fr(row, fleet_settings)) for row in rows],
                "online": sum(1 for row in rows if row.status.state == "online"),
                "alerted": sum(1 for row in rows if row.alerts),
            },
        )

    async def exports_page(request: Request) -> Response:
        who = await account(request)
        if who is None:
            return to_login(request)
        role = who.role
        months = await stores.run(lambda store: exports.export_months(store, role))
        if role.kind == "national":
            scope = "France entière : chaque région, département et site"
        elif role.kind == "region":
            scope = f"région {REGION_CODES[role.code]} : la région, ses départements et leurs sites"
        else:
            scope = f"le site {role.code}"
        return render(
            request,
            "exports.html",
            {
                "title": "Exports",
                "scope": scope,
                "months": [(month, figures.month_label(month)) for month in months],
                "licence": exports.LICENCE,
            },
        )

    def download(body: bytes, media_type: str, filename: str) -> Response:
        return Response(
            body,
            media_type=media_type,
            headers={"content-disposition": f'attachment; filename="{filename}"', "cache-control": "no-store"},
        )

    async def indicators_csv(request: Request) -> Response:
        who = await account(request)
        if who is None:
            return to_login(request)
        role, month = who.role, month_filter(request)
        body = await stores.run(lambda store: exports.indicators_csv(exports.indicator_rows(store, role, month)))
        return download(body, "text/csv; charset=utf-8", exports.csv_filename(role, month))

    async def opendata(request: Request) -> Response:
        who = await account(request)
        if who is None:
            return to_login(request)
        text = request.path_params["month"]
        try:
            month = iso_month(text)
        except ValueError:
            month = ""
        if month != text:
            raise HTTPException(400, f"Mois {text!r} invalide : attendu AAAA-MM, par exemple 2026-11.")
        role, generated = who.role, now()
        body = await stores.run(lambda store: exports.opendata_json(exports.opendata(store, role, month, generated)))
        return download(body, "application/json", exports.opendata_filename(role, month))

    async def login_form(request: Request) -> Response:
        return render(request, "login.html", {"title": "Connexion", "suite": safe_target(request), "error": None})

    def safe_target(request: Request, value: str | None = None) -> str:
        target = value if value is not None else request.query_params.get("suite", "")
        return target if target.startswith("/") and not target.startswith(("//", "/\\")) else ""

    async def login(request: Request) -> Response:
        values = await check_csrf(request)
        name = values.get("nom", "").strip()[:64]
        password = values.get("mot_de_passe", "")[:1024]
        address = request.client.host if request.client else "unknown"
        suite = safe_target(request, values.get("suite", ""))
        now = clock()
        wait = throttle.wait_s(name, address, now)
        if wait > 0:
            minutes = max(1, round(wait / 60))
            logger.warning("login refused (too many failures) for %r from %s", name, address)
            return render(
                request,
                "login.html",
                {
                    "title": "Connexion",
                    "suite": suite,
                    "error": f"Trop de tentatives échouées : réessayez dans {minutes} minute(s).",
                },
                status_code=429,
            )
        user = await stores.run(lambda store: store.dashboard_user(name)) if name else None
        if user is None:
            dummy_verify(password)
        if user is None or not verify_password(user.password_hash, password):
            throttle.failed(name, address, now)
            logger.warning("failed dashboard login for %r from %s", name, address)
            return render(
                request,
                "login.html",
                {"title": "Connexion", "suite": suite, "error": "Nom ou mot de passe incorrect."},
                status_code=401,
            )
        request.session.clear()  # a new session for the new login (no fixation)
        request.session["user"] = user.name
        request.session["csrf"] = secrets.token_urlsafe(32)
        logger.info("dashboard login of %s from %s", user.name, address)
        home = parse_role(user.role).home()
        return RedirectResponse(suite or home, status_code=303)

    async def logout(request: Request) -> Response:
        await check_csrf(request)
        request.session.clear()
        return RedirectResponse("/connexion", status_code=303)

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):  # registered for HTTPException only
            raise exc
        titles = {400: "Requête invalide", 403: "Accès refusé", 404: "Page introuvable", 405: "Méthode non permise"}
        if "account" not in request.scope and "session" in request.scope:
            await account(request)
        return render(
            request,
            "error.html",
            {"title": titles.get(exc.status_code, "Erreur"), "message": exc.detail, "status": exc.status_code},
            status_code=exc.status_code,
        )

    async def store_error(request: Request, exc: Exception) -> Response:
        logger.error("dashboard: the store failed on %s: %s", request.url.path, exc)
        return render(
            request,
            "error.html",
            {
                "title": "Service indisponible",
                "message": "La base de données des avis ne répond pas : réessayez dans un moment. "
                "L'exploitant trouvera la cause dans le journal du tableau de bord.",
                "status": 503,
            },
            status_code=503,
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            stores.close()

    routes = [
        Route("/", national),
        Route("/region/{code}", region),
        Route("/departement/{code}", department),
        Route("/site/{site_id}", site),
        Route("/commentaires", comments),
        Route("/parc", terminals),
        Route("/exports", exports_page),
        Route("/export/indicateurs.csv", indicators_csv),
        Route("/export/opendata/{month}.json", opendata),
        Route("/connexion", login_form, methods=["GET"]),
        Route("/connexion", login, methods=["POST"]),
        Route("/deconnexion", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie=SESSION_COOKIE,
            max_age=round(section.session_hours * 3600),
            same_site="strict",
            https_only=section.secure_cookie,
        ),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: http_error, StoreError: store_error},
        lifespan=lifespan,
    )
    app.state.stores = stores
    app.state.throttle = throttle
    return app
