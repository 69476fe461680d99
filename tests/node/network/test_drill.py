"""`smartta network drill` on real 4-validator networks: it reports pass for 1 of 4 validators
faulty (blocks keep coming), a safe halt for 2 of 4 (no block, no fork), and a measured recovery
time; a proposer killed before its turn gives way to the next after a round change."""

from __future__ import annotations

import json

import pytest
from devnet import block_hashes, devnet, smartta, wait_height

from node.network import local


def drill(directory, *args):
    result = smartta("network", "drill", *args, "--dir", str(directory), "--json", check=False,
                     timeout=300)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_killing_one_of_four_validators_passes_and_the_victim_catches_up(tmp_path):
    directory = tmp_path / "net"
    with devnet(directory, validators=4) as spec:
        code, report = drill(directory, "kill", "--window", "8")
        obs = report["observation"]
        assert code == 0 and report["passed"], report
        assert obs["victims"] == ["validator-4"]
        assert obs["height_at_heal"] - obs["height_at_fault"] >= 3
        assert obs["recovery_synced_s"] is not None and obs["recovery_synced_s"] > 0
        # The restarted victim holds the very same chain as the others.
        url = local.url_of(spec.node("validator-1"))
        victim = local.url_of(spec.node("validator-4"))
        head = wait_height(victim, obs["height_at_heal"], timeout=30)
        assert block_hashes(victim, head) == block_hashes(url, head)


@pytest.mark.slow
def test_two_of_four_down_halt_safely_and_recover_and_a_dead_proposer_is_replaced(tmp_path):
    directory = tmp_path / "net"
    with devnet(directory, validators=4):
        for kind in ("kill", "pause", "partition"):
            code, report = drill(directory, kind, "--count", "2", "--window", "8")
            obs = report["observation"]
            assert code == 0 and report["passed"], (kind, report)
            assert obs["height_at_heal"] == obs["height_after_settle"], kind  # not one block
            assert obs["forks"] == []
            assert obs["recovery_first_block_s"] is not None
        code, report = drill(directory, "partition", "--window", "8")
        assert code == 0 and report["passed"], report
        code, report = drill(directory, "proposer-down")
        assert code == 0 and report["passed"], report
        assert any("round change" in c["what"] for c in report["checks"])
