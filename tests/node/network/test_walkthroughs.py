"""The operator walk-throughs work as written: every `smartta` line of the README's "Operating a
network" blocks and of docs/operators.md section 9 runs, in order, against real node processes
(folders moved to a temporary directory, `--base-port 5000` to free ports)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from devnet import free_base_port, smartta

from node.network import local
from node.network.spec import NetworkSpec

ROOT = Path(__file__).parents[3]


def shell_lines(doc: Path, after: str) -> list[str]:
    text = doc.read_text()
    text = text[text.index(after):]
    blocks = re.findall(r"```shell\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip().startswith("smartta ")]


def run_all(lines: list[str], folders: dict[str, Path]) -> None:
    base = str(free_base_port(6))
    try:
        for line in lines:
            args = shlex.split(line)[1:]
            args = [str(folders.get(a, a)) for a in args]
            args = [base if prev == "--base-port" else a
                    for prev, a in zip(["", *args[:-1]], args, strict=True)]
            smartta(*args, timeout=600)
    finally:
        for folder in folders.values():
            if (folder / "network.yaml").exists():
                local.stop_nodes(folder, NetworkSpec.load(folder).nodes, timeout=20)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_walkthrough_runs_as_written(tmp_path):
    lines = shell_lines(ROOT / "README.md", "## Operating a network")
    assert any("validator rotate" in line for line in lines) and any("drill" in line for line in lines)
    run_all(lines, {"networks/demo": tmp_path / "demo", "networks/acme": tmp_path / "acme"})
    assert (tmp_path / "demo" / "keys" / "retired").is_dir()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_operators_guide_section_on_running_networks_runs_as_written(tmp_path):
    lines = shell_lines(ROOT / "docs" / "operators.md", "## 9.")
    assert len(lines) >= 8
    run_all(lines, {"networks/drill": tmp_path / "drill"})
