"""QBFT wire messages: Consensys' shared QBFT message vectors, both Besu layouts, strictness."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.attest.keys import LocalSigner
from chain.qbft import extra_data as xd
from chain.qbft import messages as m
from chain.qbft.block import Block, encode_list_raw
from chain.qbft.hashing import commit_seal_hash
from chain.qbft.header import BFT_MIX_HASH, EMPTY_OMMERS_HASH, BlockHeader
from chain.qbft.seals import SECP256K1_N, recover

DATA = Path(__file__).parents[1] / "data" / "qbft_messages_consensys.json"
VECTORS = json.loads(DATA.read_text())
CASES = VECTORS["cases"]
CODES = {"prepare": m.PREPARE, "commit": m.COMMIT, "roundChange": m.ROUND_CHANGE, "proposal": m.PROPOSAL}
SIGNERS = [LocalSigner((i + 1).to_bytes(32, "big")) for i in range(4)]


def h(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def vector(name: str) -> tuple[int, bytes, dict]:
    case = CASES[name]
    return CODES[case["message"]["type"]], h(case["rlp"]), case["message"]


@pytest.mark.parametrize("name", list(CASES))
def test_consensys_vector_decodes_and_reencodes_byte_for_byte(name):
    code, raw, _ = vector(name)
    msg = m.decode(code, raw)
    assert msg.code == code
    assert msg.encode() == raw


def test_consensys_prepare_and_commit_fields_match_the_vector():
    _, raw, spec = vector("prepare")
    prepare = m.Prepare.decode(raw)
    want = spec["unsignedPrepare"]
    assert (prepare.height, prepare.round, prepare.digest) == (want["sequence"], want["round"],
                                                               h(want["digest"]))
    assert prepare.signed.signature == h(spec["signature"])
    assert prepare.author == recover(h(spec["signature"]),
                                     m.signing_hash(m.PREPARE, prepare.signed.payload_rlp))

    _, raw, spec = vector("commit")
    commit = m.Commit.decode(raw)
    want = spec["unsignedCommit"]
    assert (commit.height, commit.round, commit.digest, commit.seal) == (
        want["sequence"], want["round"], h(want["digest"]), h(want["commitSeal"]))


def test_consensys_round_change_with_prepares_carries_block_metadata_and_prepares():
    _, raw, spec = vector("roundChange_with_prepares")
    rc = m.RoundChange.decode(raw)
    meta = spec["signedRoundChange"]["unsignedRoundChange"]
    assert rc.fmt is m.WireFormat.LEGACY
    assert rc.prepared == m.PreparedRound(meta["preparedRound"], h(meta["preparedValue"]))
    assert rc.prepared_block is not None and rc.prepared_block.encode() == h(spec["block"])
    assert [p.payload.digest for p in rc.prepares] == [h(p["unsignedPrepare"]["digest"])
                                                       for p in spec["prepares"]]
    _, raw, spec = vector("roundChange_empty_prepares")
    empty = m.RoundChange.decode(raw)
    assert (empty.prepared, empty.prepared_block, empty.prepares) == (None, None, ())


def test_consensys_proposal_carries_block_and_justifications():
    _, raw, spec = vector("proposal_with_prepares_and_roundChanges")
    proposal = m.Proposal.decode(raw)
    assert proposal.signed.payload.fmt is m.WireFormat.LEGACY
    assert proposal.block.encode() == h(spec["signedProposal"]["unsignedProposal"]["block"])
    assert len(proposal.round_changes) == len(spec["roundChanges"]) == 1
    assert len(proposal.prepares) == len(spec["prepares"]) == 1
    # The justifications are the very SignedData of the stand-alone vectors.
    assert proposal.prepares[0].encode() == m.Prepare.decode(vector("prepare")[1]).encode()


def test_besu_26_1_layout_adds_an_empty_access_list_slot_to_proposal_payload():
    _, raw, _ = vector("proposal_empty_prepares_and_roundChanges")
    legacy = m.Proposal.decode(raw).signed.payload
    new = m.ProposalPayload(legacy.height, legacy.round, legacy.block, None, m.WireFormat.BESU_26_1)
    legacy_items = encode_list_raw([m._enc_int(1), m._enc_int(0), legacy.block.encode()])
    assert legacy.encode() == legacy_items
    assert new.encode() == encode_list_raw([m._enc_int(1), m._enc_int(0), legacy.block.encode(), b"\x80"])
    assert m.ProposalPayload.decode(new.encode()) == new


def test_besu_26_1_round_change_is_not_misread_as_legacy_or_back():
    _, raw, _ = vector("roundChange_with_prepares")
    legacy = m.RoundChange.decode(raw)
    new = m.RoundChange.create(SIGNERS[0], 1, 1, prepared=legacy.prepared,
                               prepared_block=legacy.prepared_block, prepares=legacy.prepares)
    items = m._list(new.encode(), "rc")
    assert len(items) == 4 and items[2] == b"\x80"
    again = m.RoundChange.decode(new.encode())
    assert again.fmt is m.WireFormat.BESU_26_1
    assert again.prepares == legacy.prepares and again.prepared_block == legacy.prepared_block


@pytest.mark.parametrize(("version", "fmt"), [
    ("25.12.0", m.WireFormat.LEGACY), ("26.1.0", m.WireFormat.BESU_26_1),
    ("v26.3.1", m.WireFormat.BESU_26_1), ("24.1", m.WireFormat.LEGACY),
])
def test_wire_format_follows_the_besu_release(version, fmt):
    assert m.wire_format_for(version) is fmt


def test_default_wire_format_is_current_besu():
    assert m.DEFAULT_FORMAT is m.WireFormat.BESU_26_1


def test_unparseable_besu_version_names_the_expected_form():
    with pytest.raises(m.MessageError, match=r"MAJOR\.MINOR"):
        m.wire_format_for("latest")


# --- strictness -------------------------------------------------------------------------------


def _resign(payload_rlp: bytes, code: int, sig_override: bytes | None = None) -> bytes:
    sig = sig_override or SIGNERS[0].sign_digest(m.signing_hash(code, payload_rlp))
    return encode_list_raw([payload_rlp, m._enc_bytes(sig)])


def test_high_s_signature_is_rejected_as_besu_signed_data_does():
    prepare = m.Prepare.create(SIGNERS[0], 5, 0, bytes(32))
    sig = prepare.signed.signature
    s = int.from_bytes(sig[32:64], "big")
    high = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([sig[64] ^ 1])
    with pytest.raises(m.MessageError, match="high-s"):
        m.decode(m.PREPARE, _resign(prepare.signed.payload_rlp, m.PREPARE, high))


def test_recid_27_is_rejected():
    prepare = m.Prepare.create(SIGNERS[0], 5, 0, bytes(32))
    sig = prepare.signed.signature[:64] + bytes([27])
    with pytest.raises(m.MessageError, match="recId"):
        m.decode(m.PREPARE, _resign(prepare.signed.payload_rlp, m.PREPARE, sig))


@pytest.mark.parametrize(("payload", "error"), [
    (encode_list_raw([b"\x05", b"\x80", m._enc_bytes(bytes(31))]), "digest is 31 bytes"),
    (encode_list_raw([b"\x05", b"\x82\x00\x01", m._enc_bytes(bytes(32))]), "leading zero"),
    (encode_list_raw([b"\x05", b"\x80"]), "2 items, expected 3"),
    (encode_list_raw([b"\x05", b"\x85\x01\x00\x00\x00\x00", m._enc_bytes(bytes(32))]), "exceeds"),
    (encode_list_raw([b"\x81\x05", b"\x80", m._enc_bytes(bytes(32))]), "non-canonical"),
])
def test_malformed_prepare_payload_is_rejected_with_its_reason(payload, error):
    with pytest.raises(m.MessageError, match=error):
        m.decode(m.PREPARE, _resign(payload, m.PREPARE))


def test_trailing_bytes_after_a_message_are_rejected():
    raw = m.Prepare.create(SIGNERS[0], 5, 0, bytes(32)).encode()
    with pytest.raises(m.MessageError, match="follow the RLP message"):
        m.decode(m.PREPARE, raw + b"\x00")


def test_unknown_code_and_empty_body_are_rejected():
    with pytest.raises(m.MessageError, match="0x16 is not a QBFT message"):
        m.decode(0x16, b"\xc0")
    with pytest.raises(m.MessageError, match="empty"):
        m.decode(m.COMMIT, b"")


def test_message_sent_under_another_code_does_not_recover_its_author():
    prepare = m.Prepare.create(SIGNERS[0], 5, 0, bytes(32))
    # A PREPARE payload re-labelled as COMMIT fails the layout; the signature binds the code too.
    assert m.signing_hash(m.PREPARE, prepare.signed.payload_rlp) != m.signing_hash(
        m.COMMIT, prepare.signed.payload_rlp)
    with pytest.raises(m.MessageError):
        m.decode(m.COMMIT, prepare.encode())


def test_legacy_format_refuses_to_drop_an_access_list():
    _, raw, _ = vector("proposal_empty_prepares_and_roundChanges")
    payload = m.Proposal.decode(raw).signed.payload
    with pytest.raises(m.MessageError, match=r"pre-26\.1"):
        m.ProposalPayload(1, 0, payload.block, b"\xc0", m.WireFormat.LEGACY).encode()


# --- properties -------------------------------------------------------------------------------

formats = st.sampled_from(list(m.WireFormat))
heights = st.integers(0, m.MAX_HEIGHT)
rounds = st.integers(0, m.MAX_ROUND)
hashes = st.binary(min_size=32, max_size=32)
signers = st.sampled_from(SIGNERS)


@st.composite
def blocks(draw, height: int | None = None, round: int | None = None, txs: bool = True):
    number = draw(heights) if height is None else height
    r = draw(rounds) if round is None else round
    validators = tuple(sorted(s.address for s in SIGNERS))
    vote = draw(st.none() | st.builds(xd.Vote, st.binary(min_size=20, max_size=20), st.booleans()))
    extra = xd.ExtraData(draw(st.binary(max_size=32)), validators, vote, r, ())
    header = BlockHeader(
        parent_hash=draw(hashes), ommers_hash=EMPTY_OMMERS_HASH,
        coinbase=draw(st.sampled_from(validators)), state_root=draw(hashes),
        transactions_root=draw(hashes), receipts_root=draw(hashes), logs_bloom=bytes(256),
        difficulty=1, number=number, gas_limit=draw(st.integers(5000, 2**63)),
        gas_used=draw(st.integers(0, 2**32)), timestamp=draw(st.integers(0, 2**40)),
        extra_data=xd.encode(extra), mix_hash=BFT_MIX_HASH, nonce=bytes(8),
        base_fee=draw(st.none() | st.integers(0, 2**64)),
    )
    body = draw(st.lists(st.builds(lambda t, b: bytes([t]) + b, st.integers(1, 0x7F),
                                   st.binary(max_size=80)), max_size=3)) if txs else []
    return Block(header, tuple(body))


def signed_prepare(draw, height: int, round: int, digest: bytes) -> m.Signed[m.PreparePayload]:
    return m.Signed.create(m.PreparePayload(height, round, digest), draw(signers))


@st.composite
def messages(draw) -> m.Message:
    kind = draw(st.sampled_from(["prepare", "commit", "round_change", "proposal"]))
    signer = draw(signers)
    height, round_ = draw(heights), draw(rounds)
    if kind == "prepare":
        return m.Prepare.create(signer, height, round_, draw(hashes))
    if kind == "commit":
        digest = draw(hashes)
        return m.Commit.create(signer, height, round_, digest, draw(signers).sign_digest(digest))
    fmt = draw(formats)
    if kind == "round_change":
        if draw(st.booleans()):
            return m.RoundChange.create(signer, height, round_, fmt=fmt)
        prepared_round = draw(st.integers(0, max(round_ - 1, 0)))
        block = draw(blocks(height, prepared_round, txs=False))
        digest = commit_seal_hash(block.header)
        prepares = tuple(signed_prepare(draw, height, prepared_round, digest)
                         for _ in range(draw(st.integers(0, 3))))
        return m.RoundChange.create(signer, height, round_, fmt=fmt, prepared_block=block,
                                    prepared=m.PreparedRound(prepared_round, digest),
                                    prepares=prepares)
    block = draw(blocks(height, round_))
    rcs = tuple(m.Signed.create(m.RoundChangePayload(height, round_, draw(
        st.none() | st.builds(m.PreparedRound, rounds, hashes))), draw(signers))
        for _ in range(draw(st.integers(0, 2))))
    prepares = tuple(signed_prepare(draw, height, draw(rounds), draw(hashes))
                     for _ in range(draw(st.integers(0, 2))))
    return m.Proposal.create(signer, height, round_, block, round_changes=rcs, prepares=prepares,
                             fmt=fmt)


@settings(max_examples=150, deadline=None)
@given(messages())
def test_every_message_round_trips_exactly(msg):
    raw = msg.encode()
    again = m.decode(msg.code, raw)
    assert again == msg
    assert again.encode() == raw
    assert again.author == msg.author


def _fingerprint(msg: m.Message) -> tuple[object, ...]:
    """What a receiver can trust: every signed part's author, and for a ROUND_CHANGE the
    prepared block's digest (the block itself travels unsigned, bound by the signed hash)."""
    authors: list[bytes] = [msg.author]
    if isinstance(msg, m.Proposal):
        authors += [s.author for s in msg.round_changes + msg.prepares]
    bound: bytes | None = None
    if isinstance(msg, m.RoundChange):
        authors += [s.author for s in msg.prepares]
        if msg.prepared_block is not None:
            try:
                bound = commit_seal_hash(msg.prepared_block.header)
            except ValueError:
                bound = b"undecodable extraData"
    return tuple(authors), bound


@settings(max_examples=300, deadline=None)
@given(messages(), st.data())
def test_any_flipped_byte_is_rejected_or_changes_what_the_receiver_trusts(msg, data):
    raw = bytearray(msg.encode())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        forged = m.decode(msg.code, bytes(raw))
    except m.MessageError:
        return
    assert _fingerprint(forged) != _fingerprint(msg)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(CODES.values())), st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_anything_but_message_error(code, raw):
    with contextlib.suppress(m.MessageError):
        m.decode(code, raw)


def test_signing_hash_is_keccak_of_the_rlp_list_of_code_and_payload():
    # Besu's QbftPayload.hashForSignature: startList; writeIntScalar(code); writeRaw(payload).
    payload = m.PreparePayload(1, 0, bytes(range(32))).encode()
    assert payload == bytes.fromhex("e30180a0") + bytes(range(32))
    preimage = bytes.fromhex("e513") + payload
    assert m.signing_hash(m.PREPARE, payload) == keccak(preimage)
    prepare = m.Prepare.create(SIGNERS[2], 1, 0, bytes(range(32)))
    assert recover(prepare.signed.signature, keccak(preimage)) == SIGNERS[2].address
