"""Remote configuration: `borne fleet config publish FILE.toml --site S | --device D | --all`.

The file holds a `DeviceConfig` without its version (question, follow_ups, languages, opening_hours). It is
checked against the contract, given the next `config_version` (one more than any published or reported
so far, so a version names one publication), and published retained with QoS 1 on each chosen terminal's
`borne/v1/{site}/{device}/config`, then kept in the store (`device_configs`) for `borne fleet status`.
The terminal's sync agent keeps a newer valid one for the kiosk, which applies it at its next idle
moment and reports the version it runs in its Status.

The platform connects with an identity of its own (`[fleet] client_id`, a `platform…` certificate from
`borne provision fleet platform-cert`): the broker forces every client id to its certificate's name, so
publishing with ingest's certificate would knock the running consumer off.
"""

from __future__ import annotations

import logging
import ssl
import threading
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from platform_ingest.settings import IngestSettings
from platform_ingest.store import Store, TerminalStatus
from sync_agent.contract import MAX_CONFIG_VERSION, DeviceConfig, topic

logger = logging.getLogger(__name__)


class ConfigError(Exception):
    """A configuration that cannot be published; the message names the problem and the fix."""


def read_config_file(path: Path, version: int) -> DeviceConfig:
    """The DeviceConfig in the TOML file `path`, with `version`."""
    try:
        with path.open("rb") as handle:
            values: dict[str, Any] = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid UTF-8 TOML ({error}); fix the file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it ({error.strerror})") from None
    if "config_version" in values:
        raise ConfigError(f"{path}: remove config_version; the platform numbers each publication itself")
    try:
        return DeviceConfig.model_validate({**values, "config_version": version})
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in problem['loc']) or 'file'}: {problem['msg']}"
            for problem in error.errors(include_url=False)[:5]
        ]
        raise ConfigError(
            f"{path} is not a valid terminal configuration: " + "; ".join(problems) + " (docs/fleet.md shows one)"
        ) from None


def next_version(store: Store) -> int:
    version = store.last_config_version() + 1
    if version > MAX_CONFIG_VERSION:
        raise ConfigError(f"configuration versions are exhausted ({MAX_CONFIG_VERSION}); see docs/fleet.md")
    return version


def choose_terminals(
    terminals: list[TerminalStatus], *, site: str | None, device: str | None, every: bool
) -> list[tuple[str, str]]:
    """(site, device) of the terminals a publication goes to, from those that reported a Status."""
    if sum((site is not None and device is None, device is not None, every)) != 1:
        raise ConfigError("say where: --site SITE, --device DEVICE (with --site if two sites have one) or --all")
    known = [(t.site_id, t.device_id) for t in terminals]
    if every:
        chosen = known
    elif device is not None:
        chosen = [(s, d) for s, d in known if d == device and (site is None or s == site)]
        if len(chosen) > 1:
            raise ConfigError(f"device {device} is in {len(chosen)} sites; add --site")
    else:
        chosen = [(s, d) for s, d in known if s == site]
    if not chosen:
        raise ConfigError(
            "no terminal matches: a terminal is known once it has sent a Status (borne fleet status lists them)"
        )
    return chosen


@dataclass
class _Publisher:
    connected: threading.Event = field(default_factory=threading.Event)
    lost: threading.Event = field(default_factory=threading.Event)
    refused: str | None = None
    acks: dict[int, str | None] = field(default_factory=dict)
    acked: threading.Condition = field(default_factory=threading.Condition)


def publish(
    settings: IngestSettings,
    config: DeviceConfig,
    terminals: list[tuple[str, str]],
    store: Store,
    *,
    timeout_s: float = 20.0,
) -> list[tuple[str, str]]:
    """Publish `config` retained to each terminal and keep each acknowledged publication in `store`; the
    terminals it reached. Raises ConfigError when the broker cannot be reached or refuses us."""
    from paho.mqtt.reasoncodes import ReasonCode

    from borne_common.mqtt import BrokerConfigError, connect_client

    fleet = settings.fleet
    section = settings.ingest.model_copy(update={"tls_cert": fleet.tls_cert, "tls_key": fleet.tls_key})
    where = f"{section.broker_host}:{section.broker_port}"
    state = _Publisher()

    def on_connect(_c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            state.refused = str(reason)
        state.connected.set()

    def on_disconnect(_c: object, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        state.lost.set()
        with state.acked:
            state.acked.notify_all()

    def on_publish(_c: object, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        with state.acked:
            state.acks[mid] = str(reason) if reason.is_failure else None
            state.acked.notify_all()

    def callbacks(client: Any) -> None:
        client.on_connect, client.on_disconnect, client.on_publish = on_connect, on_disconnect, on_publish

    try:
        client = connect_client(
            section, fleet.client_id, clean_start=True, section_name="fleet", prepare=callbacks, keepalive_s=30
        )
    except BrokerConfigError as error:
        raise ConfigError(f"{error} ([fleet] tls_cert/tls_key: `borne provision fleet platform-cert`)") from None
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(f"cannot reach the broker at {where} ({error}); check [ingest] broker_host/port") from None
    client.loop_start()
    reached: list[tuple[str, str]] = []
    try:
        state.connected.wait(timeout_s)
        if not state.connected.is_set() or state.refused is not None:
            why = state.refused or ("closed the connection" if state.lost.is_set() else "did not answer")
            raise ConfigError(
                f"the broker at {where} {why} for client {fleet.client_id}; give it a platform certificate "
                "(`borne provision fleet platform-cert`) named as [fleet] client_id"
            )
        payload = config.to_json()
        pending = {}
        for site_id, device_id in terminals:
            info = client.publish(topic(site_id, device_id, "config"), payload, qos=1, retain=True)
            pending[info.mid] = (site_id, device_id)
        with state.acked:
            state.acked.wait_for(lambda: state.lost.is_set() or pending.keys() <= state.acks.keys(), timeout_s)
        published_at = datetime.now(UTC)
        refused = []
        for mid, terminal in pending.items():
            if mid in state.acks and state.acks[mid] is None:
                store.put_device_config(*terminal, config, published_at)
                reached.append(terminal)
            else:
                refused.append(f"{'/'.join(terminal)} ({state.acks.get(mid) or 'no acknowledgement'})")
        if refused:
            raise ConfigError(
                f"published version {config.config_version} to {len(reached)} terminal(s); the broker did not take "
                f"it for {', '.join(refused[:5])}: check that {fleet.client_id} has the platform's rights "
                "(`borne provision fleet broker-config`)"
            )
    finally:
        client.disconnect()
        client.loop_stop()
    return reached
