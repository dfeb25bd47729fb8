"""`borne fleet status`: the terminals' latest Status as the store keeps it (both engines, and a database
from before the fleet columns), and the alerts computed from it."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from borne_cli.main import cli
from platform_ingest.fleet.status import alerts_of, fleet_rows, render
from platform_ingest.settings import FleetSection
from platform_ingest.store import SCHEMA_VERSION, Site, SqliteStore, Store, TerminalStatus, open_store
from sync_agent.contract import ComponentState, DeviceConfig, Status
from tests.platform_ingest.factories import DEVICE, SITE

PARIS = ZoneInfo("Europe/Paris")
OFFICE = FleetSection()  # mon-fri 09:00-12:00 and 13:30-17:00, Europe/Paris
FRIDAY_4PM = datetime(2026, 12, 4, 16, 0, tzinfo=PARIS)
MONDAY = datetime(2026, 12, 7, tzinfo=PARIS)


def status(sent_at: datetime, *, state: str = "online", **changes: object) -> Status:
    values: dict[str, object] = {
        "site_id": SITE,
        "device_id": DEVICE,
        "state": state,
        "backlog": 2,
        "oldest_pending_age_s": 30.0,
        "versions": {"borne": "0.9.0"},
        "microphone": "ok",
        "model": "ok",
        "config_version": 4,
        "sent_at": sent_at,
    }
    values.update(changes)
    return Status.model_validate(values)


def terminal(last_seen: datetime, **changes: object) -> TerminalStatus:
    values: dict[str, object] = {
        "site_id": SITE,
        "device_id": DEVICE,
        "state": "online",
        "backlog": 0,
        "oldest_pending_age_s": None,
        "sent_at": last_seen,
        "received_at": last_seen,
        "last_seen": last_seen,
        "microphone": "ok",
        "model": "ok",
    }
    values.update(changes)
    return TerminalStatus(**values)  # type: ignore[arg-type]


# -- alerts ----------------------------------------------------------------------------------------


def test_silence_is_an_alert_only_after_two_hours_of_opening_time() -> None:
    seen = FRIDAY_4PM
    assert alerts_of(terminal(seen), MONDAY.replace(hour=9, minute=30), OFFICE) == ()
    (alert,) = alerts_of(terminal(seen), MONDAY.replace(hour=10, minute=30), OFFICE)
    assert alert.kind == "silent" and "2.5 h of opening time" in alert.message
    # The same silence on a Sunday is no alert: the office is closed.
    assert alerts_of(terminal(seen), MONDAY - timedelta(hours=1), OFFICE) == ()


def test_an_overseas_site_is_read_in_its_own_time_zone() -> None:
    # 14:00 UTC is 10:00 in Guadeloupe (open since 09:00) and 15:00 in Paris (open since 13:30).
    seen = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # 08:00 in Guadeloupe: not open yet
    now = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
    strict = OFFICE.model_copy(update={"silent_after_h": 0.5})
    assert [a.kind for a in alerts_of(terminal(seen, department="971"), now, strict)] == ["silent"]  # 1 h open
    assert alerts_of(terminal(seen, department="971"), now, OFFICE) == ()
    paris = alerts_of(terminal(seen, department="75"), now, strict)  # 13:30-15:00 in Paris: 1.5 h
    assert [a.kind for a in paris] == ["silent"] and "1.5 h" in paris[0].message


def test_component_and_backlog_alerts() -> None:
    now = MONDAY.replace(hour=10)
    broken = terminal(now, microphone="missing", model="failed", backlog=40, oldest_pending_age_s=23 * 3600.0)
    broken = TerminalStatus(**{**broken.__dict__, "sent_at": now - timedelta(hours=2)})
    kinds = {alert.kind: alert.message for alert in alerts_of(broken, now, OFFICE)}
    assert kinds == {
        "microphone": "microphone missing",
        "model": "speech model failed",
        "backlog": "oldest record waiting 25.0 h (40 not acknowledged)",
    }
    # A model still loading, or a state the kiosk never wrote, is no alert; an offline terminal's old
    # microphone state is not reported again (its silence is).
    assert alerts_of(terminal(now, model="loading", microphone="unknown"), now, OFFICE) == ()
    assert alerts_of(terminal(now, state="offline", microphone="missing"), now, OFFICE) == ()


def test_the_table_shows_each_terminal_and_its_alerts() -> None:
    now = MONDAY.replace(hour=11)
    rows = fleet_rows(
        [
            terminal(now - timedelta(minutes=3), site_name="France services de Guéret", app_version="0.9.0"),
            terminal(FRIDAY_4PM, device_id="borne-02", state="offline", offline_since=FRIDAY_4PM),
        ],
        now,
        OFFICE,
    )
    text = render(rows, now)
    lines = text.splitlines()
    assert lines[0].split() == [
        "terminal",
        "site",
        "state",
        "last",
        "seen",
        "version",
        "config",
        "backlog",
        "mic",
        "model",
    ]
    assert f"{SITE}/{DEVICE}" in lines[1] and "France services de Guéret" in lines[1] and "3 min ago" in lines[1]
    assert f"{SITE}/borne-02" in lines[2] and "offline" in lines[2]
    assert lines[3].startswith("    ! silent: offline since 2026-12-04 15:00 UTC, no Status for 3.0 h")
    assert lines[-1] == "2 terminal(s), 1 online, 1 with alerts"


# -- what the store keeps (both engines) ------------------------------------------------------------


def test_the_latest_status_and_the_last_will_are_kept(store: Store) -> None:
    store.upsert_sites([Site(SITE, "France services de Guéret", "23")])
    first = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert store.put_status(status(first), received=first)
    assert store.put_status(
        status(first + timedelta(minutes=5), microphone="missing"), received=first + timedelta(minutes=5)
    )
    (row,) = store.terminals()
    assert (row.state, row.microphone, row.model, row.app_version, row.config_version) == (
        "online",
        "missing",
        "ok",
        "0.9.0",
        4,
    )
    assert (row.site_name, row.department, row.last_seen, row.offline_since) == (
        "France services de Guéret",
        "23",
        first + timedelta(minutes=5),
        None,
    )

    # The last will carries the time of connection: it marks the terminal offline and keeps what the latest
    # online Status said; the broker delivering it again (retained) does not move the moment it went offline.
    will = status(first - timedelta(hours=1), state="offline", backlog=0, microphone="unknown", config_version=None)
    went = first + timedelta(minutes=7)
    assert store.put_status(will, received=went)
    assert store.put_status(will, received=went + timedelta(hours=1))
    (row,) = store.terminals()
    assert (row.state, row.offline_since, row.last_seen) == ("offline", went, first + timedelta(minutes=5))
    assert (row.microphone, row.backlog, row.config_version) == ("missing", 2, 4)

    back = first + timedelta(hours=3)
    assert store.put_status(status(back), received=back)
    (row,) = store.terminals()
    assert (row.state, row.offline_since, row.last_seen, row.microphone) == ("online", None, back, "ok")


def test_a_database_from_before_the_fleet_columns_is_brought_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "ingest.db"
    with sqlite3.connect(path) as old:  # what schema version 1 created
        old.execute("CREATE TABLE ingest_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        old.execute("INSERT INTO ingest_meta VALUES ('schema_version', '1')")
        old.execute(
            "CREATE TABLE terminal_status (site_id TEXT NOT NULL, device_id TEXT NOT NULL, state TEXT NOT NULL, "
            "backlog INTEGER NOT NULL, oldest_pending_age_s REAL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL, "
            "PRIMARY KEY (site_id, device_id))"
        )
        old.execute(
            "INSERT INTO terminal_status VALUES (?, ?, 'online', 3, 60.0, ?, ?)",
            (SITE, DEVICE, "2026-12-07T09:00:00+00:00", "2026-12-07T09:00:01+00:00"),
        )
    old.close()
    with SqliteStore(path) as store:
        (row,) = store.terminals()
        assert (row.backlog, row.microphone, row.last_seen, row.app_version) == (3, "unknown", None, None)
        assert store.put_status(status(datetime(2026, 12, 7, 10, 0, tzinfo=UTC), model=ComponentState.FAILED))
        assert store.terminals()[0].model == "failed"
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT value FROM ingest_meta").fetchone() == (str(SCHEMA_VERSION),)
    check.close()


def test_a_postgresql_database_from_before_the_fleet_columns_is_brought_up_to_date(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as old:
        old.execute("CREATE TABLE ingest_meta (key text PRIMARY KEY, value text NOT NULL)")
        old.execute("INSERT INTO ingest_meta VALUES ('schema_version', '1')")
        old.execute(
            "CREATE TABLE terminal_status (site_id text NOT NULL, device_id text NOT NULL, state text NOT NULL, "
            "backlog integer NOT NULL, oldest_pending_age_s double precision, sent_at timestamptz NOT NULL, "
            "received_at timestamptz NOT NULL, PRIMARY KEY (site_id, device_id))"
        )
        old.execute(
            "INSERT INTO terminal_status VALUES (%s, %s, 'online', 3, 60.0, %s, %s)",
            (SITE, DEVICE, "2026-12-07T09:00:00+00:00", "2026-12-07T09:00:01+00:00"),
        )
    with open_store(postgres_url) as store:
        (row,) = store.terminals()
        assert (row.backlog, row.microphone, row.offline_since) == (3, "unknown", None)
        assert store.put_status(status(datetime(2026, 12, 7, 10, 0, tzinfo=UTC), microphone="missing"))
        assert store.terminals()[0].microphone == "missing"


# -- the command ----------------------------------------------------------------------------------


def test_fleet_status_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ingest.db'}"
    now = datetime.now(UTC)
    with open_store(url) as store:
        store.put_status(status(now, microphone="missing"), received=now)
        store.put_status(status(now, device_id="borne-02"), received=now)
    runner = CliRunner()

    result = runner.invoke(cli, ["fleet", "status", "--db", url, "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(row["device_id"], [a["kind"] for a in row["alerts"]]) for row in rows] == [
        (DEVICE, ["microphone"]),
        ("borne-02", []),
    ]
    assert rows[0]["config_version"] == 4 and rows[0]["app_version"] == "0.9.0" and rows[0]["state"] == "online"
    assert rows[0]["opening_hours"]["source"] == "fleet"  # no configuration was published to it

    alerts = runner.invoke(cli, ["fleet", "status", "--db", url, "--alerts", "--check"])
    assert alerts.exit_code == 1
    assert f"{SITE}/{DEVICE}" in alerts.output and "borne-02" not in alerts.output
    assert "! microphone: microphone missing" in alerts.output

    empty = runner.invoke(cli, ["fleet", "status", "--db", f"sqlite:///{tmp_path / 'new.db'}", "--check"])
    assert empty.exit_code == 0 and "no terminal has reported a Status yet" in empty.output

    bad = tmp_path / "bad.toml"
    bad.write_text('[fleet]\ntimezone = "Europe/Gueret"\n')
    refused = runner.invoke(cli, ["fleet", "status", "--config", str(bad), "--db", url])
    assert refused.exit_code != 0 and "unknown time zone 'Europe/Gueret'" in refused.output


# -- configurations -------------------------------------------------------------------------------


def test_a_configuration_file_is_checked_against_the_contract(tmp_path: Path) -> None:
    from platform_ingest.fleet.config import ConfigError, read_config_file

    path = tmp_path / "config.toml"
    path.write_text('languages = ["fr"]\n[question]\nfr = "Satisfait ?"\n')
    assert read_config_file(path, 7).model_dump(include={"config_version", "languages"}) == {
        "config_version": 7,
        "languages": ["fr"],
    }
    cases = {
        "config_version = 9\n[question]\nfr = 'x'\n": "remove config_version",
        "[question]\nen = 'Satisfied?'\n": "question: Value error, a French text ('fr') is required",
        "[question]\nfr = 'x'\n[opening_hours]\nmonday = ['09:00-12:00']\n": "opening_hours.monday",
        "question = \n": "not valid UTF-8 TOML",
    }
    for text, expected in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(expected)):
            read_config_file(path, 1)
    with pytest.raises(ConfigError, match="file not found"):
        read_config_file(tmp_path / "absent.toml", 1)


def test_the_terminals_a_publication_goes_to() -> None:
    from platform_ingest.fleet.config import ConfigError, choose_terminals

    now = datetime.now(UTC)
    known = [
        terminal(now, site_id="fs-23-01", device_id="borne-a"),
        terminal(now, site_id="fs-23-01", device_id="borne-b"),
        terminal(now, site_id="fs-75-01", device_id="borne-a"),
    ]
    assert choose_terminals(known, site="fs-23-01", device=None, every=False) == [
        ("fs-23-01", "borne-a"),
        ("fs-23-01", "borne-b"),
    ]
    assert choose_terminals(known, site=None, device="borne-b", every=False) == [("fs-23-01", "borne-b")]
    assert choose_terminals(known, site="fs-75-01", device="borne-a", every=False) == [("fs-75-01", "borne-a")]
    assert len(choose_terminals(known, site=None, device=None, every=True)) == 3
    with pytest.raises(ConfigError, match="device borne-a is in 2 sites; add --site"):
        choose_terminals(known, site=None, device="borne-a", every=False)
    with pytest.raises(ConfigError, match="say where"):
        choose_terminals(known, site="fs-23-01", device=None, every=True)
    with pytest.raises(ConfigError, match="no terminal matches"):
        choose_terminals(known, site="fs-01-01", device=None, every=False)


def test_published_configurations_are_kept_and_numbered(store: Store) -> None:
    from platform_ingest.fleet.config import next_version

    assert next_version(store) == 1
    sent = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    store.put_status(status(sent, config_version=4), received=sent)  # a terminal already runs version 4
    assert next_version(store) == 5
    config = DeviceConfig.model_validate({"config_version": 5, "question": {"fr": "Satisfait ?"}})
    store.put_device_config(SITE, DEVICE, config, sent + timedelta(minutes=1))
    assert next_version(store) == 6
    (row,) = store.terminals()
    assert (row.config_version, row.config_sent, row.config_sent_at) == (4, 5, sent + timedelta(minutes=1))


def test_a_configuration_not_applied_becomes_an_alert() -> None:
    sent_at = MONDAY.replace(hour=9)
    waiting = terminal(MONDAY.replace(hour=12), config_version=4, config_sent=5, config_sent_at=sent_at)
    assert alerts_of(waiting, MONDAY.replace(hour=10, minute=30), OFFICE) == ()  # 1.5 h of opening time
    (alert,) = alerts_of(waiting, MONDAY.replace(hour=14), OFFICE)  # 3 h + 0.5 h
    assert (alert.kind, alert.message) == ("config", "runs version 4, version 5 published 2026-12-07 08:00 UTC")
    applied = TerminalStatus(**{**waiting.__dict__, "config_version": 5})
    assert alerts_of(applied, MONDAY.replace(hour=14), OFFICE) == ()
    assert "4 (5 sent)" in render(fleet_rows([waiting], MONDAY.replace(hour=12), OFFICE), MONDAY.replace(hour=12))


# -- the opening hours of the configuration published to each terminal -----------------------------


def published(version: int, **opening_hours: list[str]) -> DeviceConfig:
    return DeviceConfig.model_validate(
        {"config_version": version, "question": {"fr": "Satisfait ?"}, "opening_hours": opening_hours}
    )


def test_the_store_gives_the_latest_configuration_published_to_each_terminal(store: Store) -> None:
    assert store.latest_device_configs() == {}
    at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    store.put_device_config(SITE, DEVICE, published(3, mon=["08:00-12:00"]), at)
    store.put_device_config(SITE, DEVICE, published(5, sat=["09:00-12:00"]), at + timedelta(hours=1))
    store.put_device_config(SITE, "borne-02", published(4), at)
    store.put_device_config("fs-971-02", DEVICE, published(2, sun=["10:00-11:00"]), at)
    latest = store.latest_device_configs()
    assert {key: config.config_version for key, config in latest.items()} == {
        (SITE, DEVICE): 5,
        (SITE, "borne-02"): 4,
        ("fs-971-02", DEVICE): 2,
    }
    assert latest[(SITE, DEVICE)].opening_hours == {"sat": ["09:00-12:00"]}


def test_silence_counts_in_the_opening_hours_published_to_the_terminal_else_the_fleet_s(store: Store) -> None:
    """Three terminals silent for 3 h: one whose own hours close its site then (no alert) though the fleet's say
    open, one whose own hours open it (alert) though the fleet's say closed, one with no hours of its own."""
    monday_noon, saturday_noon = MONDAY.replace(hour=12), MONDAY.replace(hour=12) - timedelta(days=2)
    sent = MONDAY - timedelta(days=7)
    for device, seen, version in (
        ("closed-own", monday_noon, 6),
        ("open-own", saturday_noon, 7),
        ("fleet", monday_noon, 8),
    ):
        three_hours_before = seen - timedelta(hours=3)  # each runs the configuration it was sent: no config alert
        store.put_status(
            status(three_hours_before, device_id=device, config_version=version), received=three_hours_before
        )
    store.put_device_config(SITE, "closed-own", published(6, mon=["14:00-19:00"], sat=["09:00-12:00"]), sent)
    store.put_device_config(SITE, "open-own", published(7, sat=["09:00-12:00"]), sent)
    store.put_device_config(SITE, "fleet", published(8), sent)  # no opening hours: the fleet's count
    statuses, configs = store.terminals(), store.latest_device_configs()

    def kinds(device: str, now: datetime, configs: dict[tuple[str, str], DeviceConfig] | None = configs) -> list[str]:
        (found,) = [r for r in fleet_rows(statuses, now, OFFICE, configs) if r.status.device_id == device]
        return [alert.kind for alert in found.alerts]

    # Monday 09:00-12:00: open by the fleet's hours, closed by its own (it opens at 14:00)
    assert kinds("closed-own", monday_noon) == []
    assert kinds("closed-own", monday_noon, configs={}) == ["silent"]
    # Saturday 09:00-12:00: closed by the fleet's hours, open by its own
    assert kinds("open-own", saturday_noon) == ["silent"]
    assert kinds("open-own", saturday_noon, configs={}) == []
    assert kinds("fleet", monday_noon) == ["silent"]

    rows = fleet_rows(statuses, saturday_noon, OFFICE, configs)
    text = render(rows, saturday_noon)
    assert "no Status for 3.0 h of opening time (opening hours of configuration 7; last seen" in text
    opening = {row.status.device_id: row.to_json(saturday_noon)["opening_hours"] for row in rows}
    assert opening["open-own"] == {"source": "config", "config_version": 7, "days": {"sat": ["09:00-12:00"]}}
    assert opening["fleet"]["source"] == "fleet" and opening["fleet"]["config_version"] is None
    assert opening["fleet"]["days"]["mon"] == ["09:00-12:00", "13:30-17:00"]
    monday_text = render(fleet_rows(statuses, monday_noon, OFFICE, configs), monday_noon)
    assert "no Status for 3.0 h of opening time ([fleet] opening hours; last seen" in monday_text
