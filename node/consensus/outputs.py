"""What the consensus engine asks its shell to do, and the timers it asks for.

Every engine input returns a list of these, in order. The shell performs them: sends messages,
arms and cancels timers, imports blocks, records metrics and logs. Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chain.qbft.block import Block


class TimerKind(enum.Enum):
    BLOCK = "block"
    """Fires when the next block may be proposed: parent.timestamp + blockperiodseconds."""
    ROUND = "round"
    """Fires when a round has lasted requesttimeoutseconds * 2^round without a commit."""


@dataclass(frozen=True, slots=True)
class Timer:
    kind: TimerKind
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Arm ``timer``, replacing any pending timer of the same kind; ``at_ms`` is unix time in
    milliseconds, and a time already past means "fire as soon as you can"."""

    timer: Timer
    at_ms: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    kind: TimerKind


@dataclass(frozen=True, slots=True)
class Multicast:
    """Send this node's own message to every validator."""

    code: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Gossip:
    """Relay a received message to the other validators, except its author and the peer it came
    from, and never twice (Besu's ``QbftGossiperImpl`` and gossiped-history limit)."""

    code: int
    data: bytes
    author: bytes


@dataclass(frozen=True, slots=True)
class ImportBlock:
    """A block reached a quorum of commits: import it (sealed with the round it committed in and
    the commit seals this node collected), then tell the engine the new head."""

    block: Block
    round: int


@dataclass(frozen=True, slots=True)
class RoundChanged:
    """This node moved to ``round`` (> 0) at ``height``: a metrics event."""

    height: int
    round: int


@dataclass(frozen=True, slots=True)
class ProposalMissed:
    """The proposer of (height, round) sent no acceptable proposal before the round expired."""

    height: int
    round: int
    proposer: bytes


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message the engine refused, and why (for logs and counters); nothing was changed."""

    code: int | None
    reason: str
    author: bytes | None = None


@dataclass(frozen=True, slots=True)
class HeadConflict:
    """A second, different block was reported as the head at one height: a fork, never normal."""

    number: int
    current: bytes
    reported: bytes


@dataclass(frozen=True, slots=True)
class Fault:
    """An input the engine could not finish (e.g. block creation raised); the outputs before it
    still stand, so timers keep the round moving."""

    during: str
    error: str


Output = (SetTimer | CancelTimer | Multicast | Gossip | ImportBlock | RoundChanged | ProposalMissed
          | Rejected | HeadConflict | Fault)
