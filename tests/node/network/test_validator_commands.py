"""`smartta validator add|remove|rotate` on real multi-process networks: the set changes by
vote at a block that qbft_getValidatorsByBlockNumber reports, votes are discarded afterwards,
network.yaml follows the chain, and a rotation ends with the new key sealing and the old gone."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from devnet import PASSWORD, free_base_port, rpc, smartta, wait_height

from node.network import local
from node.network.init import default_spec, init_network
from node.network.spec import NetworkSpec, NodeSpec
from node.network.validators import committers

FAST = 2**10  # scrypt work factor for throwaway test keys


def _block_of(output: str, what: str) -> int:
    match = re.search(what + r"\s+at\s+block\s+(\d+)", output)
    assert match, output
    return int(match.group(1))


@contextmanager
def network_with_candidate(directory: Path) -> Iterator[NetworkSpec]:
    """Four genesis validators and validator-5, a node of the spec outside the genesis set."""
    base = free_base_port(5)
    spec = default_spec(directory.name, validators=4, observers=0, chain_id=4343, block_period=1,
                        request_timeout=None, organisation="ta", base_port=base, seeded=True)
    spec, genesis = init_network(directory, spec, PASSWORD, scrypt_n=FAST)
    spec.genesis_validators = ["0x" + v.hex() for v in genesis.validators]
    spec.organisations[0].nodes.append(NodeSpec(
        name="validator-5", roles=["validator"], p2p_port=30303 + base + 4,
        rpc_http_port=8545 + base + 40, rpc_ws_port=8546 + base + 40, metrics_port=9545 + base + 4))
    spec, again = init_network(directory, spec, PASSWORD, scrypt_n=FAST)
    assert again.hash == genesis.hash
    try:
        smartta("network", "up", "--dir", str(directory))
        yield spec
    finally:
        local.stop_nodes(directory, NetworkSpec.load(directory).nodes, timeout=20)


def validators_at(url: str, number: int) -> list[str]:
    return rpc(url, "qbft_getValidatorsByBlockNumber", hex(number))


def test_validator_added_then_removed_by_vote_at_the_heights_the_node_reports(tmp_path):
    directory = tmp_path / "votes"
    with network_with_candidate(directory) as spec:
        url = local.url_of(spec.node("validator-1"))
        candidate = spec.node("validator-5").address
        wait_height(url, 2, timeout=60)

        out = smartta("validator", "add", "validator-5", "--dir", str(directory), "--timeout", "120").stdout
        added = _block_of(out, "joined the validators")
        assert candidate not in validators_at(url, added - 1)
        assert candidate in validators_at(url, added) and len(validators_at(url, added)) == 5
        for n in spec.validators[:4]:
            assert rpc(local.url_of(n), "qbft_getPendingVotes") == {}, f"{n.name} kept its vote"
        assert "validator" in NetworkSpec.load(directory).node("validator-5").roles

        # The new validator takes part: it seals (or proposes) a block of the 5-validator set.
        head = wait_height(url, added + 6, timeout=60)
        blocks = [rpc(url, "eth_getBlockByNumber", hex(n), False) for n in range(added, head + 1)]
        assert any(b["miner"] == candidate or bytes.fromhex(candidate[2:]) in committers(b)
                   for b in blocks)

        out = smartta("validator", "remove", "validator-5", "--dir", str(directory),
                      "--timeout", "120").stdout
        removed = _block_of(out, "left the validators")
        assert removed > added
        assert candidate in validators_at(url, removed - 1)
        assert candidate not in validators_at(url, removed) and len(validators_at(url, removed)) == 4
        for n in spec.validators[:5]:
            assert rpc(local.url_of(n), "qbft_getPendingVotes") == {}
        wait_height(url, removed + 3, timeout=30)  # the chain goes on with four
        after = NetworkSpec.load(directory)
        assert after.node("validator-5").roles == ["observer"]
        assert len(after.validators) == 4

        # Removing another would leave three: refused, and nothing is voted.
        refused = smartta("validator", "remove", "validator-1", "--dir", str(directory), check=False)
        assert refused.returncode != 0 and "would leave 3 validators" in refused.stderr
        assert rpc(url, "qbft_getPendingVotes") == {}


@pytest.mark.slow
def test_rotation_ends_with_the_new_key_sealing_and_the_old_one_gone_without_a_stall(tmp_path):
    directory = tmp_path / "rotate"
    with network_with_candidate(directory):
        pass  # only the folder; this test rotates on a plain 4-validator network
    for node in NetworkSpec.load(directory).nodes:
        assert local.running_pid(directory, node) is None
    spec = NetworkSpec.load(directory)
    for org in spec.organisations:  # drop the candidate: rotate creates its own node
        org.nodes = [n for n in org.nodes if n.name != "validator-5"]
    spec.save(directory)
    (directory / "keys" / "validator-5").rename(tmp_path / "unused-key")
    spec, _ = init_network(directory, spec, PASSWORD, scrypt_n=FAST)
    old = spec.node("validator-2")
    try:
        smartta("network", "up", "--dir", str(directory))
        url = local.url_of(spec.node("validator-1"))
        start = wait_height(url, 3, timeout=60)

        out = smartta("validator", "rotate", "validator-2", "--dir", str(directory),
                      "--timeout", "150").stdout
        after = NetworkSpec.load(directory)
        new = next(n for n in after.validators if n.name not in {v.name for v in spec.validators})
        assert "validator-2" not in {n.name for n in after.nodes}
        assert local.running_pid(directory, old) is None
        assert not (directory / "keys" / "validator-2").exists()
        assert list((directory / "keys" / "retired").glob("validator-2-*/key.json"))
        removed = _block_of(out, "the old key left")

        head = wait_height(url, removed + 8, timeout=60)
        live_set = validators_at(url, head)
        assert old.address not in live_set and new.address in live_set and len(live_set) == 4
        blocks = [rpc(url, "eth_getBlockByNumber", hex(n), False) for n in range(start, head + 1)]
        tail = [b for b in blocks if int(b["number"], 16) > removed]
        new_key = bytes.fromhex(new.address[2:])
        assert any(b["miner"] == new.address or new_key in committers(b) for b in tail)
        assert not any(b["miner"] == old.address for b in tail)
        # Never stalled: no gap between blocks beyond one round timeout.
        times = [int(b["timestamp"], 16) for b in blocks]
        timeout = after.consensus.request_timeout_seconds
        assert max(b - a for a, b in itertools.pairwise(times)) <= timeout

        doctor = smartta("network", "doctor", "--dir", str(directory), check=False)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    finally:
        local.stop_nodes(directory, [*NetworkSpec.load(directory).nodes, old], timeout=20)
