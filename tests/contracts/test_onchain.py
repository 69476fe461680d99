"""chain/ledger/onchain.py: the ledger contract's calldata, log and error formats in Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from chain.abc import Attestation, AttestedEvent, LedgerDomain, attestation_id
from chain.attest.eip712 import digest
from chain.ledger import onchain
from chain.ledger.record import LedgerRecord, ledger_anchor, record_hash

VECTORS = json.loads((Path(__file__).parent / "data" / "ledger_vectors.json").read_text())


def b(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def vector_record(v: dict[str, object]) -> LedgerRecord:
    return LedgerRecord(seq=int(v["seq"]), actor=b(str(v["actor"])), event_type=str(v["event_type"]),
                        delta=b"{}", nonce=int(v["nonce"]), attestation_id=b(str(v["attestation_id"])),
                        data_hash=b(str(v["data_hash"])), previous_hash=b(str(v["previous_hash"])),
                        timestamp=int(v["timestamp"]), block_height=int(v["block_height"]))


def test_python_side_reproduces_the_shared_known_answers():
    for v in VECTORS["anchors"]:
        assert ledger_anchor(LedgerDomain(v["chain_id"], b(v["ledger"]))) == b(v["anchor"])
    for v in VECTORS["attestation_ids"]:
        assert attestation_id(v["scheme"], b(v["proof"])) == b(v["id"])
    for v in VECTORS["records"]:
        assert record_hash(vector_record(v)) == b(v["record_hash"])
    for v in VECTORS["digests"]:
        event = AttestedEvent(b(v["actor"]), v["event_type"], b(v["data_hash"]), v["nonce"])
        assert digest(event, LedgerDomain(v["chain_id"], b(v["ledger"]))) == b(v["digest"])


def test_eip712_digests_agree_with_eth_account_independent_encoder():
    for v in VECTORS["digests"]:
        typed = {
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"},
                                 {"name": "version", "type": "string"},
                                 {"name": "chainId", "type": "uint256"},
                                 {"name": "verifyingContract", "type": "address"}],
                "LedgerEvent": [{"name": "actor", "type": "address"},
                                {"name": "eventType", "type": "bytes32"},
                                {"name": "dataHash", "type": "bytes32"},
                                {"name": "nonce", "type": "uint64"}],
            },
            "primaryType": "LedgerEvent",
            "domain": {"name": "SMART-TA CeFi Event Ledger", "version": "1",
                       "chainId": v["chain_id"], "verifyingContract": v["ledger"]},
            "message": {"actor": v["actor"], "eventType": v["event_type"].encode().ljust(32, b"\0"),
                        "dataHash": b(v["data_hash"]), "nonce": v["nonce"]},
        }
        signable = encode_typed_data(full_message=typed)
        assert bytes(keccak(b"\x19" + signable.version + signable.header + signable.body)) == \
            b(v["digest"])


event_types = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E),
                      min_size=1, max_size=32)
entries = st.builds(
    onchain.Entry,
    actor=st.binary(min_size=20, max_size=20),
    event_type=event_types,
    nonce=st.integers(min_value=1, max_value=2**64 - 1),
    delta=st.binary(min_size=1, max_size=600),
    attestation=st.builds(Attestation, st.integers(0, 255), st.binary(max_size=300)),
)


@given(st.lists(entries, min_size=1, max_size=8))
def test_batch_calldata_round_trips_with_proofs(batch):
    calldata = onchain.encode_batch(batch)
    assert calldata[:4] == onchain.APPEND_BATCH_SELECTOR
    assert onchain.decode_calldata(calldata) == batch


@given(entries)
def test_single_append_calldata_round_trips(entry):
    assert onchain.decode_calldata(onchain.encode_append(entry)) == [entry]


@given(st.lists(entries, min_size=1, max_size=4), st.data())
def test_truncated_batch_is_refused_with_the_entry_it_ends_in(batch, data):
    packed = onchain.pack_batch(batch)
    cut = data.draw(st.integers(1, len(packed) - 1))
    truncated = packed[:cut]
    try:
        decoded = onchain.unpack_batch(truncated)
    except onchain.OnchainFormatError as exc:
        assert "batch entry" in str(exc)
    else:
        # A cut exactly between two entries leaves a shorter, valid batch.
        assert decoded == batch[:len(decoded)] and len(decoded) < len(batch)


def test_entries_the_contract_would_refuse_are_refused_before_sending():
    ok = onchain.Entry(b"\x01" * 20, "ORDER_PLACED", 1, b"{}", Attestation(1, b"\x00" * 65))
    for bad, reason in [
        (onchain.Entry(b"\x01" * 19, "X", 1, b"{}", ok.attestation), "20"),
        (onchain.Entry(ok.actor, "", 1, b"{}", ok.attestation), "1 to 32"),
        (onchain.Entry(ok.actor, "É", 1, b"{}", ok.attestation), "ASCII"),
        (onchain.Entry(ok.actor, "X" * 33, 1, b"{}", ok.attestation), "1 to 32"),
        (onchain.Entry(ok.actor, "X", 0, b"{}", ok.attestation), "nonce 0"),
        (onchain.Entry(ok.actor, "X", 2**64, b"{}", ok.attestation), "nonce"),
        (onchain.Entry(ok.actor, "X", 1, b"", ok.attestation), "delta is 0 bytes"),
        (onchain.Entry(ok.actor, "X", 1, b"x" * 65536, ok.attestation), "delta is 65536"),
        (onchain.Entry(ok.actor, "X", 1, b"{}", Attestation(1, b"\0" * 65536)), "proof is 65536"),
    ]:
        with pytest.raises(onchain.OnchainFormatError, match=reason):
            onchain.pack_entry(bad)
    with pytest.raises(onchain.OnchainFormatError, match="at least one"):
        onchain.pack_batch([])


def test_calldata_of_another_function_is_not_taken_for_a_ledger_write():
    with pytest.raises(onchain.OnchainFormatError, match="not a ledger write"):
        onchain.decode_calldata(bytes.fromhex("a9059cbb") + bytes(64))


def _log_data(count: int, previous: bytes, head: bytes, packed: bytes) -> bytes:
    return abi_encode(["uint64", "bytes32", "bytes32", "bytes"], [count, previous, head, packed])


def _logged(actor: bytes, event_type: str, nonce: int, scheme: int, att_id: bytes,
            delta: bytes) -> bytes:
    raw = event_type.encode()
    return (actor + bytes([len(raw)]) + raw + nonce.to_bytes(8, "big") + bytes([scheme]) + att_id
            + len(delta).to_bytes(2, "big") + delta)


def test_log_decodes_into_linked_records_with_the_contracts_head_on_the_last():
    previous, head = b"\x11" * 32, b"\x22" * 32
    packed = (_logged(b"\x01" * 20, "ORDER_PLACED", 5, 1, b"\xaa" * 32, b'{"a":1}')
              + _logged(b"\x02" * 20, "NAV_PUBLISHED", 9, 2, b"\xbb" * 32, b'{"b":2}'))
    topics = [onchain.RECORDS_APPENDED_TOPIC, (7).to_bytes(32, "big")]
    got = onchain.decode_log(topics, _log_data(2, previous, head, packed), block_number=12,
                             timestamp=1_800_000_000)
    first, second = got.records
    assert (first.seq, first.actor, first.event_type, first.nonce, first.delta) == \
        (7, b"\x01" * 20, "ORDER_PLACED", 5, b'{"a":1}')
    assert first.previous_hash == previous and first.record_hash is None
    assert second.previous_hash == record_hash(first)
    assert second.record_hash == head and got.schemes == (1, 2)
    assert (second.timestamp, second.block_height, second.attestation_id) == \
        (1_800_000_000, 12, b"\xbb" * 32)
    rpc = {"topics": ["0x" + t.hex() for t in topics], "blockNumber": "0xc",
           "data": "0x" + _log_data(2, previous, head, packed).hex()}
    assert onchain.decode_rpc_log(rpc, timestamp=1_800_000_000) == got


def test_log_whose_count_or_length_disagrees_is_refused():
    topics = [onchain.RECORDS_APPENDED_TOPIC, (1).to_bytes(32, "big")]
    packed = _logged(b"\x01" * 20, "X", 1, 1, bytes(32), b"{}")
    with pytest.raises(onchain.OnchainFormatError, match="says 2 records, holds 1"):
        onchain.decode_log(topics, _log_data(2, bytes(32), bytes(32), packed), block_number=1,
                           timestamp=1)
    with pytest.raises(onchain.OnchainFormatError, match="delta bytes"):
        onchain.decode_log(topics, _log_data(1, bytes(32), bytes(32), packed[:-1]),
                           block_number=1, timestamp=1)
    with pytest.raises(onchain.OnchainFormatError, match="not a RecordsAppended log"):
        onchain.decode_log([b"\0" * 32, topics[1]], b"", block_number=1, timestamp=1)


def test_revert_data_is_explained_with_the_record_it_names():
    def err(sig: str, types: list[str], values: list[object]) -> bytes:
        return bytes(keccak(sig.encode()))[:4] + abi_encode(types, values)

    nonce = err("NonceNotIncreasing(uint256,address,uint64,uint64)",
                ["uint256", "address", "uint64", "uint64"], [3, "0x" + "ab" * 20, 5, 7])
    assert onchain.explain_revert(nonce).startswith("NonceNotIncreasing: record 3: nonce 5 of actor")
    role = err("AccessControlUnauthorizedAccount(address,bytes32)", ["address", "bytes32"],
               ["0x" + "cd" * 20, onchain.WRITER_ROLE])
    assert "lacks role WRITER_ROLE" in onchain.explain_revert(role)
    assert onchain.explain_revert(err("Error(string)", ["string"], ["boom"])) == "boom"
    assert onchain.explain_revert(b"\xde\xad\xbe\xef").startswith("unknown revert data")
