"""The transaction codec: every field eth-account signs comes back out, the sender recovers, and
corrupt bytes are refused or change the hash/sender, never crash."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.rpc.tx import TxDecodeError, decode

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
SENDER = bytes.fromhex(Account.from_key(KEY).address[2:])

addresses = st.one_of(st.none(), st.binary(min_size=20, max_size=20))
uint = st.integers(min_value=0, max_value=2**64)
gas = st.integers(min_value=21_000, max_value=30_000_000)


@st.composite
def transactions(draw):
    kind = draw(st.sampled_from([0, 0.5, 1, 2]))  # 0.5: legacy without EIP-155
    fields = {"nonce": draw(uint), "gas": draw(gas), "value": draw(uint),
              "data": draw(st.binary(max_size=200))}
    to = draw(addresses)
    if to is not None:
        fields["to"] = to_checksum_address(to)
    if kind != 0.5:
        fields["chainId"] = draw(st.integers(min_value=1, max_value=2**32))
    if kind in (0, 0.5):
        fields["gasPrice"] = draw(uint)
    elif kind == 1:
        fields.update(type=1, gasPrice=draw(uint), accessList=[
            {"address": to_checksum_address(draw(st.binary(min_size=20, max_size=20))),
             "storageKeys": ["0x" + draw(st.binary(min_size=32, max_size=32)).hex()]}])
    else:
        tip = draw(uint)
        fields.update(type=2, maxPriorityFeePerGas=tip, maxFeePerGas=tip + draw(uint))
    return fields, to


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transactions())
def test_signed_transactions_decode_to_their_fields_and_sender(case):
    fields, to = case
    signed = Account.sign_transaction(fields, KEY)
    tx = decode(bytes(signed.raw_transaction))
    assert tx.hash == bytes(signed.hash)
    assert tx.sender() == SENDER
    assert tx.nonce == fields["nonce"] and tx.gas == fields["gas"] and tx.value == fields["value"]
    assert tx.data == fields["data"] and tx.to == to
    assert tx.chain_id == fields.get("chainId")
    assert tx.type == fields.get("type", 0)
    assert (tx.r, tx.s) == (signed.r, signed.s)
    if tx.type == 2:
        assert tx.max_fee_per_gas == fields["maxFeePerGas"]
        assert tx.effective_gas_price(0) == fields["maxPriorityFeePerGas"]
    else:
        assert tx.gas_price == fields["gasPrice"]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_flipped_byte_is_refused_or_changes_hash_and_sender(data):
    raw = bytes(Account.sign_transaction({"nonce": 7, "gas": 50_000, "value": 3, "chainId": 2026,
                                          "to": to_checksum_address(b"\x11" * 20), "maxFeePerGas": 9,
                                          "maxPriorityFeePerGas": 1, "type": 2}, KEY).raw_transaction)
    i = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    bad = raw[:i] + bytes([raw[i] ^ flip]) + raw[i + 1:]
    try:
        tx = decode(bad)
        sender = tx.sender()
    except TxDecodeError:
        return
    assert tx.hash != decode(raw).hash
    assert sender != SENDER or tx.nonce != 7 or tx.value != 3 or tx.gas != 50_000 \
        or tx.to != b"\x11" * 20 or tx.max_fee_per_gas != 9 or tx.chain_id != 2026


@pytest.mark.parametrize("raw, why", [
    (b"", "empty"),
    (b"\x05\xc0", "type 5"),
    (b"\x80", "neither"),
    (b"\x02\x80", "string"),
    (bytes.fromhex("c3010203"), "expected 9"),
    (b"\x03" + bytes.fromhex("c4c0c0c0c0"), "blob sidecars"),
])
def test_malformed_transactions_are_refused_with_a_reason(raw, why):
    with pytest.raises(TxDecodeError, match=why):
        decode(raw)
