"""`borne bench dashboard`: the national page and a département page of `borne dashboard run` (uvicorn, the real
app, logged in with a national account) over a PostgreSQL store of M synthetic records.

The records are made by the server (`INSERT … SELECT … FROM generate_series`, indexes built afterwards) over the
2,750 sites of a synthetic directory and 24 months; then the store is opened as a version-2 store, so that
the schema 3 migration fills `site_month` from them, as an upgrade would. Each page is fetched N times (after
two warm-up fetches) by one client: p50, p95 and max of the time to the whole response.

The alternative, on the same database in the same run: the same app whose `Store.indicators` runs the query
it ran before `site_month` (one GROUP BY over every record joined with the sites) and whose département page
filters every site's indicators, as it did; fetched fewer times (`--scan-requests`) because each fetch scans
the whole table.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from bench.network import DEFAULT_POSTGRES_URL, fresh_schema, synthetic_sites
from bench.results_file import machine, out_option

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT, PASSWORD = "bench-national", "bench-national-password"
DEPARTMENT = "35"
PAGES = {"national": "/", "département": f"/departement/{DEPARTMENT}"}
QUICK = {"records": 20_000, "requests": 5, "scan_requests": 3}
MODES = {"site_month": "site_month (shipped)", "scan": "scan of records"}

# The query Store.indicators ran before site_month (schema version 2), kept here for the comparison.
SCAN_QUERY = (
    "SELECT {key} AS grp, r.month, COUNT(*), SUM(CASE WHEN r.rating >= 3 THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN r.comment_text IS NOT NULL THEN 1 ELSE 0 END), SUM(CASE WHEN r.burst THEN 1 ELSE 0 END) "
    "FROM records r LEFT JOIN sites s ON s.site_id = r.site_id {where} GROUP BY grp, r.month ORDER BY grp, r.month"
)


@dataclass
class Timing:
    mode: str
    page: str
    path: str
    records: int
    requests: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    bytes: int
    digest: str
    """SHA-256 of the last page fetched, its CSRF token blanked: both ways must draw the same page."""


@dataclass
class Fill:
    records: int
    insert_s: float
    indexes_s: float
    migration_s: float
    counted: int
    """Records counted in site_month after the migration."""


def fill(db: str, records: int, months: int) -> Fill:
    """`records` records over the synthetic sites (one terminal each) and `months` months from January 2025, made
    by the server; then site_month filled by the schema 3 migration."""
    import psycopg

    from platform_ingest.store import open_store

    sites = [site.site_id for site in synthetic_sites()]
    with open_store(db) as store:
        store.upsert_sites(synthetic_sites())
    with psycopg.connect(db, autocommit=True) as connection:
        connection.execute("ALTER TABLE records DROP CONSTRAINT records_pkey")
        connection.execute("DROP INDEX records_month_site")
        started = time.perf_counter()
        step = 1_000_000
        for first in range(0, records, step):
            # g walks the sites, then the months: every site has records in every month. Ratings 1 to 4 in
            # proportions 1:1:3:5, a comment on one record in 5, a burst flag on one in 50.
            connection.execute(
                """
                INSERT INTO records (device_id, record_id, site_id, period, month, rating, answers, comment_text,
                    comment_language, comment_asr_model, comment_confidence, comment_redactions, flags, burst,
                    ui_language, app_version, schema_version, received_hour)
                SELECT 'bench-' || site, md5('bench' || g)::uuid, site,
                    period, to_char(period AT TIME ZONE 'Europe/Paris', 'YYYY-MM'),
                    CASE WHEN g %% 10 < 1 THEN 1 WHEN g %% 10 < 2 THEN 2 WHEN g %% 10 < 5 THEN 3 ELSE 4 END,
                    '{}'::jsonb,
                    CASE WHEN g %% 5 = 0 THEN 'Accueil rapide, merci.' END,
                    CASE WHEN g %% 5 = 0 THEN 'fr' END, CASE WHEN g %% 5 = 0 THEN 'whisper-base' END,
                    CASE WHEN g %% 5 = 0 THEN 0.8 END, CASE WHEN g %% 5 = 0 THEN '{}'::jsonb END,
                    CASE WHEN g %% 50 = 0 THEN '["burst_suspected"]'::jsonb ELSE '[]'::jsonb END, g %% 50 = 0,
                    'fr', '0.9.0', 1, now()
                FROM (
                    SELECT g, (%(sites)s::text[])[1 + (g %% %(count)s)::int] AS site,
                        timestamptz '2025-01-06 10:00:00+01' + ((g / %(count)s) %% %(months)s) * interval '1 month'
                            + (g %% 20) * interval '1 day' AS period
                    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
                ) AS made
                """,
                {
                    "sites": sites,
                    "count": len(sites),
                    "months": months,
                    "first": first,
                    "last": min(records, first + step) - 1,
                },
            )
        inserted = time.perf_counter()
        connection.execute("ALTER TABLE records ADD PRIMARY KEY (device_id, record_id)")
        connection.execute("CREATE INDEX records_month_site ON records (month, site_id)")
        indexed = time.perf_counter()
        # What a version-2 store holding these records is: the same tables without site_month.
        connection.execute("DROP TABLE site_month")
        connection.execute("UPDATE ingest_meta SET value = '2' WHERE key = 'schema_version'")
    started_migration = time.perf_counter()
    with open_store(db):
        pass
    migrated = time.perf_counter()
    with psycopg.connect(db, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE records")
        connection.execute("VACUUM ANALYZE site_month")
        row = connection.execute("SELECT COALESCE(SUM(records), 0) FROM site_month").fetchone()
    return Fill(
        records=records,
        insert_s=inserted - started,
        indexes_s=indexed - inserted,
        migration_s=migrated - started_migration,
        counted=int(row[0]) if row else 0,
    )


class Server:
    """`borne dashboard run` (or, for the scan, the same app served by this module) on a free port."""

    def __init__(self, directory: Path, db: str, mode: str) -> None:
        from provisioning.local_broker import free_port

        self.port = free_port()
        config = directory / "borne.toml"
        config.write_text(f'[dashboard]\ncookie_secret_file = "{directory / "cookie-secret"}"\n', encoding="utf-8")
        self.log = directory / f"dashboard-{mode}.log"
        if mode == "site_month":
            command = [sys.executable, "-m", "borne_cli", "dashboard", "run", "--config", str(config), "--db", db]
            command += ["--port", str(self.port)]
        else:
            command = [sys.executable, "-m", "bench.dashboard", str(config), db, str(self.port)]
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=output, stderr=output
            )
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.base}/connexion", timeout=1)
                return self
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise click.ClickException(f"the dashboard did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def time_pages(base: str, mode: str, records: int, requests: int) -> list[Timing]:
    """Log in as the national account, then fetch each page twice to warm up and `requests` times timed."""
    import httpx

    timings = []
    with httpx.Client(base_url=base, follow_redirects=True, timeout=600) as http:
        form = http.get("/connexion")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        if token is None:
            raise click.ClickException("the login page has no CSRF token")
        response = http.post("/connexion", data={"nom": ACCOUNT, "mot_de_passe": PASSWORD, "csrf_token": token[1]})
        if "<h1>France entière</h1>" not in response.text:
            raise click.ClickException(f"could not log in as {ACCOUNT} (status {response.status_code})")
        for page, path in PAGES.items():
            for _ in range(2):
                http.get(path).raise_for_status()
            seconds = []
            body = b""
            for _ in range(requests):
                started = time.perf_counter()
                response = http.get(path)
                response.raise_for_status()
                seconds.append(time.perf_counter() - started)
                body = response.content
            ordered = sorted(seconds)
            timings.append(
                Timing(
                    mode=MODES[mode],
                    page=page,
                    path=path,
                    records=records,
                    requests=requests,
                    p50_ms=statistics.median(ordered) * 1000,
                    p95_ms=ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000,
                    max_ms=ordered[-1] * 1000,
                    bytes=len(body),
                    digest=hashlib.sha256(re.sub(rb'name="csrf_token" value="[^"]+"', b"", body)).hexdigest(),
                )
            )
    return timings


@click.command(name="dashboard")
@click.option(
    "--records", type=click.IntRange(min=1), default=10_000_000, show_default=True, help="Records in the store."
)
@click.option("--months", type=click.IntRange(1, 120), default=24, show_default=True, help="Months they span.")
@click.option("--requests", type=click.IntRange(min=1), default=50, show_default=True, help="Timed fetches per page.")
@click.option(
    "--scan-requests",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Timed fetches per page of the app scanning the records (0: no comparison).",
)
@click.option("--postgres-url", default=DEFAULT_POSTGRES_URL, show_default=True, help="PostgreSQL server to use.")
@click.option(
    "--quick", is_flag=True, help=f"A small run for tests: {QUICK['records']} records, {QUICK['requests']} and "
    f"{QUICK['scan_requests']} fetches."
)  # fmt: skip
@out_option("dashboard")
def dashboard(
    records: int, months: int, requests: int, scan_requests: int, postgres_url: str, quick: bool, out: Path
) -> None:
    """The national and a département page over M records in PostgreSQL: p50/p95 with site_month, against
    the same pages computed by scanning the records."""
    from platform_ingest.dashboard.accounts import add_user, parse_role
    from platform_ingest.store import open_store

    if quick:
        records, requests, scan_requests = QUICK["records"], QUICK["requests"], QUICK["scan_requests"]
    timings: list[Timing] = []
    with fresh_schema(postgres_url, "borne_bench_dashboard") as db, tempfile.TemporaryDirectory() as name:
        click.echo(f"filling {records} records…", err=True)
        filled = fill(db, records, months)
        click.echo(
            f"inserted in {filled.insert_s:.1f} s, indexes {filled.indexes_s:.1f} s, "
            f"schema 3 migration (site_month filled) {filled.migration_s:.1f} s",
            err=True,
        )
        with open_store(db) as store:
            add_user(store, ACCOUNT, parse_role("national"), PASSWORD)
        for mode, count in (("site_month", requests), ("scan", scan_requests)):
            if count == 0:
                continue
            with Server(Path(name), db, mode) as server:
                timings += time_pages(server.base, mode, records, count)
    click.echo(f"{'pages of':<22} {'page':<12} {'records':>9} {'fetches':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for timing in timings:
        click.echo(
            f"{timing.mode:<22} {timing.page:<12} {timing.records:>9} {timing.requests:>7} {timing.p50_ms:>8.1f} "
            f"{timing.p95_ms:>8.1f} {timing.max_ms:>8.1f}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "dashboard",
                "machine": machine("psycopg", "starlette", "uvicorn", "jinja2"),
                "fill": asdict(filled),
                "months": months,
                "sites": len(synthetic_sites()),
                "timings": [asdict(timing) for timing in timings],
            },
            indent=2,
        )
    )
    click.echo(f"wrote {out}")
    if filled.counted != records:
        raise click.ClickException(f"site_month counts {filled.counted} records, not {records}")


def _serve_scanning(config: Path, db: str, port: int) -> None:
    """The alternative: the dashboard app with the indicators computed by scanning the records."""
    import uvicorn

    from borne_common.cli import load_settings
    from platform_ingest.dashboard.app import create_app
    from platform_ingest.dashboard.settings import DashboardSettings
    from platform_ingest.departments import DEPARTMENTS, UNKNOWN
    from platform_ingest.store import GroupBy, Indicator, Store, _SqlStore

    def scanning_indicators(self: _SqlStore, by: GroupBy = "site", month: str | None = None) -> list[Indicator]:
        key = {
            "site": "r.site_id",
            "department": f"COALESCE(s.department, '{UNKNOWN}')",
            "region": f"COALESCE(s.region, '{UNKNOWN}')",
        }[by]
        where = "WHERE r.month = ?" if month is not None else ""
        with self._transaction() as cursor:
            cursor.execute(self._sql(SCAN_QUERY.format(key=key, where=where)), (month,) if month else ())
            rows = cursor.fetchall()
            cursor.execute("SELECT site_id, name FROM sites")
            names = {row[0]: row[1] for row in cursor.fetchall()}
        result = []
        for group, row_month, count, satisfied, comments, bursts in rows:
            label = {
                "site": names.get(group, ""),
                "department": DEPARTMENTS[group].name if group in DEPARTMENTS else "",
            }
            result.append(
                Indicator(
                    group, label.get(by, group), str(row_month), int(count), int(satisfied), int(comments), int(bursts)
                )
            )
        return result

    _SqlStore.indicators = scanning_indicators  # type: ignore[method-assign]
    _SqlStore.site_indicators = Store.site_indicators  # type: ignore[method-assign]  # every site's, then filtered
    settings = load_settings(DashboardSettings, config)
    uvicorn.run(create_app(settings.dashboard, db), host="127.0.0.1", port=port, server_header=False, log_level="info")


if __name__ == "__main__":
    _serve_scanning(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
