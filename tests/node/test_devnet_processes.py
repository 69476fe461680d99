"""The node as OS processes: `smartta network init` + `up` give a 4-validator network whose
every block verifies independently, with an observer node that syncs and verifies too."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from devnet import PASSWORD, block_hashes, devnet, rpc, status, wait_height

from chain.qbft.genesis import Genesis
from node.network import local


def test_four_validators_and_an_observer_agree_and_every_block_verifies(tmp_path):
    directory = tmp_path / "net"
    with devnet(directory, validators=4, observers=1) as spec:
        urls = {n.name: local.url_of(n) for n in spec.nodes}
        head = wait_height(urls["validator-1"], 6, timeout=90)
        for url in urls.values():
            wait_height(url, head, timeout=30)
        chains = {name: block_hashes(url, head) for name, url in urls.items()}
        assert len({tuple(c) for c in chains.values()}) == 1, "nodes disagree on a block hash"
        genesis = Genesis.load(directory / "genesis.json")
        assert chains["validator-1"][0] == "0x" + genesis.hash.hex()
        # A regulator's independent check: every seal, link and validator set from the genesis.
        report = tmp_path / "report.json"
        result = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "smartta-observer"), "verify",
             "--rpc", urls["validator-1"], "--rpc", urls["observer-1"], "--genesis",
             str(directory / "genesis.json"), "--to", str(head), "--no-checkpoint", "--quiet",
             "--report", str(report)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        verified = json.loads(report.read_text())
        assert verified["ok"] is True
        times = [int(rpc(urls["validator-1"], "eth_getBlockByNumber", hex(n), False)["timestamp"], 16)
                 for n in range(1, head + 1)]
        assert all(b - a >= 1 for a, b in itertools.pairwise(times))
        nodes = {n["name"]: n for n in status(directory)["nodes"]}
        assert nodes["observer-1"]["peers"] >= 4 and nodes["validator-1"]["pid"]
        # The observer serves reads and refuses writes.
        with pytest.raises(local.LiveError, match="(?i)read-only|not allowed|observer"):
            rpc(urls["observer-1"], "eth_sendRawTransaction", "0x02")


@pytest.mark.slow
def test_validator_killed_at_random_points_restarts_consistent_and_catches_up(tmp_path):
    directory = tmp_path / "net"
    with devnet(directory, validators=4) as spec:
        victim = spec.node("validator-2")
        url = local.url_of(spec.node("validator-1"))
        wait_height(url, 3, timeout=90)
        env = {**os.environ, "SMARTTA_KEYSTORE_PASSWORD": PASSWORD}
        for i in range(5):
            time.sleep(0.3 + 0.37 * i)
            pid = local.running_pid(directory, victim)
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            local.stop_nodes(directory, [victim], timeout=5)
            local.start_node(directory, victim, env)
        head = wait_height(url, int(rpc(url, "eth_blockNumber"), 16) + 3, timeout=90)
        wait_height(local.url_of(victim), head, timeout=90)
        assert block_hashes(local.url_of(victim), head) == block_hashes(url, head)
