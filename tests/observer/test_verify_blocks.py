"""Block verification against a hostile node: the honest chain verifies; every tamper vector in
tests/data/observer/tampers.json is detected and named exactly (block, check, reason)."""

from __future__ import annotations

import re

import pytest
from conftest import run_verifier
from devchain import ChainBuilder, standard_chain
from tampers import apply, vectors

from chain.qbft import extra_data as xd
from observer.blocks import ChainTracker


def test_honest_chain_verifies_with_its_vote_driven_validator_change(chain16, node_factory):
    node = node_factory(chain16)
    report = run_verifier(chain16.genesis, [node.url])
    assert report.failure is None, report.failure
    assert (report.first, report.last, report.blocks) == (1, 16, 16)
    assert [len(c.validators) for c in _changes(chain16)] == [4, 5]
    # Rotating quorums: every validator of the final set proposed and sealed something.
    assert len(report.activity) == 5
    assert report.seals == sum(v[1] for v in report.activity.values())


def _changes(chain):
    tracker = ChainTracker.start(chain.genesis)
    tracker.prepare(1, [b.rpc() for b in chain.blocks[1:]])
    return tracker.history.changes


@pytest.mark.parametrize("vector", vectors("blocks"), ids=lambda v: v["name"])
def test_tampered_block_is_detected_and_named(vector, chain16, node_factory):
    node = node_factory(chain16)
    apply(node, chain16, vector)
    report = run_verifier(chain16.genesis, [node.url])
    expect = vector["expect"]
    assert report.failure is not None, f"{vector['name']} went unnoticed"
    assert (report.failure.block, report.failure.check) == (expect["block"], expect["check"]), \
        str(report.failure)
    assert re.search(re.escape(expect["message"]), report.failure.message), str(report.failure)
    # Nothing at or after the tampered block counts as verified.
    assert report.last < expect["block"] or expect["block"] == 0


def test_reordered_seals_and_a_superset_of_seals_verify(chain16, node_factory):
    node = node_factory(chain16)
    block = node.blocks[9]
    extra = xd.decode(bytes.fromhex(block["extraData"][2:]))
    block["extraData"] = "0x" + xd.encode(extra.with_seals(tuple(reversed(extra.seals)))).hex()
    assert run_verifier(chain16.genesis, [node.url]).failure is None


def test_validator_added_without_a_vote_is_refused(node_factory):
    b = ChainBuilder()
    b.extend(3)
    intruder = b.spare[1]
    listed = (*b.history.validators_for(4), intruder)
    # Listed and sealing, including by the intruder's own key, but never voted in.
    b.add(validators=listed, signers=sorted(listed)[:4])
    b.extend(2)
    chain = b.chain()
    report = run_verifier(chain.genesis, [node_factory(chain).url])
    assert report.failure is not None
    assert (report.failure.block, report.failure.check) == (4, "validators")
    assert "unexpected ['0x" + intruder.hex() in report.failure.message


def test_genesis_of_another_network_is_refused(node_factory):
    ours = standard_chain(4)
    theirs = ChainBuilder(validators=5).chain()
    report = run_verifier(ours.genesis, [node_factory(theirs).url])
    assert report.failure is not None
    assert (report.failure.block, report.failure.check) == (0, "genesis")


def test_node_without_batch_support_is_read_one_call_at_a_time(chain16, node_factory):
    node = node_factory(chain16)
    node.batches = False
    assert run_verifier(chain16.genesis, [node.url]).blocks == 16
