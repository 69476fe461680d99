"""The ``smartta-observer`` command line: exit codes, the report, evidence files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from conftest import write_genesis
from test_resume_and_compare import _forked

from observer.cli import main


def _verify(args, tmp_path):
    runner = CliRunner()
    return runner.invoke(main, ["verify", "--state-dir", str(tmp_path / "state"), "--quiet",
                                *args], catch_exceptions=False)


def test_help_documents_the_exit_codes():
    out = CliRunner().invoke(main, ["verify", "--help"]).output
    for code in ("0  every block", "1  verification failed", "3  a node could not be read",
                 "4  equivocation"):
        assert code in out


def test_clean_chain_exits_0_and_writes_a_json_report(chain16, node_factory, tmp_path):
    node = node_factory(chain16)
    genesis = write_genesis(chain16, tmp_path)
    result = _verify(["--rpc", node.url, "--genesis", str(genesis), "--report",
                      str(tmp_path / "r.json")], tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["ok"], report["blocksVerified"], report["to"]) == (True, 16, 16)
    assert len(report["validatorSetChanges"]) == 2


def test_tampered_chain_exits_1_naming_block_and_reason(chain16, node_factory, tmp_path):
    node = node_factory(chain16)
    from tampers import apply

    apply(node, chain16, {"kind": "duplicate-seal", "block": 11})
    result = _verify(["--rpc", node.url, "--genesis", str(write_genesis(chain16, tmp_path))],
                     tmp_path)
    assert result.exit_code == 1
    assert "FAILED block 11: seals: commit seal 3 duplicates the seal of 0x" in " ".join(
        result.output.split())


def test_equivocation_exits_4_and_writes_both_headers_with_their_seals(node_factory, tmp_path):
    honest, fork = _forked(10, 6)
    a, b = node_factory(honest), node_factory(fork)
    result = _verify(["--rpc", a.url, "--rpc", b.url, "--genesis",
                      str(write_genesis(honest, tmp_path)), "--evidence", str(tmp_path / "ev")],
                     tmp_path)
    assert result.exit_code == 4, result.output
    evidence = json.loads((tmp_path / "ev" / "equivocation-6.json").read_text())
    assert [len(b["committers"]) for b in evidence["blocks"]] == [3, 3]
    assert all(b["headerRlp"].startswith("0x") for b in evidence["blocks"])


def test_unreachable_node_exits_3_and_says_what_to_check(chain16, tmp_path):
    result = _verify(["--rpc", "http://127.0.0.1:9", "--genesis",
                      str(write_genesis(chain16, tmp_path))], tmp_path)
    assert result.exit_code == 3
    assert "cannot be reached" in result.output


def test_installed_entry_point_verifies_from_the_genesis_file_alone(chain16, node_factory, tmp_path):
    node = node_factory(chain16)
    genesis = write_genesis(chain16, tmp_path)
    exe = Path(sys.executable).with_name("smartta-observer")
    done = subprocess.run([str(exe), "verify", "--rpc", node.url, "--genesis", str(genesis),
                           "--state-dir", str(tmp_path / "s"), "--jobs", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "OK every block verifies" in done.stderr
