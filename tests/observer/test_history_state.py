"""ValidatorHistory.to_json/from_json: a verifier resumed from a checkpoint tallies votes exactly
as one that never stopped (outstanding votes, past changes and all)."""

from __future__ import annotations

import random

from chain.qbft.extra_data import ExtraData, Vote
from chain.qbft.votes import EpochSchedule, ValidatorHistory


def _addr(i: int) -> bytes:
    return bytes([i]) * 20


def test_history_resumed_from_json_tallies_as_one_that_never_stopped():
    rng = random.Random(7)
    epoch = EpochSchedule(length=40)
    genesis = tuple(_addr(i) for i in range(1, 5))
    candidates = [_addr(i) for i in range(1, 9)]
    blocks = []
    for n in range(1, 120):
        vote = Vote(rng.choice(candidates), rng.random() < 0.6) if rng.random() < 0.7 else None
        blocks.append((n, vote))
    whole = ValidatorHistory(epoch)
    whole.apply(0, bytes(20), ExtraData(bytes(32), genesis, None, 0, ()))
    resumed: ValidatorHistory | None = None
    for n, vote in blocks:
        current = whole.validators_for(n)
        coinbase = current[n % len(current)]
        extra = ExtraData(bytes(32), current, vote, 0, ())
        whole.apply(n, coinbase, extra)
        if n == 60:
            resumed = ValidatorHistory.from_json(epoch, None, whole.to_json())
        elif resumed is not None:
            assert resumed.validators_for(n) == current
            resumed.apply(n, coinbase, extra)
    assert resumed is not None
    assert resumed.to_json() == whole.to_json()
    assert len(whole.changes) >= 2  # the walk above really changed the set
    assert resumed.validators_for(30) == whole.validators_for(30)
