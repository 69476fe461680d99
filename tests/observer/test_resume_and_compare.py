"""Checkpoints (resume, rewritten history, untrusted checkpoint files), node comparison
(equivocation evidence, normal seal-set differences, a lying second node), and the parallel
pipeline on a longer chain."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import run_verifier
from devchain import ChainBuilder, rotating_quorum
from hostile import HostileNode
from tampers import apply

from chain.qbft import extra_data as xd
from observer.checkpoint import CheckpointError, CheckpointStore


def _store(tmp_path, genesis):
    return CheckpointStore.for_genesis(genesis.hash, tmp_path / "state")


def test_second_run_resumes_after_the_checkpoint(chain16, node_factory, tmp_path):
    node = node_factory(chain16)
    store = _store(tmp_path, chain16.genesis)
    node.head = 10
    first = run_verifier(chain16.genesis, [node.url], store=store)
    assert (first.failure, first.last, first.resumed_from) == (None, 10, None)
    node.head = None
    second = run_verifier(chain16.genesis, [node.url], store=store)
    assert second.failure is None
    assert second.resumed_from is not None and second.resumed_from[0] == 10
    assert (second.first, second.last, second.blocks) == (11, 16, 6)
    # The signing activity of the first run is carried over, not lost.
    assert sum(v[0] for v in second.activity.values()) == 16


def _forked(chain_blocks: int, fork_at: int):
    """An honest chain and, from the same validators, another block at ``fork_at`` on."""
    honest = ChainBuilder()
    honest.extend(fork_at - 1)
    fork = copy.deepcopy(honest)
    honest.extend(chain_blocks - fork_at + 1)
    fork.add(salt=b"fork")
    fork.extend(chain_blocks - fork_at)
    return honest.chain(), fork.chain()


def test_node_serving_a_different_block_at_a_verified_height_is_named(node_factory, tmp_path):
    honest, fork = _forked(12, 8)
    store = _store(tmp_path, honest.genesis)
    assert run_verifier(honest.genesis, [node_factory(honest).url], store=store).last == 12
    report = run_verifier(honest.genesis, [node_factory(fork).url], store=store)
    assert report.failure is not None
    assert (report.failure.block, report.failure.check) == (12, "history")
    assert "rewrote verified history" in report.failure.message


def test_edited_checkpoint_is_not_trusted(chain16, node_factory, tmp_path):
    node = node_factory(chain16)
    store = _store(tmp_path, chain16.genesis)
    run_verifier(chain16.genesis, [node.url], store=store, to=10)
    data = json.loads(store.path.read_text())
    data["body"]["block"]["number"] = 12
    store.path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="edited"):
        run_verifier(chain16.genesis, [node.url], store=store)


def test_checkpoint_from_another_installation_is_not_trusted(chain16, node_factory, tmp_path):
    node = node_factory(chain16)
    theirs = _store(tmp_path / "theirs", chain16.genesis)
    run_verifier(chain16.genesis, [node.url], store=theirs, to=10)
    ours = _store(tmp_path / "ours", chain16.genesis)
    ours.path.parent.mkdir(parents=True)
    ours.path.write_bytes(theirs.path.read_bytes())
    with pytest.raises(CheckpointError, match="not written by this installation"):
        run_verifier(chain16.genesis, [node.url], store=ours)


def test_from_without_checkpoint_says_which_blocks_were_not_seal_checked(chain16, node_factory):
    node = node_factory(chain16)
    apply(node, chain16, {"kind": "drop-seal", "block": 3})
    report = run_verifier(chain16.genesis, [node.url], from_block=8)
    assert report.failure is None  # block 3 lies before --from: linked, tallied, not sealed
    assert report.unsealed_prefix == (1, 7)
    assert (report.first, report.last, report.blocks) == (8, 16, 9)


def test_two_validly_sealed_blocks_at_one_height_are_equivocation_evidence(node_factory):
    honest, fork = _forked(12, 8)
    a, b = node_factory(honest), node_factory(fork)
    report = run_verifier(honest.genesis, [a.url, b.url])
    assert report.failure is None
    assert [e.height for e in report.evidence] == [8]
    evidence = report.evidence[0].to_json()
    assert evidence["blocks"][0]["hash"] != evidence["blocks"][1]["hash"]
    # Both quorums came from the same four validators: at least two signed both blocks.
    assert len(evidence["double_signers"]) >= 2
    assert report.last == 12  # the first node's chain is still verified to its head


def test_different_seal_sets_for_one_block_are_not_reported(chain16, node_factory):
    builder = ChainBuilder(signers=lambda n, v: list(v))  # every validator seals every block
    builder.extend(3)
    builder.vote_in(builder.spare[0])
    builder.extend(6)
    everyone = builder.chain()
    a, b = node_factory(everyone), node_factory(everyone)
    for n in range(1, len(b.blocks)):
        # Node b holds another quorum of seals, in another order: the same blocks.
        extra = xd.decode(bytes.fromhex(b.blocks[n]["extraData"][2:]))
        keep = rotating_quorum(n, extra.validators)
        seals = tuple(reversed([s for s, v in zip(extra.seals, extra.validators, strict=True)
                                if v in keep]))
        b.blocks[n]["extraData"] = "0x" + xd.encode(extra.with_seals(seals)).hex()
    report = run_verifier(everyone.genesis, [a.url, b.url])
    assert (report.failure, report.evidence) == (None, [])


def test_second_node_serving_an_invalid_other_block_is_named(chain16, node_factory):
    a = node_factory(chain16)
    b = node_factory(chain16)
    apply(b, chain16, {"kind": "header-field", "block": 9, "field": "stateRoot"})
    report = run_verifier(chain16.genesis, [a.url, b.url])
    assert report.failure is not None
    assert (report.failure.block, report.failure.check, report.failure.source) == (9, "fork", b.url)
    assert report.evidence == []


@pytest.fixture(scope="module")
def long_chain():
    b = ChainBuilder()
    b.extend(200)
    b.vote_in(b.spare[0])
    b.extend(700)
    return b.chain()


def test_parallel_verification_of_a_long_chain_names_the_first_failure(long_chain):
    with HostileNode(long_chain) as node:
        clean = run_verifier(long_chain.genesis, [node.url], jobs=2, chunk=64)
        assert clean.failure is None and clean.blocks == len(long_chain.blocks) - 1
        apply(node, long_chain, {"kind": "foreign-seal", "block": 777})
        apply(node, long_chain, {"kind": "drop-seal", "block": 801})
        report = run_verifier(long_chain.genesis, [node.url], jobs=2, chunk=64)
    assert report.failure is not None
    assert (report.failure.block, report.failure.check) == (777, "seals")
    assert report.last == 776
