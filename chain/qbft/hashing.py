"""The three QBFT hashes, each excluding exactly what Besu's ``BftBlockHashing`` excludes.

- block hash (``hash``, ``parentHash``): extraData re-encoded without seals and with round 0;
  the genesis block (number 0) is hashed over its raw extraData.
- commit-seal hash (what every commit seal signs, and the digest of PREPARE and COMMIT
  messages): extraData re-encoded without seals, keeping the round.
- what a proposer signs is the PROPOSAL message, not the header: see ``chain.qbft.messages``.

Hashing re-encodes the decoded extraData, so non-canonical input (a DROP vote written 00, items
after the seals) is canonicalised first, as Besu does.
"""

from __future__ import annotations

from eth_hash.auto import keccak

from chain import fastrlp
from chain.qbft import extra_data as xd
from chain.qbft.header import BlockHeader

_EXTRA_INDEX = 12


def block_hash(header: BlockHeader, extra: xd.ExtraData | None = None) -> bytes:
    """``extra`` spares decoding the header's extraData again when the caller has it."""
    if header.number == 0:
        return header.raw_hash()
    if extra is None:
        extra = xd.decode(header.extra_data)
    hashed = header.with_extra_data(xd.encode(extra, xd.Encoding.EXCLUDE_COMMIT_SEALS_AND_ROUND))
    return bytes(keccak(hashed.encode()))


def commit_seal_hash(header: BlockHeader, round: int | None = None,
                     extra: xd.ExtraData | None = None) -> bytes:
    """Digest the commit seals sign; ``round`` overrides the header's (for a re-proposal)."""
    if extra is None:
        extra = xd.decode(header.extra_data)
    if round is not None:
        extra = extra.with_seals((), round)
    hashed = header.with_extra_data(xd.encode(extra, xd.Encoding.EXCLUDE_COMMIT_SEALS))
    return bytes(keccak(hashed.encode()))


def block_and_seal_hashes(header: BlockHeader, extra: xd.ExtraData) -> tuple[bytes, bytes]:
    """(block hash, commit-seal hash) with the rest of the header encoded only once."""
    fields = header.rlp_fields()
    before = b"".join([fastrlp.encode(f) for f in fields[:_EXTRA_INDEX]])
    after = b"".join([fastrlp.encode(f) for f in fields[_EXTRA_INDEX + 1:]])

    def digest(extra_data: bytes) -> bytes:
        payload = before + fastrlp.encode(extra_data) + after
        return bytes(keccak(fastrlp.encode_list_payload(payload)))

    seal = digest(xd.encode(extra, xd.Encoding.EXCLUDE_COMMIT_SEALS))
    if header.number == 0:
        return header.raw_hash(), seal
    if extra.round == 0:
        return seal, seal
    return digest(xd.encode(extra, xd.Encoding.EXCLUDE_COMMIT_SEALS_AND_ROUND)), seal
