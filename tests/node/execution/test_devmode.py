"""Development mode: a single validator sealing its own blocks, anvil/Hardhat controls."""

from __future__ import annotations

import itertools

import pytest

from chain.attest.keys import LocalSigner
from chain.qbft.verify import verify_header
from node.execution.devmode import DevChain

from .devnet import PROBE_CODE, USERS, addr, call_data, genesis, open_chain, sign, signers

NOW = 1_800_000_000


@pytest.fixture
def dev(tmp_path):
    chain = open_chain(tmp_path / "node", genesis(1))
    return DevChain(chain, signers(1)[0], clock=lambda: NOW)


def test_automine_seals_a_block_per_transaction_that_verifies_with_chain_qbft(dev):
    chain = dev.chain
    for i in range(3):
        dev.pool.add(sign(USERS[1], nonce=i, to=b"\x01" * 20, gas=21_000))
    assert chain.head.number == 3 and len(chain.pool) == 0
    for n in range(1, 4):
        header, parent = chain.header(n), chain.header(n - 1)
        sealed = verify_header(header, parent, chain.validators_for(n), parent_hash=chain.hash_of(n - 1))
        assert sealed.committers == (dev.signer.address,)
        assert len(chain.block(n).transactions) == 1


def test_a_transaction_behind_a_nonce_gap_waits_without_mining(dev):
    dev.pool.add(sign(USERS[1], nonce=1, to=b"\x01" * 20, gas=21_000))
    assert dev.chain.head.number == 0 and len(dev.chain.pool) == 1
    dev.pool.add(sign(USERS[1], nonce=0, to=b"\x01" * 20, gas=21_000))
    assert dev.chain.pool.pending_nonce(addr(USERS[1])) == 2 and len(dev.chain.pool) == 0


def test_revert_restores_head_state_and_forgets_later_snapshots(dev):
    chain = dev.chain
    dev.pool.add(sign(USERS[0], nonce=0, data=PROBE_CODE, gas=3_000_000))
    probe = chain.receipts(1)[0].contract_address
    first = dev.snapshot()
    dev.pool.add(sign(USERS[1], nonce=0, to=probe, data=call_data("bump(bytes32)", b"a" * 32)))
    second = dev.snapshot()
    tx = sign(USERS[1], nonce=1, to=probe, data=call_data("bump(bytes32)", b"b" * 32))
    tx_hash = dev.pool.add(tx)
    assert chain.storage_at(probe, 0, chain.head.number) == 2
    assert dev.revert(first) is True
    assert chain.head.number == 1 and chain.storage_at(probe, 0, 1) == 0
    assert chain.transaction(tx_hash) is None and chain.header(2) is None
    assert dev.revert(second) is False  # dropped with the one reverted to
    # the chain goes on from the snapshot; the same nonce is usable again
    dev.pool.add(sign(USERS[1], nonce=0, to=probe, data=call_data("bump(bytes32)", b"c" * 32)))
    assert chain.head.number == 2 and chain.storage_at(probe, 0, 2) == 1


def test_revert_survives_a_restart(dev):
    chain = dev.chain
    dev.pool.add(sign(USERS[1], nonce=0, to=b"\x01" * 20, gas=21_000))
    snap = dev.snapshot()
    dev.pool.add(sign(USERS[1], nonce=1, to=b"\x01" * 20, gas=21_000))
    dev.revert(snap)
    chain.close()
    again = open_chain(chain.store.path, chain.genesis)
    assert again.head.number == 1 and again.account(addr(USERS[1]), 1).nonce == 1


def test_mine_with_timestamp_interval_and_time_travel(dev):
    chain = dev.chain
    dev.mine(3, timestamp=NOW + 100, interval=10)
    assert [chain.header(n).timestamp for n in (1, 2, 3)] == [NOW + 100, NOW + 110, NOW + 120]
    assert dev.increase_time(3600) == 3600
    dev.mine()
    assert chain.head.timestamp == NOW + 3600  # the clock plus the offset (not behind the head)
    dev.set_next_block_timestamp(NOW + 5000)
    dev.mine()
    assert chain.head.timestamp == NOW + 5000
    with pytest.raises(ValueError, match="after the head"):
        dev.set_next_block_timestamp(NOW + 5000)
    with pytest.raises(ValueError, match="blockperiodseconds"):
        dev.mine(2, interval=0)


def test_blocks_keep_the_block_period_when_mined_faster_than_the_clock(dev):
    for _ in range(3):
        dev.mine()
    stamps = [dev.chain.header(n).timestamp for n in (0, 1, 2, 3)]
    assert all(b - a >= 1 for a, b in itertools.pairwise(stamps))


def test_rewinding_a_multi_validator_chain_is_refused(tmp_path):
    chain = open_chain(tmp_path, genesis(4))
    with pytest.raises(ValueError, match="multi-validator"):
        chain.rewind(0)
    with pytest.raises(ValueError, match="only validator"):
        DevChain(chain, signers(4)[0])


def test_dev_mode_needs_the_validator_key(tmp_path):
    chain = open_chain(tmp_path, genesis(1))
    with pytest.raises(ValueError, match="only validator"):
        DevChain(chain, LocalSigner(b"\x33" * 32))
