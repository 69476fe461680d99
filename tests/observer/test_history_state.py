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


def test_lineage_from_vote_headers_alone_derives_every_set_as_the_full_history():
    from chain.qbft.genesis import Genesis, QbftSettings, build_genesis
    from observer.proof import Lineage

    rng = random.Random(11)
    genesis_set = [_addr(i) for i in range(1, 5)]
    genesis = Genesis(build_genesis(chain_id=7, validators=genesis_set,
                                    qbft=QbftSettings(epoch_length=7),
                                    validator_transitions={40: genesis_set[:3]}))
    full = ValidatorHistory(genesis.qbft.epoch, genesis.validator_overrides)
    full.apply(0, bytes(20), genesis.extra)
    sparse = Lineage.start(genesis)
    for n in range(1, 90):
        current = full.validators_for(n)
        vote = (Vote(rng.choice([_addr(i) for i in range(1, 8)]), rng.random() < 0.6)
                if rng.random() < 0.4 else None)
        coinbase = current[n % len(current)]
        full.apply(n, coinbase, ExtraData(bytes(32), current, vote, 0, ()))
        if vote is not None:  # the proof carries only the headers with a vote
            sparse.skip_to(n)
            assert sparse.validators() == current, n
            sparse.apply(n, coinbase, current, vote)
    sparse.skip_to(90)
    assert sparse.validators() == full.validators_for(90)
    assert [b for b, _ in sparse.changes] == [c.block for c in full.changes]
