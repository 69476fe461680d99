"""Sealed-header validation: every way a header can be wrong is refused with a reason."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sealing import child, genesis_header, keys

from chain.qbft import extra_data as xd
from chain.qbft.hashing import commit_seal_hash
from chain.qbft.header import BlockHeader, HeaderError
from chain.qbft.seals import sign
from chain.qbft.verify import verify_commit_seals, verify_header

SECRETS = keys(4)
VALIDATORS = sorted(SECRETS)
GENESIS = genesis_header(VALIDATORS)
BLOCK1 = child(GENESIS, VALIDATORS, SECRETS)


def test_a_well_sealed_block_verifies_and_names_its_committers():
    sealed = verify_header(BLOCK1, GENESIS, VALIDATORS)
    assert len(sealed.committers) == 3
    assert set(sealed.committers) <= set(VALIDATORS)


def test_block_without_quorum_of_seals_is_rejected():
    block = child(GENESIS, VALIDATORS, SECRETS, signers=VALIDATORS[:2])
    with pytest.raises(HeaderError, match="2 commit seals, quorum of 4 validators is 3"):
        verify_header(block, GENESIS, VALIDATORS)


def test_duplicated_seal_is_rejected():
    block = child(GENESIS, VALIDATORS, SECRETS, signers=[VALIDATORS[0], VALIDATORS[0], VALIDATORS[1]])
    with pytest.raises(HeaderError, match="duplicates the seal"):
        verify_header(block, GENESIS, VALIDATORS)


def test_seal_from_a_non_validator_is_rejected():
    outsider = keys(1, offset=99)
    secrets = {**SECRETS, **outsider}
    block = child(GENESIS, VALIDATORS, secrets, signers=VALIDATORS[:2] + list(outsider))
    with pytest.raises(HeaderError, match="not a validator of this block"):
        verify_header(block, GENESIS, VALIDATORS)


def test_seal_over_another_round_does_not_count():
    block = child(GENESIS, VALIDATORS, SECRETS)
    extra = xd.decode(block.extra_data)
    wrong_round = block.with_extra_data(xd.encode(extra.with_seals(extra.seals, round=1)))
    with pytest.raises(HeaderError, match="not a validator"):
        verify_commit_seals(wrong_round, VALIDATORS)


def test_validators_not_sorted_or_not_the_expected_set_are_rejected():
    extra = xd.decode(BLOCK1.extra_data)
    unsorted = BLOCK1.with_extra_data(xd.encode(xd.ExtraData(
        extra.vanity, tuple(reversed(extra.validators)), None, 0, extra.seals)))
    with pytest.raises(HeaderError, match="not sorted"):
        verify_header(unsorted, GENESIS, VALIDATORS)
    with pytest.raises(HeaderError, match="differ from the set"):
        verify_header(BLOCK1, GENESIS, VALIDATORS[:3])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"parent_hash": b"\x01" * 32}, "parentHash"),
        ({"mix_hash": bytes(32)}, "mixHash"),
        ({"difficulty": 2}, "difficulty"),
        ({"coinbase": b"\x05" * 20}, "coinbase"),
        ({"timestamp": GENESIS.timestamp}, "timestamp"),
        ({"gas_used": 30_000_001}, "gasUsed"),
        ({"number": 2}, "number"),
    ],
)
def test_header_rule_violations_are_named(change, reason):
    with pytest.raises(HeaderError, match=reason):
        verify_header(replace(BLOCK1, **change), GENESIS, VALIDATORS)


def test_future_timestamp_is_rejected_when_the_clock_is_given():
    with pytest.raises(HeaderError, match="future"):
        verify_header(BLOCK1, GENESIS, VALIDATORS, now=BLOCK1.timestamp - 2)


def test_contract_mode_blocks_list_no_validators_and_carry_no_vote():
    with pytest.raises(HeaderError, match="contract-mode"):
        verify_header(BLOCK1, GENESIS, VALIDATORS, contract_mode=True)


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_any_one_byte_changed_in_a_sealed_header_is_rejected(data):
    encoded = bytearray(BLOCK1.encode())
    i = data.draw(st.integers(0, len(encoded) - 1))
    encoded[i] ^= data.draw(st.integers(1, 255))
    try:
        tampered = BlockHeader.decode(bytes(encoded))
    except HeaderError:
        return
    with pytest.raises(HeaderError):
        verify_header(tampered, GENESIS, VALIDATORS)


def test_a_changed_field_breaks_every_seal_even_when_rules_still_hold():
    # A different state root: all other rules pass, but the seals were made over the old hash.
    tampered = replace(BLOCK1, state_root=b"\x42" * 32)
    with pytest.raises(HeaderError, match="commit seal 0 is by"):
        verify_header(tampered, GENESIS, VALIDATORS)
    resealed = tampered.with_extra_data(xd.encode(xd.decode(tampered.extra_data).with_seals(
        tuple(sign(SECRETS[v], commit_seal_hash(tampered)) for v in VALIDATORS[:3]))))
    assert verify_header(resealed, GENESIS, VALIDATORS).committers
