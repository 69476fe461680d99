"""This validator's own ``qbft_proposeValidatorVote`` proposals, cast as Besu's ``VoteProposer``.

A proposal is only cast while it is still useful given the outstanding votes after the parent:
DROP a current validator this node has not voted to drop, ADD a non-validator it has not voted to
add, or flip this node's earlier vote. Eligible proposals are cast round-robin, one per block this
node builds, starting from the second (Besu pre-increments its position).
"""

from __future__ import annotations

import threading

from chain.qbft.extra_data import Vote
from chain.qbft.votes import VoteTally
from node.abc import VoteProposerAPI


class VoteProposer(VoteProposerAPI):
    def __init__(self) -> None:
        self._proposals: dict[bytes, bool] = {}
        self._position = 0
        self._lock = threading.Lock()  # RPC threads propose while consensus builds blocks

    def propose(self, address: bytes, add: bool) -> None:
        if len(address) != 20:
            raise ValueError(f"a validator vote names a 20-byte address, got {len(address)} bytes")
        with self._lock:
            self._proposals[address] = add

    def discard(self, address: bytes) -> None:
        with self._lock:
            self._proposals.pop(address, None)

    def pending(self) -> dict[bytes, bool]:
        with self._lock:
            return dict(self._proposals)

    def vote_for(self, local: bytes, tally: VoteTally | None) -> Vote | None:
        """The vote to put in the next block this node builds on a parent with ``tally``."""
        if tally is None:
            return None
        eligible = [(a, add) for a, add in self.pending().items()
                    if _not_yet_cast(local, a, add, tally)]
        if not eligible:
            return None
        self._position = (self._position + 1) % len(eligible)
        subject, add = eligible[self._position]
        return Vote(subject, add)


def _not_yet_cast(local: bytes, subject: bytes, add: bool, tally: VoteTally) -> bool:
    voted_add = local in tally.add_votes.get(subject, ())
    voted_drop = local in tally.drop_votes.get(subject, ())
    is_validator = subject in tally.validators
    if add:
        return (not is_validator and not voted_add) or voted_drop
    return (is_validator and not voted_drop) or voted_add
