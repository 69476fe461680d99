"""Build small sealed QBFT chains with real keys for the tests (no execution involved)."""

from __future__ import annotations

from chain.qbft import extra_data as xd
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BFT_MIX_HASH, EMPTY_OMMERS_HASH, EMPTY_TRIE_ROOT, BlockHeader
from chain.qbft.proposer import select_proposer
from chain.qbft.quorum import quorum
from chain.qbft.seals import address_of, sign


def keys(n: int, offset: int = 1) -> dict[bytes, bytes]:
    secrets = [(offset + i).to_bytes(32, "big") for i in range(n)]
    return {address_of(s): s for s in secrets}


def genesis_header(validators: list[bytes]) -> BlockHeader:
    return BlockHeader(
        parent_hash=bytes(32), ommers_hash=EMPTY_OMMERS_HASH, coinbase=bytes(20),
        state_root=EMPTY_TRIE_ROOT, transactions_root=EMPTY_TRIE_ROOT,
        receipts_root=EMPTY_TRIE_ROOT, logs_bloom=bytes(256), difficulty=1, number=0,
        gas_limit=30_000_000, gas_used=0, timestamp=1_700_000_000,
        extra_data=xd.encode_genesis(validators), mix_hash=BFT_MIX_HASH, nonce=bytes(8),
        base_fee=0,
    )


def child(parent: BlockHeader, validators: list[bytes], secrets: dict[bytes, bytes], *,
          vote: xd.Vote | None = None, round: int = 0, signers: list[bytes] | None = None,
          coinbase: bytes | None = None, period: int = 1) -> BlockHeader:
    ordered = sorted(validators)
    proposer = coinbase or select_proposer(ordered, parent.coinbase, round)
    extra = xd.ExtraData(bytes(32), tuple(ordered), vote, round, ())
    header = BlockHeader(
        parent_hash=block_hash(parent), ommers_hash=EMPTY_OMMERS_HASH, coinbase=proposer,
        state_root=parent.state_root, transactions_root=EMPTY_TRIE_ROOT,
        receipts_root=EMPTY_TRIE_ROOT, logs_bloom=bytes(256), difficulty=1,
        number=parent.number + 1, gas_limit=parent.gas_limit, gas_used=0,
        timestamp=parent.timestamp + period, extra_data=xd.encode(extra), mix_hash=BFT_MIX_HASH,
        nonce=bytes(8), base_fee=0,
    )
    digest = commit_seal_hash(header)
    who = signers if signers is not None else ordered[: quorum(len(ordered))]
    return header.with_extra_data(xd.encode(extra.with_seals(tuple(sign(secrets[a], digest)
                                                                   for a in who))))
