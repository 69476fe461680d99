"""The hand-packed EIP-712 struct hash equals eth_abi's encoding for every well-formed event."""

from __future__ import annotations

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from hypothesis import given
from hypothesis import strategies as st

from chain.abc import AttestedEvent
from chain.attest.eip712 import EVENT_TYPEHASH, event_type_bytes32, struct_hash

events = st.builds(AttestedEvent, st.binary(min_size=20, max_size=20),
                   st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=32),
                   st.binary(min_size=32, max_size=32), st.integers(0, 2**64 - 1))


@given(events)
def test_struct_hash_is_keccak_of_the_abi_encoding(event):
    expected = keccak(abi_encode(["bytes32", "address", "bytes32", "bytes32", "uint64"],
                                 [EVENT_TYPEHASH, event.actor, event_type_bytes32(event.event_type),
                                  event.data_hash, event.nonce]))
    assert struct_hash(event) == bytes(expected)
