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

from chain.qbft import extra_data as xd
from chain.qbft.header import BlockHeader


def block_hash(header: BlockHeader) -> bytes:
    if header.number == 0:
        return header.raw_hash()
    extra = xd.decode(header.extra_data)
    hashed = header.with_extra_data(xd.encode(extra, xd.Encoding.EXCLUDE_COMMIT_SEALS_AND_ROUND))
    return bytes(keccak(hashed.encode()))


def commit_seal_hash(header: BlockHeader, round: int | None = None) -> bytes:
    """Digest the commit seals sign; ``round`` overrides the header's (for a re-proposal)."""
    extra = xd.decode(header.extra_data)
    if round is not None:
        extra = extra.with_seals((), round)
    hashed = header.with_extra_data(xd.encode(extra, xd.Encoding.EXCLUDE_COMMIT_SEALS))
    return bytes(keccak(hashed.encode()))
