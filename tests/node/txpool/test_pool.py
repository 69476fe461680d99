"""The pool admits, orders, replaces and evicts as Besu's does, and says why it refuses, in
Besu's words."""

from __future__ import annotations

import pytest
from eth_account import Account

from node.abc import TxRejected
from node.txpool import reasons as R
from node.txpool.pool import PoolConfig

from ..execution.devnet import USERS, addr, genesis, open_chain, produce, sign, signers

TO = b"\x01" * 20


@pytest.fixture
def chain(tmp_path):
    return open_chain(tmp_path / "node", genesis(1))


def rejected(pool, raw) -> TxRejected:
    with pytest.raises(TxRejected) as info:
        pool.add(raw)
    return info.value


def test_free_gas_transaction_from_an_account_without_balance_is_accepted(chain):
    nobody = Account.create()
    tx_hash = chain.pool.add(sign(nobody, nonce=0, to=TO, gas=21_000, price=0))
    assert tx_hash in chain.pool
    block = produce(chain, signers(1))
    assert chain.receipts(block.header.number)[0].status == 1


def test_paying_transaction_beyond_the_balance_is_refused(chain):
    nobody = Account.create()
    exc = rejected(chain.pool, sign(nobody, nonce=0, to=TO, gas=21_000, price=1))
    assert exc.reason == R.UPFRONT_COST == "Upfront cost exceeds account balance"
    assert "21000 wei" in exc.detail


@pytest.mark.parametrize("make, reason", [
    (lambda: sign(USERS[1], nonce=0, to=TO, gas=20_000), R.INTRINSIC_GAS),
    (lambda: sign(USERS[1], nonce=0, to=TO, gas=21_000, chain_id=1), R.WRONG_CHAIN_ID),
    (lambda: sign(USERS[1], nonce=500, to=TO, gas=21_000), R.TOO_DISTANT),
    (lambda: sign(USERS[1], nonce=0, to=TO, gas=2**60), R.BLOCK_GAS_LIMIT),
    (lambda: sign(USERS[1], nonce=0, to=TO, gas=21_000, price=1, tip=2), R.PRIORITY_ABOVE_MAX),
    (lambda: b"\x02\xc0", R.INVALID_PARAMS),
    (lambda: b"\x03" + sign(USERS[1], nonce=0, to=TO, gas=21_000)[1:], R.INVALID_TYPE),
    (lambda: b"\x04" + sign(USERS[1], nonce=0, to=TO, gas=21_000)[1:], R.INVALID_TYPE),
])
def test_static_checks_refuse_with_besu_reasons(chain, make, reason):
    exc = rejected(chain.pool, make())
    assert exc.reason == reason and exc.detail


def test_blob_transactions_are_refused_with_a_reason_that_says_so(chain):
    exc = rejected(chain.pool, b"\x03" + sign(USERS[1], nonce=0, to=TO, gas=21_000)[1:])
    assert "blob" in exc.detail and "type 0, 1 or 2" in exc.detail


def test_signature_out_of_range_is_refused(chain):
    import rlp
    fields = rlp.decode(sign(USERS[1], nonce=0, to=TO, gas=21_000, type=0))
    for index in (7, 8):  # r = 0, then s = 0
        broken = list(fields)
        broken[index] = b""
        assert rejected(chain.pool, rlp.encode(broken)).reason == R.INVALID_SIGNATURE


def test_tampered_transaction_is_not_attributed_to_the_signer(chain):
    raw = bytearray(sign(USERS[1], nonce=0, to=TO, gas=21_000, type=0))
    raw[-5] ^= 0xFF  # inside s: the signature now recovers some other address
    try:
        chain.pool.add(bytes(raw))
    except TxRejected as exc:
        assert exc.reason == R.INVALID_SIGNATURE
    assert chain.pool.pending_nonce(addr(USERS[1])) == 0


def test_high_s_signature_is_refused_as_invalid(chain):
    import rlp

    from chain.execution.txs import SECP256K1_N
    raw = sign(USERS[1], nonce=0, to=TO, gas=21_000, type=0)
    fields = rlp.decode(raw)
    s = int.from_bytes(fields[8], "big")
    v = int.from_bytes(fields[6], "big")
    fields[8] = (SECP256K1_N - s).to_bytes(32, "big")
    fields[6] = (v + 1 if (v - 35) % 2 == 0 else v - 1).to_bytes(2, "big")  # malleated twin
    assert rejected(chain.pool, rlp.encode(fields)).reason == R.INVALID_SIGNATURE


def test_unprotected_legacy_transactions_need_the_option(tmp_path):
    chain = open_chain(tmp_path / "a", genesis(1))
    tx = USERS[1].sign_transaction({"nonce": 0, "gasPrice": 0, "gas": 21_000, "to": "0x" + "01" * 20,
                                    "value": 0}).raw_transaction
    assert rejected(chain.pool, bytes(tx)).reason == R.CHAIN_ID_REQUIRED
    relaxed = open_chain(tmp_path / "b", genesis(1), pool=PoolConfig(allow_unprotected=True))
    assert relaxed.pool.add(bytes(tx))


def test_nonce_too_low_after_inclusion_and_known_transaction(chain):
    raw = sign(USERS[1], nonce=0, to=TO, gas=21_000)
    chain.pool.add(raw)
    assert rejected(chain.pool, raw).reason == R.KNOWN
    produce(chain, signers(1))
    exc = rejected(chain.pool, raw)
    assert exc.reason == R.NONCE_TOO_LOW and "at nonce 1" in exc.detail


def test_replacement_needs_a_ten_percent_bump_on_both_fees(chain):
    old = sign(USERS[1], nonce=0, to=TO, gas=30_000, price=100, tip=100)
    chain.pool.add(old)
    low = sign(USERS[1], nonce=0, to=TO, gas=30_000, price=109, tip=109, data=b"\x01")
    assert rejected(chain.pool, low).reason == R.UNDERPRICED
    tip_only = sign(USERS[1], nonce=0, to=TO, gas=30_000, price=200, tip=100, data=b"\x02")
    assert rejected(chain.pool, tip_only).reason == R.UNDERPRICED
    new = sign(USERS[1], nonce=0, to=TO, gas=30_000, price=110, tip=110, data=b"\x03")
    new_hash = chain.pool.add(new)
    assert len(chain.pool) == 1 and chain.pool.get(new_hash) == new
    block = produce(chain, signers(1))
    assert block.transactions == (new,)


def test_per_sender_limit(tmp_path):
    chain = open_chain(tmp_path, genesis(1), pool=PoolConfig(max_per_sender=3))
    for n in range(3):
        chain.pool.add(sign(USERS[1], nonce=n, to=TO, gas=21_000))
    exc = rejected(chain.pool, sign(USERS[1], nonce=3, to=TO, gas=21_000))
    assert exc.reason == R.TOO_DISTANT
    chain.pool.add(sign(USERS[2], nonce=0, to=TO, gas=21_000))  # other senders are not affected


def test_full_pool_evicts_the_lowest_paying_tail_or_refuses(tmp_path):
    chain = open_chain(tmp_path, genesis(1), pool=PoolConfig(max_size=3))
    cheap = [chain.pool.add(sign(USERS[1], nonce=n, to=TO, gas=21_000, price=1)) for n in range(2)]
    chain.pool.add(sign(USERS[2], nonce=0, to=TO, gas=21_000, price=5))
    exc = rejected(chain.pool, sign(USERS[3], nonce=0, to=TO, gas=21_000, price=1))
    assert exc.reason == R.POOL_FULL
    rich = chain.pool.add(sign(USERS[4], nonce=0, to=TO, gas=21_000, price=9))
    assert rich in chain.pool and len(chain.pool) == 3
    assert cheap[0] in chain.pool and cheap[1] not in chain.pool  # the sender's tail went
    assert chain.pool.pending_nonce(addr(USERS[1])) == 1


def test_below_base_fee_and_minimum_price_are_refused(tmp_path):
    paid = open_chain(tmp_path / "a", genesis(1, zero_base_fee=False))
    assert paid.next_base_fee() == 875_000_000  # EIP-1559: an empty parent lowers it by 1/8
    exc = rejected(paid.pool, sign(USERS[1], nonce=0, to=TO, gas=21_000, price=10))
    assert exc.reason == R.BELOW_BASE_FEE
    floor = open_chain(tmp_path / "b", genesis(1), pool=PoolConfig(min_gas_price=5))
    assert rejected(floor.pool, sign(USERS[1], nonce=0, to=TO, gas=21_000, price=4)).reason == \
        R.GAS_PRICE_TOO_LOW


def test_pending_nonce_counts_the_gapless_run_and_stats_count_local_and_remote(chain):
    for n in (0, 1, 3):
        chain.pool.add(sign(USERS[1], nonce=n, to=TO, gas=21_000))
    chain.pool.add(sign(USERS[2], nonce=0, to=TO, gas=21_000), local=False)
    assert chain.pool.pending_nonce(addr(USERS[1])) == 2
    stats = chain.pool.stats()
    assert (stats.local_count, stats.remote_count) == (3, 1)


def test_import_removes_included_transactions_and_stale_nonces(tmp_path):
    builder = open_chain(tmp_path / "a", genesis(1))
    follower = open_chain(tmp_path / "b", genesis(1))
    raws = [sign(USERS[1], nonce=n, to=TO, gas=21_000) for n in range(2)]
    for raw in raws:
        builder.pool.add(raw)
        follower.pool.add(raw)
    block = produce(builder, signers(1))
    follower.import_block(block)
    assert len(follower.pool) == 0


def test_a_transaction_that_can_never_be_included_is_dropped_while_building(chain, monkeypatch):
    chain.pool.add(sign(USERS[1], nonce=0, to=TO, gas=21_000))
    produce(chain, signers(1))
    # a stale view of the sender (as a pool entry admitted before a block spent its nonce)
    real = chain.head_account
    monkeypatch.setattr(chain, "head_account", lambda a: (0, 0, False) if a == addr(USERS[1]) else real(a))
    stale = chain.pool.add(sign(USERS[1], nonce=0, to=b"\x02" * 20, gas=21_000))
    monkeypatch.setattr(chain, "head_account", real)
    produce(chain, signers(1))
    assert stale not in chain.pool and chain.transaction(stale) is None
