"""Proposer choice for (height, round), as Besu's ``BftProposerSelector`` with changeEachBlock.

Start from the parent block's coinbase. If it is among the validators after the parent, the
proposer is 1 + round places further on in the sorted list; if not (the zero coinbase of a
genesis, a validator voted out), start at the first validator with a higher address and move
round places, with no extra step.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable


def select_proposer(validators: Iterable[bytes], parent_coinbase: bytes, round: int) -> bytes:
    ordered = sorted(set(validators))
    if not ordered:
        raise ValueError("no validators: a proposer cannot be chosen")
    if round < 0:
        raise ValueError("round cannot be negative")
    if parent_coinbase in ordered:
        base, offset = ordered.index(parent_coinbase), round + 1
    else:
        base, offset = bisect_right(ordered, parent_coinbase) % len(ordered), round
    return ordered[(base + offset) % len(ordered)]
