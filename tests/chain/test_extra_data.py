"""QBFT extraData against Besu's QbftExtraDataCodecTest and its tooling vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rlp
from hypothesis import given
from hypothesis import strategies as st

from chain.qbft import extra_data as xd
from chain.qbft.seals import SECP256K1_N, public_key_to_address

DATA = Path(__file__).parents[1] / "data" / "besu"
VECTORS = json.loads((DATA / "qbft_extra_data.json").read_text())["vectors"]


def h(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _fields(f: dict) -> xd.ExtraData:
    vote = f.get("vote")
    seals = tuple(
        int(s["r"], 16).to_bytes(32, "big") + int(s["s"], 16).to_bytes(32, "big") + bytes([s["v"]])
        for s in f.get("seals", [])
    )
    return xd.ExtraData(
        vanity=h(f["vanity"]) if "vanity" in f else bytes(32),
        validators=tuple(h(v) for v in f["validators"]),
        vote=None if vote is None else xd.Vote(h(vote["recipient"]), vote["type"] == "ADD"),
        round=f.get("round", 0),
        seals=seals,
    )


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_besu_vector_encodes_and_decodes_byte_identically(vector):
    fields = _fields(vector["fields"])
    assert "0x" + xd.encode(fields).hex() == vector["expected"]
    assert xd.decode(h(vector["expected"])) == fields


def test_genesis_extra_data_keeps_input_order_like_besu_tooling():
    vector = next(v for v in VECTORS if "input order kept" in v["name"])
    validators = [h(a) for a in vector["fields"]["validators"]]
    assert validators != sorted(validators)
    assert "0x" + xd.encode_genesis(validators).hex() == vector["expected"]


def test_imported_public_keys_give_the_validators_besu_derives():
    vector = next(v for v in VECTORS if "public_keys" in v)
    addresses = ["0x" + public_key_to_address(h(k)).hex() for k in vector["public_keys"]]
    assert addresses == vector["fields"]["validators"]


def test_exclude_modes_match_besu_structure():
    # Derived in the research notes from QbftExtraDataCodecTest's inputs (V1).
    full = _fields(VECTORS[0]["fields"])
    without_seals = xd.encode(full, xd.Encoding.EXCLUDE_COMMIT_SEALS)
    assert without_seals.hex() == (
        "f869a00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20ea9400000000000000"
        "00000000000000000000000001940000000000000000000000000000000000000002d79400000000000000000"
        "0000000000000000000000181ff83fedcbac0")
    without_round = xd.encode(full, xd.Encoding.EXCLUDE_COMMIT_SEALS_AND_ROUND)
    assert without_round.hex().endswith("81ff80c0")
    assert xd.decode(without_round).round == 0 and xd.decode(without_round).seals == ()


def test_drop_vote_is_written_as_empty_bytes_and_read_from_00_too():
    base = xd.ExtraData(bytes(32), (), xd.Vote(b"\x01" * 20, add=False), 0, ())
    encoded = xd.encode(base)
    assert bytes.fromhex("d694" + "01" * 20 + "80") in encoded
    legacy = encoded.replace(bytes.fromhex("d694" + "01" * 20 + "80"),
                             bytes.fromhex("d694" + "01" * 20 + "00"))
    assert xd.decode(legacy).vote == xd.Vote(b"\x01" * 20, add=False)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.replace(bytes.fromhex("c080c0"), bytes.fromhex("8080c0")), "IBFT 2.0"),
        (lambda e: b"", "empty"),
        (lambda e: e + b"\x00", "not valid RLP"),
        (lambda e: bytes.fromhex("c0"), "expected 5"),
    ],
    ids=["ibft2-absent-vote", "empty", "trailing-bytes", "short-list"],
)
def test_malformed_extra_data_is_refused_with_a_reason(mutate, reason):
    good = xd.encode_genesis([b"\x11" * 20])
    with pytest.raises(xd.ExtraDataError, match=reason):
        xd.decode(mutate(good))


def test_items_after_the_seals_are_ignored_as_besu_reads_leniently():
    extra = xd.ExtraData(bytes(32), (b"\x11" * 20,), None, 3, ())
    longer = rlp.encode([extra.vanity, list(extra.validators), [], b"\x03", [], b"junk"])
    assert xd.decode(longer) == extra
    # and hashing re-encodes canonically, so the junk never reaches a hash
    assert xd.encode(xd.decode(longer)) == xd.encode(extra)


def test_round_with_a_leading_zero_is_refused_like_besu_read_int_scalar():
    raw = rlp.encode([bytes(32), [], [], b"\x00\x01", []])
    with pytest.raises(xd.ExtraDataError, match="leading zero"):
        xd.decode(raw)


@pytest.mark.parametrize("rec_id", [27, 28, 2])
def test_seal_with_ethereum_style_recovery_id_is_refused(rec_id):
    seal = (1).to_bytes(32, "big") + (1).to_bytes(32, "big") + bytes([rec_id])
    with pytest.raises(xd.ExtraDataError, match="recId"):
        xd.decode(xd.encode(xd.ExtraData(bytes(32), (), None, 0, (seal,))))


def test_seal_with_s_out_of_range_is_refused():
    seal = (1).to_bytes(32, "big") + SECP256K1_N.to_bytes(32, "big") + b"\x00"
    with pytest.raises(xd.ExtraDataError, match="outside"):
        xd.decode(xd.encode(xd.ExtraData(bytes(32), (), None, 0, (seal,))))


addresses = st.binary(min_size=20, max_size=20)
seals = st.tuples(st.integers(1, SECP256K1_N - 1), st.integers(1, SECP256K1_N - 1),
                  st.sampled_from([0, 1])).map(
    lambda t: t[0].to_bytes(32, "big") + t[1].to_bytes(32, "big") + bytes([t[2]]))
extras = st.builds(
    xd.ExtraData,
    vanity=st.binary(max_size=40),
    validators=st.lists(addresses, max_size=8).map(tuple),
    vote=st.none() | st.builds(xd.Vote, addresses, st.booleans()),
    round=st.integers(0, 2**31 - 1),
    seals=st.lists(seals, max_size=5).map(tuple),
)


@given(extras)
def test_encode_decode_round_trips(extra):
    assert xd.decode(xd.encode(extra)) == extra


@given(extras, st.data())
def test_any_flipped_byte_is_refused_or_changes_the_fields(extra, data):
    encoded = bytearray(xd.encode(extra))
    i = data.draw(st.integers(0, len(encoded) - 1))
    encoded[i] ^= data.draw(st.integers(1, 255))
    try:
        decoded = xd.decode(bytes(encoded))
    except xd.ExtraDataError:
        return
    assert decoded != extra
