"""What every benchmark's JSON says of the machine, so figures from two machines can be told apart."""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path


def test_the_machine_block_names_the_cpu_and_the_versions(tmp_path: Path) -> None:
    from bench.results_file import cpu_model, machine

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: avx2\n", encoding="utf-8")
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: neon\nModel\t: Raspberry Pi 4 Model B Rev 1.5\n", encoding="utf-8")
    assert cpu_model(cpuinfo) == "Raspberry Pi 4 Model B Rev 1.5"
    described = machine("kivy", "no-such-package-borne")
    assert described["packages"] == {"kivy": version("kivy"), "no-such-package-borne": None}
    assert described["cpus"] == os.cpu_count() and described["cpu"]
