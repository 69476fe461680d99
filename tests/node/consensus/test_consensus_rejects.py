"""The engine refuses forged, replayed, out-of-set and malformed messages, and changes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from consensus_sim import SimNet

from chain.attest.keys import LocalSigner
from chain.qbft import extra_data as xd
from chain.qbft import messages as m
from chain.qbft.block import Block
from chain.qbft.hashing import block_hash
from node.consensus import EngineConfig, Gossip, Multicast, Rejected


@pytest.fixture
def net() -> SimNet:
    """Four validators at height 2; node 0's engine works on height 3, round 0 not yet started."""
    net = SimNet(seed=11)
    net.start()
    assert net.run_until(lambda: min(net.heights()) >= 2, 30_000)
    return net


def rejections(out) -> list[str]:
    return [o.reason for o in out if isinstance(o, Rejected)]


def height_3_proposal(net: SimNet, **header_changes) -> tuple[LocalSigner, m.Proposal]:
    node = net.nodes[0]
    h = node.engine.h
    assert h is not None and h.height == 3
    proposer = next(s for s in net.signers if s.address == h.proposer(0))
    block = node.chain.create_block(h.parent, 0, h.parent.timestamp + 1, proposer.address, None)
    if header_changes:
        block = Block(replace(block.header, **header_changes), block.transactions, block.withdrawals)
    return proposer, m.Proposal.create(proposer, 3, 0, block)


def test_message_from_a_key_outside_the_validator_set_is_rejected_and_not_relayed(net):
    outsider = LocalSigner((0xBAD).to_bytes(32, "big"))
    out = net.inject(0, m.PREPARE, m.Prepare.create(outsider, 3, 0, bytes(32)).encode())
    assert any("not a validator" in r for r in rejections(out))
    assert not any(isinstance(o, Gossip) for o in out)


def test_forged_signature_is_rejected(net):
    prepare = m.Prepare.create(net.signers[1], 3, 0, bytes(32)).encode()
    forged = bytearray(prepare)
    forged[-10] ^= 0xFF  # inside the signature's s
    out = net.inject(0, m.PREPARE, bytes(forged))
    reasons = rejections(out)
    assert reasons and ("malformed" in reasons[0] or "not a validator" in reasons[0])
    assert not any(isinstance(o, Gossip) for o in out)


def test_proposal_signed_by_a_validator_that_is_not_the_proposer_is_rejected(net):
    _, good = height_3_proposal(net)
    impostor = next(s for s in net.signers if s.address not in (good.author, net.nodes[0].address))
    forged = m.Proposal.create(impostor, 3, 0, good.block)
    out = net.inject(0, m.PROPOSAL, forged.encode())
    assert any("the proposer of 3/0 is" in r for r in rejections(out))
    assert not any(isinstance(o, Multicast) for o in out)  # no PREPARE for it


@pytest.mark.parametrize(("change", "reason"), [
    ({"state_root": b"\x11" * 32}, "does not execute as it claims"),
    ({"mix_hash": bytes(32)}, "mixHash"),
    ({"timestamp": 2_000_000_000}, "in the future"),
    ({"number": 4}, "does not follow its parent"),
])
def test_proposal_with_an_invalid_block_is_rejected_with_the_rule_it_broke(net, change, reason):
    _, bad = height_3_proposal(net, **change)
    out = net.inject(0, m.PROPOSAL, bad.encode())
    assert any(reason in r for r in rejections(out)), rejections(out)
    assert not any(isinstance(o, Multicast) for o in out)


def test_proposal_whose_coinbase_is_not_its_proposer_is_rejected(net):
    proposer, _ = height_3_proposal(net)
    other = next(s for s in net.signers if s.address != proposer.address)
    _, bad = height_3_proposal(net, coinbase=other.address)
    bad = m.Proposal.create(proposer, 3, 0, bad.block)
    out = net.inject(0, m.PROPOSAL, bad.encode())
    assert any("coinbase" in r for r in rejections(out))


def test_commit_whose_seal_was_made_by_someone_else_is_rejected(net):
    _, proposal = height_3_proposal(net)
    assert not rejections(net.inject(0, m.PROPOSAL, proposal.encode()))
    digest = m.ProposalPayload(3, 0, proposal.block).digest
    sender, sealer = [s for s in net.signers if s.address != net.nodes[0].address][:2]
    commit = m.Commit.create(sender, 3, 0, digest, sealer.sign_digest(digest))
    out = net.inject(0, m.COMMIT, commit.encode())
    assert any("COMMIT seal was made by" in r for r in rejections(out))
    wrong_digest = m.Prepare.create(sender, 3, 0, b"\x22" * 32)
    assert any("digest" in r for r in rejections(net.inject(0, m.PREPARE, wrong_digest.encode())))


def test_replayed_messages_are_dropped_and_counted(net):
    node = net.nodes[1]
    old = [o for o in node.outputs if isinstance(o, Multicast)
           and m.decode(o.code, o.data).height == 1]
    assert old
    target = net.nodes[0].engine

    def dropped() -> int:
        return target.rejected["old height"] + target.rejected["duplicate"]

    before = dropped()
    for o in old:
        assert net.inject(0, o.code, o.data) == []
    assert dropped() == before + len(old)
    # Signed afresh, so not a duplicate: still for a height already on chain.
    stale = m.Prepare.create(net.signers[1], 2, 0, b"\x44" * 32).encode()
    before = target.rejected["old height"]
    assert net.inject(0, m.PREPARE, stale) == []
    assert target.rejected["old height"] == before + 1
    prepare = m.Prepare.create(net.signers[1], 3, 0, b"\x33" * 32).encode()
    assert net.inject(0, m.PREPARE, prepare) != []
    dups = target.rejected["duplicate"]
    assert net.inject(0, m.PREPARE, prepare) == []
    assert target.rejected["duplicate"] == dups + 1


def test_malformed_bytes_are_rejected_with_the_decoding_error(net):
    out = net.inject(0, m.COMMIT, b"\xc3\x01\x02\x03")
    assert any(r.startswith("malformed: COMMIT") for r in rejections(out))


def test_attacks_change_nothing_and_the_chain_goes_on(net):
    outsider = LocalSigner((0xBAD).to_bytes(32, "big"))
    for height in (3, 4):
        for i in range(4):
            net.inject(i, m.ROUND_CHANGE, m.RoundChange.create(outsider, height, 1).encode())
            net.inject(i, m.COMMIT, b"\x00garbage")
    assert net.run_until(lambda: min(net.heights()) >= 6, 30_000), net.describe()
    assert net.forks() == {}
    assert all(n.engine.round_changes == {} for n in net.nodes)


def test_future_height_messages_are_buffered_within_bounds_and_replayed():
    net = SimNet(seed=12)
    net.config = EngineConfig.from_genesis(net.genesis, future_messages_limit=3)
    net.nodes = [net._node(i, n.chain) for i, n in enumerate(net.nodes)]
    net.start()
    engine = net.nodes[0].engine
    sender = net.signers[1]
    # Height 1 is current: 12 is beyond futuremessagesmaxdistance (10) and is not kept.
    net.inject(0, m.PREPARE, m.Prepare.create(sender, 12, 0, bytes(32)).encode())
    assert engine.rejected["too far in the future"] == 1
    for height in (2, 3, 4, 5):
        net.inject(0, m.PREPARE, m.Prepare.create(sender, height, 0, bytes(32)).encode())
    # A limit of 3: the furthest height was evicted.
    assert engine.rejected["future buffer full"] == 1
    assert sorted(engine._future) == [2, 3, 4]
    assert net.run_until(lambda: net.nodes[0].height >= 1, 30_000)
    replayed = [o for o in net.nodes[0].outputs if isinstance(o, Gossip)
                and o.code == m.PREPARE and m.decode(o.code, o.data).height == 2
                and o.author == sender.address]
    assert len(replayed) >= 1, "the buffered height-2 PREPARE is handled when height 2 starts"


def test_two_different_heads_at_one_height_are_reported():
    net = SimNet(seed=13)
    net.start()
    assert net.run_until(lambda: min(net.heights()) >= 1, 30_000)
    node = net.nodes[0]
    head = node.chain.head
    other = head.with_extra_data(xd.encode(replace(xd.decode(head.extra_data), vanity=b"\x01" * 32)))
    assert block_hash(other) != block_hash(head)
    out = node.engine.new_head(other, net.now)
    assert [type(o).__name__ for o in out] == ["HeadConflict"]


def test_messages_for_endless_future_rounds_are_capped_and_consensus_goes_on(net):
    from node.consensus.height import MAX_FUTURE_ROUNDS

    spammer = net.signers[1]
    # Far rounds first: the near ones that timers reach must still be kept.
    for r in [*range(10_000, 10_000 + 2 * MAX_FUTURE_ROUNDS), *range(1, 2 * MAX_FUTURE_ROUNDS)]:
        net.inject(0, m.PREPARE, m.Prepare.create(spammer, 3, r, bytes(32)).encode())
        net.inject(0, m.ROUND_CHANGE, m.RoundChange.create(spammer, 3, r).encode())
    manager = net.nodes[0].engine.manager
    assert manager is not None
    assert len(manager.future_rounds) <= MAX_FUTURE_ROUNDS
    assert len(manager.round_changes.rounds) <= MAX_FUTURE_ROUNDS
    assert 1 in manager.round_changes.rounds and 1 in manager.future_rounds
    assert max(manager.future_rounds) < 10_000
    assert any("too many future rounds" in r for r in net.rejected(m.ROUND_CHANGE))
    assert net.run_until(lambda: min(net.heights()) >= 5, 30_000), net.describe()
    assert net.forks() == {}
