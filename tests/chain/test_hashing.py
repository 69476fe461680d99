"""Block hash and commit-seal hash against real Besu blocks and Besu's hashing test header."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.qbft import extra_data as xd
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BlockHeader, HeaderError
from chain.qbft.seals import recover, sign

DATA = Path(__file__).parents[1] / "data" / "besu"
BLOCKS = json.loads((DATA / "blocks.json").read_text())["blocks"]
V10 = json.loads((DATA / "derived_v10.json").read_text())


def h(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


@pytest.mark.parametrize("blk", BLOCKS, ids=[b["name"][:40] for b in BLOCKS])
def test_real_besu_block_hash_is_reproduced(blk):
    header = BlockHeader.from_rpc(blk["header"])
    assert "0x" + block_hash(header).hex() == blk["expected_hash"]


def test_real_besu_block_seal_recovers_its_committer():
    blk = next(b for b in BLOCKS if "expected_committers" in b)
    header = BlockHeader.from_rpc(blk["header"])
    digest = commit_seal_hash(header)
    assert "0x" + digest.hex() == blk["expected_commit_seal_hash"]
    committers = ["0x" + recover(s, digest).hex() for s in xd.decode(header.extra_data).seals]
    assert committers == blk["expected_committers"]
    assert committers == ["0x" + header.coinbase.hex()]


def test_naive_full_header_hash_is_not_the_qbft_block_hash():
    blk = next(b for b in BLOCKS if "expected_committers" in b)
    header = BlockHeader.from_rpc(blk["header"])
    assert header.raw_hash() != block_hash(header)


def _v10_header(with_seals: bool) -> BlockHeader:
    f = V10["extra_fields"]
    extra = xd.ExtraData(h(f["vanity"]), tuple(h(v) for v in f["validators"]),
                         xd.Vote(h(f["vote"]["recipient"]), True), f["round"], ())
    header = BlockHeader.from_rpc({**V10["header"], "extraData": "0x" + xd.encode(extra).hex()})
    if with_seals:
        keys = [k.to_bytes(32, "big") for k in V10["committer_private_keys"]]
        seals = tuple(sign(k, commit_seal_hash(header)) for k in keys)
        header = header.with_extra_data(xd.encode(extra.with_seals(seals)))
    return header


def test_besu_hashing_test_header_gives_the_derived_commit_seal_hash_and_block_hash():
    header = _v10_header(with_seals=True)
    extra = xd.decode(header.extra_data)
    assert "0x" + xd.encode(extra, xd.Encoding.EXCLUDE_COMMIT_SEALS).hex() == \
        V10["expected_extra_without_seals"]
    assert "0x" + xd.encode(extra, xd.Encoding.EXCLUDE_COMMIT_SEALS_AND_ROUND).hex() == \
        V10["expected_onchain_extra"]
    assert "0x" + commit_seal_hash(header).hex() == V10["expected_commit_seal_hash"]
    assert "0x" + block_hash(header).hex() == V10["expected_block_hash"]
    assert ["0x" + s.hex() for s in extra.seals] == V10["expected_seals"]
    digest = commit_seal_hash(header)
    assert ["0x" + recover(s, digest).hex() for s in extra.seals] == V10["committer_addresses"]


def test_block_hash_ignores_round_and_seals_but_commit_seal_hash_keeps_the_round():
    header = _v10_header(with_seals=True)
    extra = xd.decode(header.extra_data)
    other = header.with_extra_data(xd.encode(extra.with_seals(extra.seals[:2], round=7)))
    assert block_hash(other) == block_hash(header)
    assert commit_seal_hash(other) != commit_seal_hash(header)
    assert commit_seal_hash(other) == commit_seal_hash(header, round=7)


def test_at_round_zero_the_commit_seal_hash_is_the_block_hash():
    header = _v10_header(with_seals=False)
    extra = xd.decode(header.extra_data)
    zero = header.with_extra_data(xd.encode(extra.with_seals((), round=0)))
    assert commit_seal_hash(zero) == block_hash(zero)


def test_genesis_is_hashed_over_its_raw_extra_data():
    blk = BLOCKS[0]
    header = BlockHeader.from_rpc(blk["header"])
    assert header.number == 0
    assert block_hash(header) == header.raw_hash()


def test_non_canonical_extra_data_is_canonicalised_before_hashing():
    header = _v10_header(with_seals=True)
    extra = xd.decode(header.extra_data)
    drop = extra.with_seals(extra.seals)
    drop = xd.ExtraData(drop.vanity, drop.validators, xd.Vote(drop.vote.recipient, False),
                        drop.round, drop.seals)  # type: ignore[union-attr]
    canonical = header.with_extra_data(xd.encode(drop))
    legacy_bytes = xd.encode(drop).replace(bytes.fromhex("80" + "83fedcba"),
                                           bytes.fromhex("00" + "83fedcba"))
    legacy = header.with_extra_data(legacy_bytes)
    assert legacy.extra_data != canonical.extra_data
    assert block_hash(legacy) == block_hash(canonical)


headers = st.builds(
    BlockHeader,
    parent_hash=st.binary(min_size=32, max_size=32),
    ommers_hash=st.binary(min_size=32, max_size=32),
    coinbase=st.binary(min_size=20, max_size=20),
    state_root=st.binary(min_size=32, max_size=32),
    transactions_root=st.binary(min_size=32, max_size=32),
    receipts_root=st.binary(min_size=32, max_size=32),
    logs_bloom=st.binary(min_size=256, max_size=256),
    difficulty=st.integers(0, 2**64),
    number=st.integers(0, 2**63),
    gas_limit=st.integers(0, 2**63),
    gas_used=st.integers(0, 2**63),
    timestamp=st.integers(0, 2**63),
    extra_data=st.binary(max_size=200),
    mix_hash=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=8, max_size=8),
    base_fee=st.none() | st.integers(0, 2**64),
)


@given(headers)
@settings(max_examples=200)
def test_header_rlp_and_rpc_forms_round_trip(header):
    assert BlockHeader.decode(header.encode()) == header
    assert BlockHeader.from_rpc(header.to_rpc()) == header


def test_header_tail_fields_need_the_one_before():
    header = BlockHeader.from_rpc(BLOCKS[1]["header"])
    cancun = replace(header, withdrawals_root=bytes(32), blob_gas_used=0, excess_blob_gas=0,
                     parent_beacon_block_root=bytes(32))
    assert len(cancun.rlp_fields()) == 20
    assert BlockHeader.decode(cancun.encode()) == cancun
    with pytest.raises(HeaderError):
        BlockHeader.decode(b"\xc0")


@pytest.mark.parametrize("round_", [0, 1, 0xFEDCBA])
def test_combined_hashes_equal_the_separate_ones(round_):
    from chain.qbft.hashing import block_and_seal_hashes

    header = _v10_header(with_seals=True)
    extra = xd.decode(header.extra_data).with_seals(xd.decode(header.extra_data).seals, round_)
    header = header.with_extra_data(xd.encode(extra))
    assert block_and_seal_hashes(header, extra) == (block_hash(header), commit_seal_hash(header))
