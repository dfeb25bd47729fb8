"""The wheel `pip wheel .` builds holds every file of the packages that the repository tracks (code, kv, po,
wav, word lists, systemd units) and nothing local (benchmark output). Built from a copy of the tracked files,
as CI's clean checkout would, with the package index for the build backend."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "bench",
    "borne_cli",
    "borne_common",
    "edge_models",
    "kiosk_app",
    "platform_ingest",
    "provisioning",
    "sync_agent",
)


@pytest.mark.slow
def test_the_wheel_holds_every_tracked_package_file_and_no_benchmark_output(tmp_path: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    source = tmp_path / "source"
    for name in filter(None, tracked):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)
    (source / "bench" / "results").mkdir(exist_ok=True)
    (source / "bench" / "results" / "kiosk.json").write_text(json.dumps({"local": True}), encoding="utf-8")

    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--quiet", "-w", str(tmp_path / "dist")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("borne-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())

    expected = {name for name in tracked if name.split("/", 1)[0] in PACKAGES}
    assert expected - shipped == set()
    assert {"kiosk_app/ui/locale/fr/LC_MESSAGES/borne.po", "edge_models/samples/fr_sample.wav"} <= shipped
    assert "provisioning/systemd/borne-kiosk.service" in shipped
    assert not [name for name in shipped if name.startswith("bench/results/")]
