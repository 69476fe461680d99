"""Message validation, rule for rule as Besu's qbft-core ``validation`` package.

Each check returns None when the message is valid, otherwise the reason it is not, which the
engine reports in a ``Rejected`` output. Signatures were recovered once, when the message was
decoded; these checks only compare authors, rounds and digests, except a COMMIT's seal, which is
recovered here exactly once per message.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.hashing import commit_seal_hash
from chain.qbft.header import BlockHeader
from chain.qbft.messages import (
    Commit,
    PreparePayload,
    Proposal,
    RoundChange,
    RoundChangePayload,
    Signed,
)
from chain.qbft.proposer import select_proposer
from chain.qbft.quorum import quorum
from chain.qbft.seals import SealError, recover

BlockCheck = Callable[[Block], str | None]
"""Full validation of a proposed block (header rules and execution): None, or the reason."""


def _a(address: bytes) -> str:
    return "0x" + address.hex()


@dataclass
class HeightContext:
    """The facts every message at one height is judged against."""

    parent: BlockHeader
    validators: tuple[bytes, ...]
    """Sorted validators after the parent: the ones that may send messages at this height."""
    members: frozenset[bytes] = field(init=False)
    quorum: int = field(init=False)
    _proposers: dict[int, bytes] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.members = frozenset(self.validators)
        self.quorum = quorum(len(self.validators))

    @property
    def height(self) -> int:
        return self.parent.number + 1

    def proposer(self, round: int) -> bytes:
        who = self._proposers.get(round)
        if who is None:
            who = self._proposers[round] = select_proposer(self.validators, self.parent.coinbase,
                                                           round)
        return who


def with_round(block: Block, round: int) -> Block:
    """The block with only the round in its extraData replaced (Besu keeps the coinbase)."""
    extra = xd.decode(block.header.extra_data)
    if extra.round == round:
        return block
    header = block.header.with_extra_data(xd.encode(extra.with_seals((), round)))
    return Block(header, block.transactions, block.withdrawals)


def digest_of(block: Block, round: int | None = None) -> bytes:
    """What PREPAREs carry for ``block`` (and what COMMIT seals sign, with ``round``)."""
    return commit_seal_hash(block.header, round)


def _duplicate_author(items: Iterable[Signed[PreparePayload]] | Iterable[Signed[RoundChangePayload]]
                      ) -> bytes | None:
    seen: set[bytes] = set()
    for item in items:
        if item.author in seen:
            return item.author
        seen.add(item.author)
    return None


def check_prepare(h: HeightContext, signed: Signed[PreparePayload], round: int,
                  digest: bytes) -> str | None:
    """``PrepareValidator``: a validator's PREPARE for exactly (height, round) and ``digest``."""
    p = signed.payload
    if signed.author not in h.members:
        return f"PREPARE from {_a(signed.author)}, which is not a validator at height {h.height}"
    if (p.height, p.round) != (h.height, round):
        return f"PREPARE for {p.height}/{p.round}, expected {h.height}/{round}"
    if p.digest != digest:
        return f"PREPARE digest 0x{p.digest.hex()} is not the proposal's 0x{digest.hex()}"
    return None


def check_commit(h: HeightContext, msg: Commit, round: int, digest: bytes,
                 commit_digest: bytes) -> str | None:
    """``CommitValidator``: as a PREPARE, and the seal is the author's over the commit hash."""
    p = msg.signed.payload
    if msg.author not in h.members:
        return f"COMMIT from {_a(msg.author)}, which is not a validator at height {h.height}"
    if (p.height, p.round) != (h.height, round):
        return f"COMMIT for {p.height}/{p.round}, expected {h.height}/{round}"
    if p.digest != digest:
        return f"COMMIT digest 0x{p.digest.hex()} is not the proposal's 0x{digest.hex()}"
    try:
        sealer = recover(p.seal, commit_digest)
    except SealError as exc:
        return f"COMMIT seal from {_a(msg.author)} does not recover: {exc}"
    if sealer != msg.author:
        return f"COMMIT seal was made by {_a(sealer)}, not by the sender {_a(msg.author)}"
    return None


def check_round_change_payload(h: HeightContext, signed: Signed[RoundChangePayload]) -> str | None:
    """``RoundChangePayloadValidator``."""
    p = signed.payload
    if signed.author not in h.members:
        return f"ROUND_CHANGE from {_a(signed.author)}, which is not a validator at height {h.height}"
    if p.height != h.height:
        return f"ROUND_CHANGE for height {p.height}, expected {h.height}"
    if p.round <= 0:
        return "ROUND_CHANGE must target a round above 0"
    if p.prepared is not None and p.prepared.round >= p.round:
        return (f"ROUND_CHANGE to round {p.round} claims a block prepared in round "
                f"{p.prepared.round}, which is not earlier")
    return None


def _check_prepares(h: HeightContext, prepares: Collection[Signed[PreparePayload]], round: int,
                    digest: bytes, what: str) -> str | None:
    dup = _duplicate_author(prepares)
    if dup is not None:
        return f"{what} carries two PREPAREs from {_a(dup)}"
    if len(prepares) < h.quorum:
        return f"{what} carries {len(prepares)} PREPAREs, a quorum is {h.quorum}"
    for prepare in prepares:
        reason = check_prepare(h, prepare, round, digest)
        if reason is not None:
            return f"{what}: {reason}"
    return None


def check_round_change(h: HeightContext, msg: RoundChange, block_check: BlockCheck) -> str | None:
    """``RoundChangeMessageValidator``: a prepared block, if any, is valid, matches the signed
    prepared hash and comes with a quorum of PREPAREs for it."""
    reason = check_round_change_payload(h, msg.signed)
    if reason is not None:
        return reason
    prepared = msg.prepared
    if msg.prepared_block is None:
        if prepared is not None:
            return "ROUND_CHANGE claims a prepared block but does not carry it"
        return None
    if prepared is None:
        return "ROUND_CHANGE carries a block but no prepared round and hash"
    reason = block_check(msg.prepared_block)
    if reason is not None:
        return f"ROUND_CHANGE prepared block is invalid: {reason}"
    if digest_of(msg.prepared_block) != prepared.block_hash:
        return "ROUND_CHANGE prepared block does not match its signed prepared hash"
    return _check_prepares(h, msg.prepares, prepared.round, prepared.block_hash, "ROUND_CHANGE")


def check_proposal(h: HeightContext, msg: Proposal, round: int, block_check: BlockCheck
                   ) -> str | None:
    """``ProposalValidator`` with ``ProposalPayloadValidator``."""
    expected = h.proposer(round)
    if msg.author != expected:
        return f"PROPOSAL from {_a(msg.author)}, the proposer of {h.height}/{round} is {_a(expected)}"
    if (msg.height, msg.round) != (h.height, round):
        return f"PROPOSAL for {msg.height}/{msg.round}, expected {h.height}/{round}"
    reason = block_check(msg.block)
    if reason is not None:
        return f"PROPOSAL block is invalid: {reason}"
    if msg.block.header.number != msg.height:
        return f"PROPOSAL block number {msg.block.header.number} is not the height {msg.height}"
    if round == 0:
        if msg.round_changes or msg.prepares:
            return "a round-0 PROPOSAL must carry no ROUND_CHANGEs or PREPAREs"
        return _coinbase_is_author(msg)
    reason = _check_justification(h, msg)
    if reason is not None:
        return reason
    latest = max((rc for rc in msg.round_changes if rc.payload.prepared is not None),
                 key=lambda rc: rc.payload.prepared.round if rc.payload.prepared else -1,
                 default=None)
    if latest is None or latest.payload.prepared is None:
        if msg.prepares:
            return "PROPOSAL without a prepared ROUND_CHANGE must carry no PREPAREs"
        return _coinbase_is_author(msg)
    prepared = latest.payload.prepared
    try:
        prior = digest_of(msg.block, prepared.round)
    except ValueError as exc:
        return f"PROPOSAL block extraData: {exc}"
    if prior != prepared.block_hash:
        return ("PROPOSAL block, set back to its prepared round "
                f"{prepared.round}, does not hash to the prepared block hash")
    return _check_prepares(h, msg.prepares, prepared.round, prepared.block_hash, "PROPOSAL")


def _coinbase_is_author(msg: Proposal) -> str | None:
    if msg.block.header.coinbase != msg.author:
        return (f"PROPOSAL block coinbase {_a(msg.block.header.coinbase)} is not its proposer "
                f"{_a(msg.author)}")
    return None


def _check_justification(h: HeightContext, msg: Proposal) -> str | None:
    rcs = msg.round_changes
    dup = _duplicate_author(rcs)
    if dup is not None:
        return f"PROPOSAL carries two ROUND_CHANGEs from {_a(dup)}"
    if len(rcs) < h.quorum:
        return f"PROPOSAL carries {len(rcs)} ROUND_CHANGEs, a quorum is {h.quorum}"
    by_round: dict[int, bytes] = {}
    for rc in rcs:
        prepared = rc.payload.prepared
        if prepared is None:
            continue
        if by_round.setdefault(prepared.round, prepared.block_hash) != prepared.block_hash:
            return f"PROPOSAL ROUND_CHANGEs name different blocks prepared in round {prepared.round}"
    for rc in rcs:
        reason = check_round_change_payload(h, rc)
        if reason is not None:
            return f"PROPOSAL justification: {reason}"
        if (rc.payload.height, rc.payload.round) != (msg.height, msg.round):
            return (f"PROPOSAL justification targets {rc.payload.height}/{rc.payload.round}, "
                    f"not the proposal's {msg.height}/{msg.round}")
    return None
