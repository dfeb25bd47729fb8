"""The import rules of docs/architecture.md, read from the code: every module's imports (ast, lazy ones
included) against the table "Who may import whom", Kivy only under `kiosk_app/ui/`, click only in the
command-line modules. A failure names the file, the line and the rule."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
TABLE_TITLE = "## Who may import whom"
SOURCES = ("borne_common", "edge_models", "sync_agent", "kiosk_app", "platform_ingest", "provisioning", "borne_cli")
SCANNED = (*SOURCES, "bench", "tests", "scripts")
KIVY_HOME = "kiosk_app/ui/"
CLICK_HOMES = ("borne_cli/", "bench/", "tests/", "scripts/")
"""Besides any module named cli.py: where click may be imported."""


def import_table(text: str) -> dict[str, set[str]]:
    """{package: modules of ours it may import} from the table under TABLE_TITLE."""
    section = text.split(TABLE_TITLE, 1)[1]
    table: dict[str, set[str]] = {}
    for line in section.splitlines()[1:]:
        if line.startswith("## "):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        table[cells[0].strip("`")] = set(re.findall(r"`([\w.]+)`", cells[1]))
    return table


def imports(path: Path, where: str) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in `path` (at `where` in the repository); `from package import module`
    gives package.module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=where)
    package = where.split("/")[:-1]  # the module's package, for relative imports
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = (ROOT / Path(*candidate.split("."))).is_dir() or (
                    ROOT / Path(*candidate.split("."))
                ).with_suffix(".py").is_file()
                yield node.lineno, candidate if is_module else base


def python_files() -> list[Path]:
    return sorted(path for top in SCANNED for path in (ROOT / top).rglob("*.py") if "results" not in path.parts)


def allowed(target: str, grants: set[str]) -> bool:
    return any(target == grant or target.startswith(grant + ".") for grant in grants)


def violations(path: Path, where: str, table: dict[str, set[str]]) -> list[str]:
    """What `path` (at `where` in the repository) imports against the rules, one line each."""
    top = where.split("/", 1)[0]
    grants = table[top] | {top}
    found = []
    for line, target in imports(path, where):
        first = target.split(".", 1)[0]
        if first in SCANNED and not allowed(target, grants):
            found.append(f"{where}:{line}: imports {target}; {top} may import only {sorted(table[top])}")
        if first == "kivy" and top in SOURCES and not where.startswith(KIVY_HOME):
            found.append(f"{where}:{line}: imports {target}; only {KIVY_HOME} imports Kivy")
        if first == "click" and path.name != "cli.py" and not where.startswith(CLICK_HOMES):
            found.append(f"{where}:{line}: imports {target}; only cli.py modules import click")
    return found


def documented_table() -> dict[str, set[str]]:
    return import_table(ARCHITECTURE.read_text(encoding="utf-8"))


def test_the_table_names_every_package() -> None:
    table = documented_table()
    assert set(table) == set(SCANNED)
    for package in SOURCES:
        assert not {"bench", "tests", "scripts"} & {grant.split(".")[0] for grant in table[package]}, (
            f"shipped code ({package}) must never import bench, tests or scripts"
        )


def test_every_import_follows_the_architecture() -> None:
    table = documented_table()
    found = [
        problem for path in python_files() for problem in violations(path, path.relative_to(ROOT).as_posix(), table)
    ]
    assert found == []


@pytest.mark.parametrize(
    ("where", "code", "expected"),
    [
        (
            "platform_ingest/probe.py",
            "from sync_agent.outbox import Outbox",
            "imports sync_agent.outbox; platform_ingest",
        ),
        ("platform_ingest/probe.py", "from sync_agent import agent", "imports sync_agent.agent; platform_ingest"),
        ("provisioning/probe.py", "from bench.wer import wer", "imports bench.wer; provisioning may import only"),
        ("borne_common/probe.py", "from sync_agent.contract import Ack", "imports sync_agent.contract; borne_common"),
        ("kiosk_app/probe.py", "import kivy.app", "imports kivy.app; only kiosk_app/ui/ imports Kivy"),
        ("edge_models/probe.py", "import click", "imports click; only cli.py modules import click"),
    ],
)
def test_a_forbidden_import_is_reported_with_its_file_and_line(
    tmp_path: Path, where: str, code: str, expected: str
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(f'"""probe"""\n\n\n{code}\n', encoding="utf-8")
    (problem,) = violations(probe, where, documented_table())
    assert problem.startswith(f"{where}:4: {expected}")
