"""chain/proofs.py against independent implementations: the ``trie`` package (py-evm's trie)
for roots and proofs, py-evm's receipt classes for the receipt bytes."""

from __future__ import annotations

import pytest
import rlp
from eth.rlp.logs import Log as EvmLog
from eth.rlp.receipts import Receipt as EvmReceipt
from eth.vm.forks.berlin.receipts import TypedReceipt
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from chain import proofs
from chain.proofs import ProofError, Receipt, ReceiptLog

values = st.lists(st.binary(min_size=1, max_size=120), min_size=1, max_size=300)


def _hexary(vals: list[bytes]) -> HexaryTrie:
    t = HexaryTrie({})
    for i, v in enumerate(vals):
        t[rlp.encode(i)] = v
    return t


@settings(max_examples=60, deadline=None)
@given(values)
def test_trie_root_equals_py_evm_trie(vals):
    assert proofs.trie_root(vals) == _hexary(vals).root_hash


def test_empty_trie_root_is_the_known_constant():
    assert proofs.trie_root([]).hex() == (
        "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")


@settings(max_examples=60, deadline=None)
@given(values, st.data())
def test_proof_proves_the_value_and_py_evm_accepts_it(vals, data):
    index = data.draw(st.integers(0, len(vals) - 1))
    root = proofs.trie_root(vals)
    proof = proofs.prove(vals, index)
    key = proofs.index_key(index)
    assert proofs.verify_proof(root, key, proof) == vals[index]
    assert HexaryTrie.get_from_proof(root, key, [rlp.decode(n) for n in proof]) == vals[index]


@settings(max_examples=40, deadline=None)
@given(values, st.data())
def test_every_changed_byte_of_a_proof_is_refused(vals, data):
    index = data.draw(st.integers(0, len(vals) - 1))
    root = proofs.trie_root(vals)
    proof = proofs.prove(vals, index)
    node = data.draw(st.integers(0, len(proof) - 1))
    pos = data.draw(st.integers(0, len(proof[node]) - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(proof[node])
    bad[pos] ^= flip
    forged = [*proof[:node], bytes(bad), *proof[node + 1:]]
    with pytest.raises(ProofError):
        proofs.verify_proof(root, proofs.index_key(index), forged)


def test_a_proof_with_a_node_too_many_or_too_few_is_refused():
    vals = [bytes([i]) * 40 for i in range(50)]
    root = proofs.trie_root(vals)
    proof = proofs.prove(vals, 17)
    with pytest.raises(ProofError, match="beyond the path"):
        proofs.verify_proof(root, proofs.index_key(17), [*proof, proof[-1]])
    with pytest.raises(ProofError, match="ends after"):
        proofs.verify_proof(root, proofs.index_key(17), proof[:-1])


def test_proof_for_one_index_does_not_prove_another():
    vals = [bytes([i]) * 40 for i in range(50)]
    root = proofs.trie_root(vals)
    proof = proofs.prove(vals, 17)
    with pytest.raises(ProofError):
        proofs.verify_receipt(root, 18, proof)


def test_absent_key_is_proven_absent_not_as_a_value():
    vals = [bytes([i]) * 40 for i in range(5)]
    root = proofs.trie_root(vals)
    # Index 9 (key 0x09) would sit in the branch that holds indexes 1..4 (keys 0x01..0x04):
    # the root and that branch prove it absent.
    path_to_3 = proofs.prove(vals, 3)
    assert proofs.verify_proof(root, proofs.index_key(9), path_to_3[:2]) is None
    with pytest.raises(ProofError, match="no receipt at index 9"):
        proofs.verify_receipt(root, 9, path_to_3[:2])


def _rpc_receipt(tx_type: int, status: int, gas: int, logs: list[ReceiptLog],
                 bloom: bytes) -> dict[str, object]:
    return {
        "type": hex(tx_type), "status": hex(status), "cumulativeGasUsed": hex(gas),
        "logsBloom": "0x" + bloom.hex(), "transactionIndex": "0x0",
        "logs": [{"address": "0x" + lg.address.hex(), "topics": ["0x" + t.hex() for t in lg.topics],
                  "data": "0x" + lg.data.hex()} for lg in logs],
    }


receipt_logs = st.lists(st.builds(
    ReceiptLog, st.binary(min_size=20, max_size=20),
    st.lists(st.binary(min_size=32, max_size=32), max_size=4).map(tuple), st.binary(max_size=200)),
    max_size=4)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([0, 1, 2, 3, 4]), st.integers(0, 1), st.integers(0, 2**40), receipt_logs,
       st.binary(min_size=256, max_size=256))
def test_receipt_from_rpc_encodes_as_py_evm_and_round_trips(tx_type, status, gas, logs, bloom):
    ours = proofs.encode_receipt(_rpc_receipt(tx_type, status, gas, logs, bloom))
    legacy = EvmReceipt(state_root=b"\x01" if status else b"", gas_used=gas,
                        bloom=int.from_bytes(bloom, "big"),
                        logs=[EvmLog(lg.address, [int.from_bytes(t, "big") for t in lg.topics],
                                     lg.data) for lg in logs])
    if tx_type == 0:
        theirs = rlp.encode(legacy)
    elif tx_type == 1:  # py-evm's Berlin receipts know only type 1; EIP-2718 is the same form
        theirs = TypedReceipt(1, legacy).encode()
    else:
        theirs = bytes([tx_type]) + rlp.encode(legacy)
    assert ours == theirs
    decoded = Receipt.decode(ours)
    assert decoded.encode() == ours
    assert decoded.logs == tuple(logs)


def test_receipt_with_a_bad_field_names_it():
    r = _rpc_receipt(2, 1, 21000, [], bytes(256))
    r["logsBloom"] = "0x00"
    with pytest.raises(ProofError, match="logsBloom is 1 bytes"):
        proofs.encode_receipt(r)
    r = _rpc_receipt(2, 1, 21000, [], bytes(256))
    r["status"] = "0x2"
    with pytest.raises(ProofError, match="status is 2"):
        proofs.encode_receipt(r)


def test_receipts_out_of_order_are_refused():
    a = _rpc_receipt(2, 1, 21000, [], bytes(256))
    b = dict(_rpc_receipt(2, 1, 42000, [], bytes(256)), transactionIndex="0x0")
    with pytest.raises(ProofError, match="out of order"):
        proofs.receipts_root([a, b])


_KEY = bytes(range(1, 33))
tx_fields = st.fixed_dictionaries({
    "nonce": st.integers(0, 2**32), "gas": st.integers(21000, 2**40), "value": st.integers(0, 2**80),
    "data": st.binary(max_size=300), "to": st.one_of(st.none(), st.binary(min_size=20, max_size=20)),
})


@settings(max_examples=40, deadline=None)
@given(tx_fields, st.sampled_from([0, 1, 2]), st.integers(0, 2**40), st.booleans())
def test_transaction_from_rpc_encodes_as_eth_account_signs_it(fields, tx_type, price, access):
    from eth_utils import to_checksum_address
    from ledgerchain import rpc_transaction

    f = dict(fields)
    if f["to"] is None:
        f.pop("to")
    else:
        f["to"] = to_checksum_address(f["to"])
    if tx_type:
        f.update(type=tx_type, chainId=2026)
        if access:
            f["accessList"] = [{"address": to_checksum_address(b"\x11" * 20),
                                "storageKeys": ["0x" + "22" * 32]}]
    else:
        f["chainId"] = 2026
    if tx_type == 2:
        f.update(maxFeePerGas=price, maxPriorityFeePerGas=price // 2)
    else:
        f["gasPrice"] = price
    rpc = rpc_transaction(f, _KEY)
    raw = proofs.encode_transaction(rpc)
    assert "0x" + raw.hex() == rpc["raw"]
    assert "0x" + bytes(keccak(raw)).hex() == rpc["hash"]
