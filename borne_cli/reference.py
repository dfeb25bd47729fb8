"""Reference pages generated from the code itself, kept in step by tests (`make docs` rewrites them).

- docs/cli.md from every command's --help;
- docs/settings.md from the settings sections' fields, defaults and descriptions.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from pydantic import BaseModel

from borne_cli.main import cli
from borne_common.settings import DeviceSection
from edge_models.options import VoiceOptions
from kiosk_app.settings import KioskSection
from platform_ingest.dashboard.settings import DashboardSection
from platform_ingest.settings import FleetSection, IngestSection
from sync_agent.contract import FollowUp
from sync_agent.settings import OutboxSection, SyncSection

# TOML section -> (model, the processes that read it).
SETTINGS_SECTIONS: dict[str, tuple[type[BaseModel], str]] = {
    "device": (DeviceSection, "every process"),
    "outbox": (OutboxSection, "`borne simulate`, `borne kiosk`, `borne sync`, `borne outbox`"),
    "kiosk": (KioskSection, "`borne kiosk`, `borne simulate`"),
    "voice": (VoiceOptions, "`borne kiosk`"),
    "sync": (SyncSection, "`borne sync`"),
    "ingest": (IngestSection, "`borne ingest` (central platform)"),
    "fleet": (FleetSection, "`borne fleet` (central platform)"),
    "dashboard": (DashboardSection, "`borne dashboard` (central platform)"),
}


def walk(
    command: click.Command, name: str = "borne", parent: click.Context | None = None
) -> Iterator[tuple[click.Context, click.Command]]:
    """Every command under `command` (itself first) with the context its --help is printed in."""
    context = click.Context(command, info_name=name, parent=parent)
    yield context, command
    if isinstance(command, click.Group):
        for child_name in command.list_commands(context):
            child = command.get_command(context, child_name)
            if child is not None and not child.hidden:
                yield from walk(child, child_name, context)


def render() -> str:
    parts = [
        "# `borne` command reference\n\n",
        "Generated from `--help` by `make docs` (`python -m borne_cli.reference docs`); a test keeps it in step.\n",
    ]
    for context, command in walk(cli):
        parts.append(f"\n## `{context.command_path}`\n\n```text\n{command.get_help(context).rstrip()}\n```\n")
    return "".join(parts)


def _default(model: type[BaseModel], name: str) -> str:
    value = model().model_dump(mode="json")[name]
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= 60:
        return f"`{text}`"
    return "see Questions below" if model is KioskSection else f"built in (`{model.__module__}`)"


def _section(name: str, model: type[BaseModel], suffix: str = "") -> list[str]:
    """A table for `[name]`, then one for each nested table (for example `[voice.vad]`)."""
    parts = [f"\n## `[{name}]`\n\n{(model.__doc__ or '').strip()}{suffix}\n\n"]
    parts.append("| key | default | meaning |\n|---|---|---|\n")
    nested = []
    for key, field in model.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((f"{name}.{key}", annotation))
            parts.append(f"| `{key}` | table `[{name}.{key}]` | {description} |\n")
        else:
            parts.append(f"| `{key}` | {_default(model, key)} | {description} |\n")
    for child, child_model in nested:
        parts.extend(_section(child, child_model))
    return parts


def render_settings() -> str:
    parts = [
        "# Settings reference\n\n",
        "Generated from the settings models by `make docs` (`python -m borne_cli.reference docs`); "
        "a test keeps it in step.\n\n",
        "One TOML file, `/etc/borne/borne.toml` by default (`--config FILE` or `BORNE_CONFIG` to choose another). "
        "Every key can be overridden by an environment variable `BORNE_<SECTION>__<KEY>` (for example "
        "`BORNE_OUTBOX__PATH=/tmp/outbox.db`); values given on the command line win over both. "
        "An unknown section or key, or a value of the wrong kind, stops the process at start with the file "
        "(or variable), the key, the value and what was expected.\n",
    ]
    for section, (model, readers) in SETTINGS_SECTIONS.items():
        parts.extend(_section(section, model, f" Read by {readers}."))
    parts.append(
        "\n## Questions\n\nThe default `[kiosk] question` and `follow_ups`, as TOML; replace the whole list to "
        "change the follow-ups. `ask_when` lists the ratings (1 very dissatisfied … 4 very satisfied) after which "
        "the question is asked.\n\n```toml\n[kiosk]\n"
        f"question = {_toml_texts(KioskSection().question)}\n\n"
    )
    for follow_up in KioskSection().follow_ups:
        parts.append(_follow_up_toml(follow_up))
    parts.append("```\n")
    return "".join(parts)


def _toml_texts(texts: dict[str, str]) -> str:
    return (
        "{ "
        + ", ".join(f"{language} = {json.dumps(text, ensure_ascii=False)}" for language, text in texts.items())
        + " }"
    )


def _follow_up_toml(follow_up: FollowUp) -> str:
    lines = [
        "[[kiosk.follow_ups]]",
        f'id = "{follow_up.id}"',
        f"text = {_toml_texts(follow_up.text)}",
        "choices = [",
        *(f'  {{ id = "{choice.id}", text = {_toml_texts(choice.text)} }},' for choice in follow_up.choices),
        "]",
        f"ask_when = {json.dumps([int(rating) for rating in follow_up.ask_when])}",
        "",
    ]
    return "\n".join(lines) + "\n"


PAGES = {"cli": render, "settings": render_settings}


def write_pages(docs: Path) -> None:
    for name, page in PAGES.items():
        (docs / f"{name}.md").write_text(page(), encoding="utf-8")


if __name__ == "__main__":
    write_pages(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs"))
