"""`borne moderate`: in process with CliRunner, and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from borne_cli.main import cli
from edge_models.moderation.cli import moderate

INPUT = "Appelez-moi au 06 12 34 56 78, putain !\nTrès bon accueil.\n\nMadame Martin, merci.\n"


def test_json_lines_one_per_input_line() -> None:
    result = CliRunner().invoke(moderate, ["--json"], input=INPUT.encode())
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 4
    first = lines[0]
    assert first["text"] == "Appelez-moi au [téléphone], […] !"
    assert first["insults"] == 1
    source = INPUT.splitlines()[0]
    assert [(r["kind"], source[r["start"] : r["end"]]) for r in first["redactions"]] == [
        ("telephone", "06 12 34 56 78"),
        ("insult", "putain"),
    ]
    assert lines[1] == {"text": "Très bon accueil.", "redactions": [], "insults": 0, "counts": {}}
    assert lines[2]["text"] == ""
    assert lines[3]["text"] == "Madame [nom], merci."


def test_plain_text_output() -> None:
    result = CliRunner().invoke(moderate, [], input=INPUT.encode())
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "Appelez-moi au [téléphone], […] !",
        "Très bon accueil.",
        "",
        "Madame [nom], merci.",
    ]


def test_reads_a_file_argument(tmp_path: Path) -> None:
    source = tmp_path / "comments.txt"
    source.write_text("mon mail: a.b@exemple.fr\n", encoding="utf-8")
    result = CliRunner().invoke(moderate, [str(source)])
    assert result.exit_code == 0
    assert result.output == "mon mail: [email]\n"


def test_invalid_utf8_is_a_clear_error() -> None:
    result = CliRunner().invoke(moderate, ["--json"], input=b"ok\n\xff\xfe bad\n")
    assert result.exit_code != 0
    assert "line 2 is not valid UTF-8" in result.output


def test_registered_under_borne_with_help() -> None:
    result = CliRunner().invoke(cli, ["moderate", "--help"])
    assert result.exit_code == 0
    assert "--json" in result.output
    assert "one comment per line" in result.output


def test_real_subprocess_borne_moderate_json() -> None:
    borne = Path(sys.executable).with_name("borne")
    command = [str(borne)] if borne.exists() else [sys.executable, "-c", "from borne_cli.main import cli; cli()"]
    completed = subprocess.run(
        [*command, "moderate", "--json"],
        input=INPUT.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    lines = [json.loads(line) for line in completed.stdout.decode("utf-8").splitlines()]
    assert [line["text"] for line in lines] == [
        "Appelez-moi au [téléphone], […] !",
        "Très bon accueil.",
        "",
        "Madame [nom], merci.",
    ]
    assert lines[0]["redactions"][0]["kind"] == "telephone"
