"""QBFT under a simulated network: liveness, safety, round changes and votes, in virtual time."""

from __future__ import annotations

import pytest
from consensus_sim import T0, SimNet, SimNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.qbft import extra_data as xd
from chain.qbft import messages as m
from chain.qbft.hashing import block_hash
from chain.qbft.proposer import select_proposer
from chain.qbft.quorum import quorum
from chain.qbft.verify import verify_header
from node.consensus import Fault, Multicast, ProposalMissed, RoundChanged


def assert_one_verified_chain(net: SimNet, nodes: list[SimNode] | None = None) -> None:
    """Every node holds a prefix of one chain, and every header verifies with chain/qbft alone
    against the validators after its parent, with at least a quorum of seals."""
    nodes = nodes if nodes is not None else net.nodes
    assert net.forks() == {}
    longest = max(nodes, key=lambda n: n.height).chain
    for node in nodes:
        assert node.chain.hashes == longest.hashes[: node.height + 1]
    for i in range(1, len(longest.blocks)):
        header, parent = longest.blocks[i].header, longest.blocks[i - 1].header
        validators = longest.view.history.validators_for(i)
        sealed = verify_header(header, parent, validators,
                               block_period_seconds=net.genesis.qbft.block_period_seconds)
        assert len(sealed.committers) >= quorum(len(validators))


def proposals(node: SimNode) -> list[m.Proposal]:
    return [m.Proposal.decode(o.data) for o in node.outputs
            if isinstance(o, Multicast) and o.code == m.PROPOSAL]


def test_four_validators_commit_a_block_every_period_with_quorum_seals():
    net = SimNet(seed=1)
    net.start()
    assert net.run_until(lambda: min(net.heights()) >= 10, 60_000)
    assert_one_verified_chain(net)
    chain = net.nodes[0].chain
    validators = sorted(s.address for s in net.signers)
    for i in range(1, 11):
        header = chain.blocks[i].header
        assert header.timestamp == T0 + i  # one block per blockperiodseconds, no round changes
        assert xd.decode(header.extra_data).round == 0
        assert header.coinbase == select_proposer(validators, chain.blocks[i - 1].header.coinbase, 0)
    assert all(not n.engine.round_changes for n in net.nodes)


def test_lossy_reordering_duplicating_network_still_commits_one_chain():
    net = SimNet(seed=7, drop=0.05, duplicate=0.3, delay_ms=(1, 400))
    net.start()
    assert net.run_until(lambda: min(net.heights()) >= 8, 120_000), net.describe()
    assert_one_verified_chain(net)


def test_one_of_four_down_blocks_continue():
    net = SimNet(seed=2)
    net.start()
    net.crash(2)
    assert net.run_until(lambda: net.nodes[0].height >= 8, 120_000), net.describe()
    alive = [n for n in net.nodes if n.alive]
    assert_one_verified_chain(net, alive)
    # Heights whose round-0 proposer was the dead node committed in round 1, by the next proposer.
    chain = net.nodes[0].chain
    dead = net.nodes[2].address
    skipped = [i for i in range(1, 9) if chain.blocks[i].header.coinbase != select_proposer(
        chain.view.history.validators_for(i), chain.blocks[i - 1].header.coinbase, 0)]
    assert skipped, "the dead validator's turns must have been taken over"
    for i in skipped:
        assert xd.decode(chain.blocks[i].header.extra_data).round >= 1
        assert chain.blocks[i].header.coinbase != dead
    assert all(n.engine.missed_proposals.get(dead, 0) >= len(skipped) for n in alive)


def test_two_of_four_down_no_block_no_fork_then_all_resume_on_one_chain():
    net = SimNet(seed=3)
    net.start()
    assert net.run_until(lambda: min(net.heights()) >= 3, 30_000)
    net.crash(1)
    net.crash(3)
    stalled = max(net.heights())
    net.run_for(30_000)
    assert max(n.height for n in net.nodes if n.alive) <= stalled + 1
    # At most the block already in flight when they died; then nothing.
    stuck = [n.height for n in net.nodes]
    net.run_for(20_000)
    assert [n.height for n in net.nodes] == stuck
    net.restart(1)
    net.restart(3)
    target = max(stuck) + 3
    assert net.run_until(lambda: min(net.heights()) >= target, 300_000), net.describe()
    assert_one_verified_chain(net)


def test_proposer_down_round_change_and_next_proposer_commits():
    net = SimNet(seed=4)
    net.start()
    assert net.run_until(lambda: min(net.heights()) >= 2, 30_000)
    chain = net.nodes[0].chain
    validators = chain.view.history.validators_for(3)
    p0 = select_proposer(validators, chain.head.coinbase, 0)
    p1 = select_proposer(validators, chain.head.coinbase, 1)
    net.crash(net.by_address[p0].index)
    alive = [n for n in net.nodes if n.alive]
    assert net.run_until(lambda: min(n.height for n in alive) >= 3, 30_000), net.describe()
    block3 = alive[0].chain.blocks[3].header
    assert xd.decode(block3.extra_data).round == 1
    assert block3.coinbase == p1
    for n in alive:
        assert n.engine.round_changes.get((3, 1)) == 1
        assert n.engine.missed_proposals.get(p0) == 1
        assert any(isinstance(o, RoundChanged) and (o.height, o.round) == (3, 1) for o in n.outputs)
        assert any(isinstance(o, ProposalMissed) and o.proposer == p0 for o in n.outputs)
    assert_one_verified_chain(net, alive)


def test_prepared_block_is_reproposed_after_round_change_keeping_its_builder():
    net = SimNet(seed=5)

    def no_round0_commits_at_height_1(src, dst, code, data):
        if code == m.COMMIT:
            c = m.Commit.decode(data)
            if (c.height, c.round) == (1, 0):
                return []
        return [(code, data)]

    for node in net.nodes:
        node.tamper = no_round0_commits_at_height_1
    net.start()
    assert net.run_until(lambda: min(net.heights()) >= 1, 60_000), net.describe()
    first = [p for n in net.nodes for p in proposals(n) if (p.height, p.round) == (1, 0)]
    second = [p for n in net.nodes for p in proposals(n) if (p.height, p.round) == (1, 1)]
    assert len(first) == 1 and len(second) == 1
    original, reproposal = first[0], second[0]
    # Every node prepared round 0, so the round-1 proposer re-proposed that very block, justified
    # by a quorum of ROUND_CHANGEs and the PREPAREs of round 0; only the round differs.
    assert len(reproposal.round_changes) >= 3 and len(reproposal.prepares) >= 3
    assert reproposal.author != original.author
    assert reproposal.block.header.coinbase == original.block.header.coinbase == original.author
    assert block_hash(reproposal.block.header) == block_hash(original.block.header)
    committed = net.nodes[0].chain.blocks[1].header
    assert block_hash(committed) == block_hash(original.block.header)
    assert xd.decode(committed.extra_data).round == 1
    assert_one_verified_chain(net)


def test_validator_added_then_removed_by_vote():
    net = SimNet(validators=4, extra_nodes=1, seed=6)
    newcomer = net.nodes[4]
    for node in net.nodes[:4]:
        node.engine.votes.propose(newcomer.address, True)
    net.start()
    history = net.nodes[0].chain.view.history
    assert net.run_until(lambda: newcomer.address in history.validators_after(history.head), 60_000)
    added_at = history.head + 1
    # The newcomer seals from the next height on: 5 validators, quorum 4.
    assert net.run_until(lambda: min(n.height for n in net.nodes) >= added_at + 5, 60_000), net.describe()
    committers = {c for i in range(added_at, added_at + 5)
                  for c in verify_header(net.nodes[0].chain.blocks[i].header,
                                         net.nodes[0].chain.blocks[i - 1].header,
                                         history.validators_for(i)).committers}
    assert newcomer.address in committers
    assert newcomer.engine.is_validator
    for node in net.nodes[:4]:
        node.engine.votes.discard(newcomer.address)
        node.engine.votes.propose(newcomer.address, False)
    assert net.run_until(lambda: newcomer.address not in history.validators_after(history.head),
                         60_000)
    removed_at = history.head + 1
    assert net.run_until(lambda: min(n.height for n in net.nodes) >= removed_at + 3, 60_000)
    assert history.validators_for(added_at - 1) == tuple(sorted(s.address for s in net.signers[:4]))
    assert newcomer.address in history.validators_for(added_at)
    assert newcomer.address not in history.validators_for(removed_at)
    assert not newcomer.engine.is_validator
    assert_one_verified_chain(net)


def test_equivocating_proposer_cannot_fork_the_chain():
    net = SimNet(seed=8)
    liar = net.nodes[0]

    def equivocate(src, dst, code, data):
        if code != m.PROPOSAL:
            return [(code, data)]
        p = m.Proposal.decode(data)
        if dst.index % 2 == 0:
            return [(code, data)]
        # Odd receivers get a different, equally well-formed block for the same round.
        extra = xd.decode(p.block.header.extra_data)
        other = xd.ExtraData(b"\x01" * 32, extra.validators, extra.vote, extra.round, ())
        block = type(p.block)(p.block.header.with_extra_data(xd.encode(other)), p.block.transactions,
                              p.block.withdrawals)
        forged = m.Proposal.create(src.signer, p.height, p.round, block,
                                   round_changes=p.round_changes, prepares=p.prepares)
        return [(code, forged.encode())]

    liar.tamper = equivocate
    net.start()
    assert net.run_until(lambda: min(n.height for n in net.nodes[1:]) >= 8, 200_000), net.describe()
    assert_one_verified_chain(net)
    # Neither half could prepare the liar's blocks: its turns went to the next proposer.
    chain = net.nodes[1].chain
    liar_turns = [i for i in range(1, 9) if select_proposer(
        chain.view.history.validators_for(i), chain.blocks[i - 1].header.coinbase, 0) == liar.address]
    assert liar_turns
    for i in liar_turns:
        assert xd.decode(chain.blocks[i].header.extra_data).round >= 1
        assert chain.blocks[i].header.coinbase != liar.address


FAULTS = dict(
    seed=st.integers(0, 2**32), faulty=st.integers(0, 3),
    fault=st.sampled_from(["crash", "crash_restart", "equivocate", "isolate", "mute_commits"]),
    drop=st.floats(0, 0.3), duplicate=st.floats(0, 0.3), max_delay=st.integers(1, 800),
    t_fault=st.integers(0, 8_000), t_back=st.integers(1_000, 10_000))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**FAULTS)
def test_random_faults_within_f_never_commit_two_blocks_at_one_height(
        seed, faulty, fault, drop, duplicate, max_delay, t_fault, t_back):
    run_with_fault(seed, faulty, fault, drop, duplicate, max_delay, t_fault, t_back)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**FAULTS)
def test_soak_random_faults_within_f_never_commit_two_blocks_at_one_height(
        seed, faulty, fault, drop, duplicate, max_delay, t_fault, t_back):
    run_with_fault(seed, faulty, fault, drop, duplicate, max_delay, t_fault, t_back)


def run_with_fault(seed, faulty, fault, drop, duplicate, max_delay, t_fault, t_back):
    net = SimNet(seed=seed, drop=drop, duplicate=duplicate, delay_ms=(1, max_delay))
    bad = net.nodes[faulty]
    if fault == "equivocate":
        def lie(src, dst, code, data):
            if code != m.PROPOSAL or dst.index % 2:
                return [(code, data)]
            p = m.Proposal.decode(data)
            extra = xd.decode(p.block.header.extra_data)
            other = xd.ExtraData(bytes([dst.index + 1]) * 32, extra.validators, extra.vote,
                                 extra.round, ())
            block = type(p.block)(p.block.header.with_extra_data(xd.encode(other)),
                                  p.block.transactions, p.block.withdrawals)
            return [(code, m.Proposal.create(src.signer, p.height, p.round, block,
                                             round_changes=p.round_changes,
                                             prepares=p.prepares).encode())]
        bad.tamper = lie
    elif fault == "mute_commits":
        bad.tamper = lambda src, dst, code, data: [] if code == m.COMMIT else [(code, data)]
    net.start()
    net.run_for(t_fault)
    if fault in ("crash", "crash_restart"):
        net.crash(faulty)
    elif fault == "isolate":
        net.partition({faulty}, set(range(4)) - {faulty})
    net.run_for(t_back)
    if fault == "crash_restart":
        net.restart(faulty)
    elif fault == "isolate":
        net.heal()
    net.run_for(20_000)
    assert net.forks() == {}
    assert_one_verified_chain(net)


def test_empty_blocks_wait_for_the_empty_block_period_and_transactions_do_not():
    # Round timers longer than the empty-block period, so that waiting is no round change.
    net = SimNet(seed=9, empty_block_period_s=3, request_timeout_s=10)
    net.start()
    assert net.run_until(lambda: min(net.heights()) >= 3, 60_000)
    chain = net.nodes[0].chain
    gaps = [chain.blocks[i].header.timestamp - chain.blocks[i - 1].header.timestamp
            for i in range(2, 4)]
    assert gaps == [3, 3]
    for node in net.nodes:
        node.chain.pending_txs = [b"\x02" + b"\x00" * 10]
    h = max(net.heights())
    assert net.run_until(lambda: min(net.heights()) >= h + 3, 60_000)
    assert [chain.blocks[i].header.timestamp - chain.blocks[i - 1].header.timestamp
            for i in range(h + 2, h + 4)] == [1, 1]
    assert_one_verified_chain(net)


def test_proposer_whose_block_creation_fails_is_covered_by_a_round_change():
    net = SimNet(seed=10)
    net.start()
    assert net.run_until(lambda: min(net.heights()) >= 1, 30_000)
    chain = net.nodes[0].chain
    p0 = select_proposer(chain.view.history.validators_for(2), chain.head.coinbase, 0)
    broken = net.by_address[p0]

    def fail(*args, **kwargs):
        raise RuntimeError("execution layer unavailable")

    broken.chain.create_block = fail  # type: ignore[method-assign]
    assert net.run_until(lambda: min(n.height for n in net.nodes if n is not broken) >= 2, 30_000)
    assert any(isinstance(o, Fault) and "execution layer unavailable" in o.error
               for o in broken.outputs)
    block2 = net.nodes[(broken.index + 1) % 4].chain.blocks[2].header
    assert xd.decode(block2.extra_data).round == 1
    assert_one_verified_chain(net)
