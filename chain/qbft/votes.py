"""Validator votes and the validator set of every block, from the genesis and headers alone.

As Besu's block-header validator mode (``VoteTally``, ``VoteTallyUpdater``, ``VoteTallyCache``,
``ForkingVoteTallyCache``, ``EpochManager``):

- the vote in block N is cast by N's coinbase; a vote to add removes that caster's vote to drop
  the same subject and vice versa; when a subject collects ``n // 2 + 1`` votes of the current
  set it is added or dropped, its outstanding votes are discarded, and a dropped validator's own
  votes are withdrawn from every other tally;
- the tally after an epoch block restarts from the validators listed in that block, and then
  applies the epoch block's own vote; the block just before an epoch block casts no vote and
  clears every outstanding vote (Besu checks ``isEpochBlock(number + 1)``);
- a ``transitions.qbft`` entry with ``validators`` at block B replaces the tally after B-1;
- the validators of block N (listed, sorted, in N's extraData) are the tally after N-1.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chain.qbft.extra_data import ExtraData, Vote
from chain.qbft.quorum import vote_threshold


@dataclass(frozen=True, slots=True)
class EpochSchedule:
    length: int = 30000
    start_block: int = 0

    def __post_init__(self) -> None:
        if self.length <= 0:
            raise ValueError("epochlength must be greater than 0")

    def is_epoch_block(self, number: int) -> bool:
        if number < 0:
            raise ValueError("block number must be 0 or greater")
        if self.start_block == 0:
            return number % self.length == 0
        if number < self.start_block - 1:
            return False
        return (number - (self.start_block - 1)) % self.length == 0


@dataclass
class VoteTally:
    validators: set[bytes]
    add_votes: dict[bytes, set[bytes]] = field(default_factory=dict)
    drop_votes: dict[bytes, set[bytes]] = field(default_factory=dict)

    def copy(self) -> VoteTally:
        return VoteTally(set(self.validators),
                         {k: set(v) for k, v in self.add_votes.items()},
                         {k: set(v) for k, v in self.drop_votes.items()})

    def discard_outstanding(self) -> None:
        self.add_votes.clear()
        self.drop_votes.clear()

    def add_vote(self, caster: bytes, vote: Vote) -> None:
        adds = self.add_votes.setdefault(vote.recipient, set())
        drops = self.drop_votes.setdefault(vote.recipient, set())
        if vote.add:
            adds.add(caster)
            drops.discard(caster)
        else:
            drops.add(caster)
            adds.discard(caster)
        limit = vote_threshold(len(self.validators))
        if len(adds) >= limit:
            self.validators.add(vote.recipient)
            self._discard_for(vote.recipient)
        if len(drops) >= limit:
            self.validators.discard(vote.recipient)
            self._discard_for(vote.recipient)
            for casters in (*self.add_votes.values(), *self.drop_votes.values()):
                casters.discard(vote.recipient)

    def _discard_for(self, subject: bytes) -> None:
        self.add_votes.pop(subject, None)
        self.drop_votes.pop(subject, None)

    def pending(self) -> dict[bytes, tuple[set[bytes], set[bytes]]]:
        subjects = set(self.add_votes) | set(self.drop_votes)
        return {s: (set(self.add_votes.get(s, ())), set(self.drop_votes.get(s, ())))
                for s in subjects if self.add_votes.get(s) or self.drop_votes.get(s)}


@dataclass(frozen=True, slots=True)
class SetChange:
    """The validator set that takes effect from ``block`` on (it validates ``block``)."""

    block: int
    validators: tuple[bytes, ...]
    added: tuple[bytes, ...]
    removed: tuple[bytes, ...]


class ValidatorHistory:
    """Feed headers in order from the genesis; ask which validators seal any block seen so far.

    Memory grows with the number of validator-set changes, not with the chain length.
    """

    def __init__(self, epoch: EpochSchedule, overrides: Mapping[int, Iterable[bytes]] | None = None) -> None:
        self.epoch = epoch
        self.overrides = {b: frozenset(v) for b, v in (overrides or {}).items()}
        self.head = -1
        self.tally: VoteTally | None = None
        self.changes: list[SetChange] = []
        self._change_blocks: list[int] = []

    def apply(self, number: int, coinbase: bytes, extra: ExtraData) -> None:
        """Account for block ``number`` (its coinbase and decoded extraData)."""
        if number != self.head + 1:
            raise ValueError(f"block {number} applied after block {self.head}: feed them in order")
        if number == 0:
            # Genesis lists its validators in any order; the set is what counts.
            self._record(0, frozenset(extra.validators))
        override = self.overrides.get(number + 1)
        if override is not None:
            tally = VoteTally(set(override))
        elif self.epoch.is_epoch_block(number) or self.tally is None:
            tally = VoteTally(set(extra.validators))
        else:
            tally = self.tally
        if self.epoch.is_epoch_block(number + 1):
            tally.discard_outstanding()
        elif extra.vote is not None:
            tally.add_vote(coinbase, extra.vote)
        self.tally = tally
        self.head = number
        self._record(number + 1, frozenset(tally.validators))

    def _record(self, block: int, validators: frozenset[bytes]) -> None:
        current = set(self.changes[-1].validators) if self.changes else None
        if current == set(validators):
            return
        before = current or set()
        self.changes.append(SetChange(block, tuple(sorted(validators)),
                                      tuple(sorted(validators - before)),
                                      tuple(sorted(before - validators))))
        self._change_blocks.append(block)

    def validators_for(self, number: int) -> tuple[bytes, ...]:
        """The sorted set that must seal block ``number`` (known up to ``head + 1``)."""
        if number > self.head + 1 or number < 0 or not self.changes:
            raise ValueError(f"validators of block {number} are not known yet (head {self.head})")
        return self.changes[bisect_right(self._change_blocks, number) - 1].validators

    def validators_after(self, number: int) -> tuple[bytes, ...]:
        return self.validators_for(number + 1)

    def to_json(self) -> dict[str, Any]:
        """Everything needed to go on from ``head`` later (a verifier's checkpoint)."""

        def hexes(addrs: Iterable[bytes]) -> list[str]:
            return ["0x" + a.hex() for a in sorted(addrs)]

        tally = self.tally
        return {
            "head": self.head,
            "changes": [{"block": c.block, "validators": hexes(c.validators),
                         "added": hexes(c.added), "removed": hexes(c.removed)}
                        for c in self.changes],
            "tally": None if tally is None else {
                "validators": hexes(tally.validators),
                "add": {"0x" + s.hex(): hexes(c) for s, c in sorted(tally.add_votes.items()) if c},
                "drop": {"0x" + s.hex(): hexes(c) for s, c in sorted(tally.drop_votes.items()) if c},
            },
        }

    @classmethod
    def from_json(cls, epoch: EpochSchedule, overrides: Mapping[int, Iterable[bytes]] | None,
                  data: Mapping[str, Any]) -> ValidatorHistory:
        def addrs(items: Iterable[str]) -> tuple[bytes, ...]:
            return tuple(bytes.fromhex(a.removeprefix("0x")) for a in items)

        history = cls(epoch, overrides)
        history.head = int(data["head"])
        for c in data["changes"]:
            change = SetChange(int(c["block"]), addrs(c["validators"]), addrs(c["added"]),
                               addrs(c["removed"]))
            history.changes.append(change)
            history._change_blocks.append(change.block)
        t = data.get("tally")
        if t is not None:
            history.tally = VoteTally(
                set(addrs(t["validators"])),
                {addrs([s])[0]: set(addrs(c)) for s, c in t["add"].items()},
                {addrs([s])[0]: set(addrs(c)) for s, c in t["drop"].items()},
            )
        return history
