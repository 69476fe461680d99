"""QBFT header validation, as Besu's ``QbftBlockHeaderValidationRulesetFactory`` applies it.

``verify_commit_seals`` is ``BftCommitSealsValidationRule``: every seal recovers over the
commit-seal hash, the committers are distinct members of the validators after the parent, and
there are at least ``quorum(n)`` of them. ``verify_header`` adds the other QBFT header rules:
ancestry, BFT constants (mixHash, difficulty), validators sorted and equal to the expected set
(block-header mode) or empty with no vote (contract mode), coinbase a validator, the block
period, gas limits, and optionally the future-timestamp bound.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from chain.qbft import extra_data as xd
from chain.qbft.hashing import block_and_seal_hashes, block_hash, commit_seal_hash
from chain.qbft.header import BFT_MIX_HASH, BlockHeader, HeaderError
from chain.qbft.quorum import quorum
from chain.qbft.seals import SealError, recover

GAS_LIMIT_MINIMUM = 5000
GAS_LIMIT_BOUND_DIVISOR = 1024


@dataclass(frozen=True, slots=True)
class SealedBlock:
    """What a verified header proved: its hash, decoded extraData and who committed it."""

    hash: bytes
    extra: xd.ExtraData
    committers: tuple[bytes, ...]


def _addr(a: bytes) -> str:
    return "0x" + a.hex()


def verify_commit_seals(
    header: BlockHeader, validators: Collection[bytes], extra: xd.ExtraData | None = None,
    digest: bytes | None = None,
) -> tuple[bytes, ...]:
    """Committers recovered from the seals; HeaderError naming the first problem otherwise."""
    if extra is None:
        try:
            extra = xd.decode(header.extra_data)
        except xd.ExtraDataError as exc:
            raise HeaderError(f"block {header.number}: {exc}") from exc
    if digest is None:
        digest = commit_seal_hash(header, extra=extra)
    allowed = set(validators)
    committers: list[bytes] = []
    for i, seal in enumerate(extra.seals):
        try:
            who = recover(seal, digest)
        except SealError as exc:
            raise HeaderError(f"block {header.number}: commit seal {i} is invalid: {exc}") from exc
        if who not in allowed:
            raise HeaderError(
                f"block {header.number}: commit seal {i} is by {_addr(who)}, "
                "which is not a validator of this block"
            )
        if who in committers:
            raise HeaderError(
                f"block {header.number}: commit seal {i} duplicates the seal of {_addr(who)}"
            )
        committers.append(who)
    need = quorum(len(allowed))
    if len(committers) < need:
        raise HeaderError(
            f"block {header.number}: {len(committers)} commit seals, quorum of "
            f"{len(allowed)} validators is {need}"
        )
    return tuple(committers)


def verify_header(
    header: BlockHeader,
    parent: BlockHeader,
    validators: Collection[bytes],
    *,
    block_period_seconds: int = 1,
    contract_mode: bool = False,
    now: int | None = None,
    parent_hash: bytes | None = None,
    seals: bool = True,
) -> SealedBlock:
    """Check ``header`` against its parent and the validators after the parent.

    ``parent_hash`` spares recomputing the parent's hash when the caller already has it.
    ``now`` (unix seconds) enables Besu's rule that a timestamp is at most 1 s in the future.
    ``seals=False`` checks a proposed block, which has no commit seals yet (Besu validates
    proposals in ``HeaderValidationMode.LIGHT``, which leaves out the commit-seal rule); the
    result then names no committers.
    """
    n = header.number

    def bad(message: str) -> HeaderError:
        return HeaderError(f"block {n}: {message}")

    if n != parent.number + 1:
        raise bad(f"number does not follow its parent {parent.number}")
    expected_parent = parent_hash if parent_hash is not None else block_hash(parent)
    if header.parent_hash != expected_parent:
        raise bad(f"parentHash {_addr(header.parent_hash)} is not the hash of block "
                  f"{parent.number} ({_addr(expected_parent)})")
    try:
        extra = xd.decode(header.extra_data)
    except xd.ExtraDataError as exc:
        raise bad(str(exc)) from exc
    if header.mix_hash != BFT_MIX_HASH:
        raise bad(f"mixHash {_addr(header.mix_hash)} is not the BFT constant")
    if header.difficulty != 1:
        raise bad(f"difficulty is {header.difficulty}, QBFT blocks have difficulty 1")
    expected = sorted(set(validators))
    if contract_mode:
        if extra.validators or extra.vote is not None:
            raise bad("contract-mode blocks must list no validators and carry no vote")
    else:
        if list(extra.validators) != sorted(extra.validators):
            raise bad("validators in extraData are not sorted ascending")
        if list(extra.validators) != expected:
            listed = {_addr(v) for v in extra.validators}
            want = {_addr(v) for v in expected}
            raise bad(
                "validators in extraData differ from the set after the parent: "
                f"unexpected {sorted(listed - want) or 'none'}, missing {sorted(want - listed) or 'none'}"
            )
    if header.coinbase not in set(validators):
        raise bad(f"coinbase {_addr(header.coinbase)} is not a validator")
    if block_period_seconds >= 1 and header.timestamp < parent.timestamp + block_period_seconds:
        raise bad(f"timestamp {header.timestamp} is less than {block_period_seconds}s after "
                  f"its parent's {parent.timestamp}")
    if now is not None and header.timestamp > now + 1:
        raise bad(f"timestamp {header.timestamp} is in the future (now {now})")
    if header.gas_used > header.gas_limit:
        raise bad(f"gasUsed {header.gas_used} exceeds gasLimit {header.gas_limit}")
    if header.gas_limit < GAS_LIMIT_MINIMUM:
        raise bad(f"gasLimit {header.gas_limit} is below the minimum {GAS_LIMIT_MINIMUM}")
    if abs(header.gas_limit - parent.gas_limit) >= max(parent.gas_limit // GAS_LIMIT_BOUND_DIVISOR,
                                                        1) and header.gas_limit != parent.gas_limit:
        raise bad(f"gasLimit {header.gas_limit} moved too far from the parent's {parent.gas_limit}")
    own_hash, seal_hash = block_and_seal_hashes(header, extra)
    committers = verify_commit_seals(header, validators, extra, seal_hash) if seals else ()
    return SealedBlock(own_hash, extra, committers)
