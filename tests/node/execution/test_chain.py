"""The chain as consensus and RPC use it: blocks built, validated and imported with QBFT's
header conventions and seal rules, each executed once, and everything readable afterwards."""

from __future__ import annotations

import dataclasses

import pytest
import rlp
from eth_utils import keccak
from trie import HexaryTrie

from chain.execution import executor as executor_module
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.genesis import EMPTY_REQUESTS_HASH, AllocAccount, QbftSettings
from chain.qbft.hashing import block_hash
from chain.qbft.header import BFT_MIX_HASH, EMPTY_TRIE_ROOT, ZERO_HASH
from chain.qbft.verify import verify_header
from node.abc import BlockInvalid, CallRequest, LogFilter
from node.execution.chain import UnknownBlock
from node.store.chaindb import StoreError

from .devnet import (
    PROBE_CODE,
    USERS,
    addr,
    call_data,
    genesis,
    open_chain,
    produce,
    seal_with,
    sign,
    signers,
)

BUMPED = keccak(b"Bumped(address,uint256,bytes32)")


@pytest.fixture
def four(tmp_path):
    """A 4-validator chain with the Probe contract deployed in block 1."""
    chain = open_chain(tmp_path / "node", genesis(4))
    keys = signers(4)
    chain.pool.add(sign(USERS[0], nonce=0, data=PROBE_CODE, gas=3_000_000))
    produce(chain, keys)
    probe = chain.receipts(1)[0].contract_address
    return chain, keys, probe


def test_created_block_follows_qbft_header_conventions(four):
    chain, keys, _probe = four
    parent = chain.head
    vote = xd.Vote(b"\x99" * 20, add=True)
    block = chain.create_block(parent, 3, parent.timestamp + 1, keys[2].address, vote)
    h = block.header
    extra = xd.decode(h.extra_data)
    assert extra == xd.ExtraData(bytes(32), tuple(k.address for k in keys), vote, 3, ())
    assert (h.difficulty, h.mix_hash, h.nonce, h.coinbase) == (1, BFT_MIX_HASH, bytes(8), keys[2].address)
    assert (h.base_fee, h.withdrawals_root, h.blob_gas_used, h.excess_blob_gas) == (0, EMPTY_TRIE_ROOT, 0, 0)
    assert h.parent_beacon_block_root == ZERO_HASH and h.requests_hash is None
    assert h.parent_hash == chain.head_hash and block.withdrawals == ()
    # the unsealed proposal passes every header rule but the seals
    verify_header(h, parent, chain.validators_after(parent), parent_hash=chain.head_hash, seals=False)


def test_prague_block_carries_the_hash_of_no_requests(tmp_path):
    chain = open_chain(tmp_path, genesis(1, fork="prague"))
    block = produce(chain, signers(1))
    assert block.header.requests_hash == EMPTY_REQUESTS_HASH


def test_block_with_quorum_of_seals_imports_and_without_quorum_is_rejected(four):
    chain, keys, _probe = four
    head = chain.head
    block = chain.create_block(head, 0, head.timestamp + 1, keys[0].address, None)
    with pytest.raises(BlockInvalid, match="quorum"):
        chain.import_block(seal_with(block, keys[:2]))
    assert chain.head == head
    chain.import_block(seal_with(block, keys[1:]))
    assert chain.head_hash == block.hash and chain.head.number == head.number + 1


def test_seal_by_a_non_validator_is_rejected(four):
    chain, keys, _probe = four
    head = chain.head
    block = chain.create_block(head, 0, head.timestamp + 1, keys[0].address, None)
    outsider = signers(4)[0].__class__(b"\x55" * 32)
    with pytest.raises(BlockInvalid, match="not a validator"):
        chain.import_block(seal_with(block, [*keys[:2], outsider]))


def test_validate_then_import_executes_the_block_once(four, monkeypatch):
    chain, keys, probe = four
    for i in range(3):
        chain.pool.add(sign(USERS[i + 1], nonce=0, to=probe, data=call_data("bump(bytes32)", b"x" * 32)))
    head = chain.head
    proposal = chain.create_block(head, 0, head.timestamp + 1, keys[1].address, None)
    # a second node, which did not build the block
    other = open_chain(chain.store.path.parent / "other", chain.genesis)
    for b in range(1, head.number + 1):
        other.import_block(chain.block(b))
    runs = []
    finish = executor_module.BlockRunner.finish
    monkeypatch.setattr(executor_module.BlockRunner, "finish",
                        lambda self: runs.append(1) or finish(self))
    other.validate_block(proposal)
    other.validate_block(proposal)
    other.import_block(seal_with(proposal, keys[:3], round=2))  # committed at a later round
    chain.import_block(seal_with(proposal, keys[1:]))
    assert runs == [1]
    assert other.head_hash == chain.head_hash
    assert other.head.state_root == chain.head.state_root


@pytest.mark.parametrize("field, value, named", [
    ("state_root", b"\x01" * 32, "stateRoot"),
    ("receipts_root", b"\x02" * 32, "receiptsRoot"),
    ("transactions_root", b"\x03" * 32, "transactionsRoot"),
    ("gas_used", 1, "gasUsed"),
    ("logs_bloom", b"\xff" * 256, "logsBloom"),
    ("base_fee", 7, "baseFeePerGas"),
    ("parent_beacon_block_root", b"\x04" * 32, "parentBeaconBlockRoot"),
])
def test_proposal_that_does_not_execute_to_its_header_is_rejected_naming_the_field(
        four, field, value, named):
    chain, keys, probe = four
    chain.pool.add(sign(USERS[1], nonce=0, to=probe, data=call_data("bump(bytes32)", b"y" * 32)))
    head = chain.head
    good = chain.create_block(head, 0, head.timestamp + 1, keys[0].address, None)
    other = open_chain(chain.store.path.parent / "v", chain.genesis)
    for b in range(1, head.number + 1):
        other.import_block(chain.block(b))
    bad = Block(dataclasses.replace(good.header, **{field: value}), good.transactions, good.withdrawals)
    with pytest.raises(BlockInvalid, match=named):
        other.validate_block(bad)
    with pytest.raises(BlockInvalid):
        other.import_block(seal_with(bad, keys[:3]))
    assert other.head_hash == chain.head_hash  # nothing accepted changed


def test_import_of_a_known_hash_with_another_body_is_rejected(four):
    chain, keys, probe = four
    chain.pool.add(sign(USERS[1], nonce=0, to=probe, data=call_data("bump(bytes32)", b"z" * 32)))
    head = chain.head
    block = chain.create_block(head, 0, head.timestamp + 1, keys[0].address, None)
    swapped = Block(block.header, (sign(USERS[2], nonce=0, to=probe, data=b""),), block.withdrawals)
    with pytest.raises(BlockInvalid, match="transactions differ"):
        chain.import_block(seal_with(swapped, keys[:3]))


def test_block_that_does_not_extend_the_head_is_rejected_and_a_reimport_is_harmless(four):
    chain, keys, _probe = four
    block1 = chain.block(1)
    chain.import_block(block1)  # already there: nothing happens
    stale = chain.create_block(chain.header(0), 0, chain.header(0).timestamp + 5, keys[0].address, None)
    with pytest.raises(BlockInvalid, match="conflicts with the block this node holds"):
        chain.import_block(seal_with(stale, keys[:3]))
    ahead = chain.create_block(chain.head, 0, chain.head.timestamp + 1, keys[0].address, None)
    gap = Block(dataclasses.replace(ahead.header, number=5, parent_hash=b"\x07" * 32),
                ahead.transactions, ahead.withdrawals)
    with pytest.raises(BlockInvalid, match="import blocks 2..4 first"):
        chain.import_block(seal_with(gap, keys[:3]))


def test_pool_transactions_go_in_by_tip_then_nonce_and_invalid_ones_are_left_out(tmp_path):
    g = genesis(1, alloc={b"\x77" * 20: AllocAccount(balance=0)})
    chain = open_chain(tmp_path, g)
    a, b = USERS[1], USERS[2]
    chain.pool.add(sign(a, nonce=1, to=b"\x01" * 20, price=5, tip=1, gas=21_000))
    chain.pool.add(sign(a, nonce=0, to=b"\x01" * 20, price=5, tip=1, gas=21_000))
    chain.pool.add(sign(b, nonce=0, to=b"\x01" * 20, price=9, tip=9, gas=21_000))
    chain.pool.add(sign(b, nonce=2, to=b"\x01" * 20, price=9, tip=9, gas=21_000))  # gap: waits
    block = produce(chain, signers(1))
    senders = [r.sender for r in chain.receipts(block.header.number)]
    assert senders == [addr(b), addr(a), addr(a)]
    assert len(chain.pool) == 1 and chain.pool.pending_nonce(addr(b)) == 1


def test_fees_and_block_reward_go_to_the_mining_beneficiary(tmp_path):
    beneficiary = b"\xbe" * 20
    g = genesis(1, qbft=QbftSettings(block_reward=5 * 10**18, mining_beneficiary=beneficiary),
                zero_base_fee=True)
    chain = open_chain(tmp_path, g)
    chain.pool.add(sign(USERS[1], nonce=0, to=b"\x01" * 20, price=3, tip=3, gas=21_000))
    block = produce(chain, signers(1))
    assert chain.account(beneficiary, block.header.number).balance == 5 * 10**18 + 21_000 * 3
    assert chain.account(block.header.coinbase, block.header.number).balance == 0


def test_zero_fee_does_not_create_the_coinbase_account(tmp_path):
    chain = open_chain(tmp_path, genesis(1))
    chain.pool.add(sign(USERS[1], nonce=0, to=b"\x01" * 20, gas=21_000))
    block = produce(chain, signers(1))
    raw = HexaryTrie.get_from_proof(
        block.header.state_root, keccak(block.header.coinbase),
        [rlp.decode(n) for n in chain.proof(block.header.coinbase, [], block.header.number).account_proof])
    assert raw == b""


@pytest.mark.parametrize("limit, deploys", [(None, False), (40_000, True)])
def test_contract_size_limit_comes_from_the_genesis(tmp_path, limit, deploys):
    chain = open_chain(tmp_path, genesis(1, contract_size_limit=limit))
    size = 30_000  # above EIP-170's 24576
    init = b"\x61" + size.to_bytes(2, "big") + b"\x60\x00\xf3"  # return `size` zero bytes
    chain.pool.add(sign(USERS[1], nonce=0, data=init, gas=8_000_000))
    produce(chain, signers(1))
    receipt = chain.receipts(1)[0]
    assert receipt.status == (1 if deploys else 0)
    assert len(chain.code(receipt.contract_address, 1)) == (size if deploys else 0)


def test_logs_are_found_by_address_topic_position_and_block_hash(four):
    chain, keys, probe = four
    for i in range(4):
        bump = call_data("bump(bytes32)", bytes([i]) * 32)
        chain.pool.add(sign(USERS[i + 1], nonce=0, to=probe, data=bump))
        produce(chain, keys)
    head = chain.head.number
    every = chain.logs(LogFilter(0, head))
    assert [lg.block_number for lg in every] == [2, 3, 4, 5]
    assert chain.logs(LogFilter(0, head, (b"\x01" * 20,))) == []
    by_topic = chain.logs(LogFilter(0, head, (probe,), ((BUMPED,),)))
    assert len(by_topic) == 4
    who = addr(USERS[3]).rjust(32, b"\x00")
    third = chain.logs(LogFilter(0, head, (), (None, (who,))))
    assert [lg.block_number for lg in third] == [4]
    assert chain.logs(LogFilter(0, head, (), (None, None, (who,)))) == []  # Bumped has 2 indexed
    block4 = block_hash(chain.header(4))
    assert chain.logs(LogFilter(0, 0, block_hash=block4)) == third
    receipt = chain.receipts(4)[0]
    assert receipt.logs == tuple(third) and third[0].tx_hash == receipt.tx_hash


def test_calls_surface_revert_data_and_estimates_are_exact(four):
    chain, _keys, probe = four
    n = chain.head.number
    out = chain.call(CallRequest(to=probe, data=call_data("fail(string)", "no way")), n)
    assert out.error == "execution reverted"
    assert out.output[:4] == keccak(b"Error(string)")[:4] and b"no way" in out.output
    custom = chain.call(CallRequest(to=probe, data=call_data("failCustom(uint256)", 7)), n)
    assert custom.output == keccak(b"Custom(uint256)")[:4] + (7).to_bytes(32, "big")
    request = CallRequest(sender=addr(USERS[5]), to=probe, data=call_data("fill(uint256)", 3))
    gas = chain.estimate_gas(request, n)
    assert chain.call(dataclasses.replace(request, gas=gas), n).error is None
    assert chain.call(dataclasses.replace(request, gas=gas - 1), n).error == "out of gas"
    with pytest.raises(ValueError, match="execution reverted"):
        chain.estimate_gas(CallRequest(to=probe, data=call_data("fail(string)", "x")), n)
    with pytest.raises(UnknownBlock):
        chain.call(CallRequest(to=probe), 999)


def test_call_sees_the_block_context_of_a_qbft_header(four):
    chain, _keys, probe = four
    n = chain.head.number
    out = chain.call(CallRequest(to=probe, data=call_data("context()")), n).output
    words = [int.from_bytes(out[i:i + 32], "big") for i in range(0, len(out), 32)]
    header = chain.head
    assert words[0] == n and words[1] == header.timestamp
    assert words[2] == int.from_bytes(header.coinbase, "big")
    assert words[3] == int.from_bytes(BFT_MIX_HASH, "big")  # PREVRANDAO is the mixHash
    assert words[4:6] == [0, chain.genesis.chain_id]
    ancestor = chain.call(CallRequest(to=probe, data=call_data("ancestor(uint256)", 1)), n).output
    assert ancestor == block_hash(chain.header(n - 1))


def test_proofs_verify_against_the_state_root(four):
    chain, keys, probe = four
    chain.pool.add(sign(USERS[1], nonce=0, to=probe, data=call_data("set(uint256,uint256)", 1, 5)))
    produce(chain, keys)
    header = chain.head
    slot = int.from_bytes(keccak((1).to_bytes(32, "big") + (1).to_bytes(32, "big")), "big")
    proof = chain.proof(probe, [0, slot, 12345], header.number)
    account = rlp.decode(HexaryTrie.get_from_proof(header.state_root, keccak(probe),
                                                   [rlp.decode(n) for n in proof.account_proof]))
    assert account[2] == proof.account.storage_root
    values = {}
    for s, value, nodes in proof.storage:
        raw = HexaryTrie.get_from_proof(proof.account.storage_root, keccak(s.to_bytes(32, "big")),
                                        [rlp.decode(n) for n in nodes])
        values[s] = int.from_bytes(rlp.decode(raw), "big") if raw else 0
        assert values[s] == value
    assert values == {0: 0, slot: 5, 12345: 0}


def test_new_head_callbacks_receive_the_block_and_its_receipts(four):
    chain, keys, probe = four
    seen = []
    chain.on_new_head(lambda block, receipts: seen.append((block.hash, [r.status for r in receipts])))
    chain.on_new_head(lambda block, receipts: 1 / 0)  # a failing subscriber does not stop import
    chain.pool.add(sign(USERS[1], nonce=0, to=probe, data=call_data("bump(bytes32)", b"c" * 32)))
    block = produce(chain, keys)
    assert seen == [(block.hash, [1])]


def test_validator_vote_changes_the_set_at_the_next_block(four):
    chain, keys, _probe = four
    newcomer = b"\x01" * 20
    start = chain.head.number
    for proposer in keys[:3]:  # 3 of 4 is a majority (n // 2 + 1)
        head = chain.head
        block = chain.create_block(head, 0, head.timestamp + 1, proposer.address,
                                   xd.Vote(newcomer, add=True))
        chain.import_block(seal_with(block, keys[:3]))
    voted = chain.head.number
    assert chain.validators_for(voted) == tuple(k.address for k in keys)
    assert newcomer in chain.validators_for(voted + 1)
    assert chain.validators_after(chain.head) == chain.validators_for(voted + 1)
    tally = chain.votes_after(chain.header(start + 1))
    assert tally is not None and tally.add_votes[newcomer] == {keys[0].address}
    next_block = chain.create_block(chain.head, 0, chain.head.timestamp + 1, keys[0].address, None)
    assert newcomer in xd.decode(next_block.header.extra_data).validators


def test_reopened_store_has_the_same_head_state_and_validators(four):
    chain, keys, probe = four
    chain.pool.add(sign(USERS[1], nonce=0, to=probe, data=call_data("bump(bytes32)", b"r" * 32)))
    produce(chain, keys)
    head, root = chain.head_hash, chain.head.state_root
    chain.close()
    again = open_chain(chain.store.path, chain.genesis)
    assert (again.head_hash, again.head.state_root) == (head, root)
    assert again.storage_at(probe, 0, again.head.number) == 1
    assert again.validators_for(again.head.number + 1) == tuple(k.address for k in keys)
    produce(again, keys)
    assert again.head.number == 3


def test_a_data_directory_of_another_network_is_refused(four, tmp_path):
    chain, _keys, _probe = four
    chain.close()
    with pytest.raises(StoreError, match="genesis"):
        open_chain(chain.store.path, genesis(4, timestamp=99))


def test_unknown_blocks_read_as_none_or_unknown_block(four):
    chain, _keys, _probe = four
    assert chain.header(99) is None and chain.block(b"\x00" * 32) is None
    assert chain.receipts(99) is None and chain.transaction(b"\x01" * 32) is None
    with pytest.raises(UnknownBlock):
        chain.account(b"\x01" * 20, 99)


def test_transaction_lookup_names_block_index_and_sender(four):
    chain, keys, probe = four
    raw = sign(USERS[1], nonce=0, to=probe, data=call_data("bump(bytes32)", b"t" * 32))
    tx_hash = chain.pool.add(raw)
    block = produce(chain, keys)
    loc = chain.transaction(tx_hash)
    assert (loc.raw, loc.sender, loc.block_hash, loc.block_number, loc.index) == \
        (raw, addr(USERS[1]), block.hash, block.header.number, 0)
