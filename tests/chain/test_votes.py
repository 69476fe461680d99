"""Validator votes and validator sets derived from headers, as Besu's VoteTally and cache."""

from __future__ import annotations

import pytest
from sealing import child, genesis_header, keys

from chain.qbft import extra_data as xd
from chain.qbft.verify import verify_header
from chain.qbft.votes import EpochSchedule, ValidatorHistory, VoteTally

SECRETS = keys(6)
ALL = sorted(SECRETS)
FOUR = ALL[:4]
NEW, NEWER = ALL[4], ALL[5]


def _chain(epoch: int, votes: list[tuple[xd.Vote | None]], start: list[bytes] = FOUR):
    """Build and verify a chain where block i carries votes[i-1], returning the history."""
    history = ValidatorHistory(EpochSchedule(epoch))
    parent = genesis_header(start)
    history.apply(0, parent.coinbase, xd.decode(parent.extra_data))
    for vote in votes:
        validators = list(history.validators_for(parent.number + 1))
        header = child(parent, validators, SECRETS, vote=vote[0])
        verify_header(header, parent, validators)
        history.apply(header.number, header.coinbase, xd.decode(header.extra_data))
        parent = header
    return history


def test_majority_of_add_votes_adds_the_validator_from_the_next_block():
    # 4 validators: a strict majority is 3 votes, cast by three different proposers.
    history = _chain(100, [(xd.Vote(NEW, True),)] * 3 + [(None,)])
    assert history.validators_for(3) == tuple(FOUR)
    assert history.validators_for(4) == tuple(sorted([*FOUR, NEW]))
    assert history.changes[-1].added == (NEW,)


def test_two_votes_of_four_are_not_enough():
    history = _chain(100, [(xd.Vote(NEW, True),)] * 2 + [(None,)] * 3)
    assert history.validators_for(6) == tuple(FOUR)


def test_a_validator_added_then_removed_by_vote():
    votes = [(xd.Vote(NEW, True),)] * 3 + [(xd.Vote(NEW, False),)] * 3 + [(None,)]
    history = _chain(100, votes)
    assert NEW in history.validators_for(4)
    # 5 validators now: removal needs 3 drop votes from distinct proposers.
    assert NEW not in history.validators_for(7)
    assert [c.block for c in history.changes] == [0, 4, 7]


def test_same_caster_voting_twice_counts_once():
    tally = VoteTally(set(FOUR))
    for _ in range(5):
        tally.add_vote(FOUR[0], xd.Vote(NEW, True))
    assert NEW not in tally.validators


def test_flipping_a_vote_removes_the_opposite_one():
    tally = VoteTally(set(FOUR))
    tally.add_vote(FOUR[0], xd.Vote(NEW, True))
    tally.add_vote(FOUR[0], xd.Vote(NEW, False))
    assert tally.pending() == {NEW: (set(), {FOUR[0]})}


def test_dropped_validator_loses_the_votes_it_cast():
    tally = VoteTally(set(FOUR))
    tally.add_vote(FOUR[3], xd.Vote(NEW, True))
    for caster in FOUR[:3]:
        tally.add_vote(caster, xd.Vote(FOUR[3], False))
    assert FOUR[3] not in tally.validators
    assert NEW not in tally.pending()


def test_block_before_an_epoch_clears_pending_votes_and_its_own_vote_is_ignored():
    # epoch 4: blocks 4, 8 are epoch blocks; block 3 (before the epoch) casts no vote.
    history = _chain(4, [(xd.Vote(NEW, True),)] * 2 + [(xd.Vote(NEW, True),)] + [(None,)] * 2)
    assert NEW not in history.validators_for(5)
    assert history.tally is not None and history.tally.pending() == {}


def test_the_epoch_blocks_own_vote_counts_as_besu_applies_it():
    # Votes in blocks 4 (epoch), 5, 6: the set after block 6 includes NEW.
    history = _chain(4, [(None,)] * 3 + [(xd.Vote(NEW, True),)] * 3 + [(None,)])
    assert NEW in history.validators_for(7)


def test_transition_override_replaces_the_set():
    history = ValidatorHistory(EpochSchedule(100), overrides={3: [NEW, NEWER]})
    parent = genesis_header(FOUR)
    history.apply(0, parent.coinbase, xd.decode(parent.extra_data))
    for _ in range(3):
        header = child(parent, list(history.validators_for(parent.number + 1)), SECRETS)
        history.apply(header.number, header.coinbase, xd.decode(header.extra_data))
        parent = header
    assert history.validators_for(2) == tuple(FOUR)
    assert history.validators_for(3) == tuple(sorted([NEW, NEWER]))


def test_blocks_must_be_fed_in_order():
    history = ValidatorHistory(EpochSchedule(100))
    g = genesis_header(FOUR)
    with pytest.raises(ValueError, match="in order"):
        history.apply(1, g.coinbase, xd.decode(g.extra_data))


def test_epoch_schedule_with_a_qbft_start_block():
    e = EpochSchedule(10, start_block=5)
    assert [n for n in range(30) if e.is_epoch_block(n)] == [4, 14, 24]
