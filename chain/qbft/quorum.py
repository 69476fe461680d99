"""Quorum sizes as Besu's ``BftHelpers`` and ``VoteTally`` compute them.

Besu uses Java's truncating integer division; for n = 0 that yields 1 where Python's floor
division would yield 0, so the edge is spelled out.
"""

from __future__ import annotations


def quorum(n: int) -> int:
    """Commit seals (and PREPAREs, COMMITs, ROUND_CHANGEs) needed among n validators: ceil(2n/3)."""
    if n < 0:
        raise ValueError("validator count cannot be negative")
    return 1 if n == 0 else (2 * n - 1) // 3 + 1


def future_round_change_quorum(n: int) -> int:
    """f + 1 round changes for a future round, enough to prove one honest validator moved on."""
    if n < 0:
        raise ValueError("validator count cannot be negative")
    return 1 if n == 0 else (n - 1) // 3 + 1


def vote_threshold(n: int) -> int:
    """Votes from distinct validators that add or drop a validator: a strict majority of n."""
    return n // 2 + 1


def max_faulty(n: int) -> int:
    """f = floor((n - 1) / 3): Byzantine validators the network tolerates, safe and live."""
    return 0 if n <= 0 else (n - 1) // 3
