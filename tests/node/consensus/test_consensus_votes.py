"""Vote proposals cast as Besu's VoteProposer does (the cases of Besu's VoteProposerTest)."""

from __future__ import annotations

import pytest

from chain.qbft.extra_data import Vote
from chain.qbft.votes import VoteTally
from node.consensus import VoteProposer

LOCAL = bytes(20)
A1, A2, A3, A4 = (i.to_bytes(20, "big") for i in (1, 2, 3, 4))


def tally(*validators: bytes) -> VoteTally:
    return VoteTally(set(validators))


def test_empty_proposer_casts_no_vote():
    votes = VoteProposer()
    assert votes.vote_for(LOCAL, tally()) is None
    assert votes.vote_for(LOCAL, tally(LOCAL, A1, A2)) is None


def test_drop_is_cast_only_while_the_subject_is_a_validator():
    votes = VoteProposer()
    votes.propose(A1, False)
    assert votes.vote_for(LOCAL, tally()) is None
    assert votes.vote_for(LOCAL, tally(A1)) == Vote(A1, False)
    assert votes.vote_for(LOCAL, tally(A1, A2, A3)) == Vote(A1, False)
    assert votes.vote_for(LOCAL, tally(A2, A3)) is None


def test_add_is_cast_only_while_the_subject_is_not_a_validator():
    votes = VoteProposer()
    votes.propose(A1, True)
    assert votes.vote_for(LOCAL, tally()) == Vote(A1, True)
    assert votes.vote_for(LOCAL, tally(A1)) is None
    assert votes.vote_for(LOCAL, tally(A2, A3)) == Vote(A1, True)


def test_discarded_proposal_is_not_cast():
    votes = VoteProposer()
    votes.propose(A1, True)
    votes.propose(A2, True)
    votes.discard(A2)
    assert votes.pending() == {A1: True}
    assert votes.vote_for(LOCAL, tally(A1, A2, A3)) is None
    assert votes.vote_for(LOCAL, tally(A2, A3)) == Vote(A1, True)


def test_votes_cycle_round_robin_from_the_second_and_skip_useless_ones():
    votes = VoteProposer()
    for a in (A1, A2, A3):
        votes.propose(a, True)
    votes.propose(A4, False)  # A4 is no validator: nothing to drop
    cast = [votes.vote_for(LOCAL, tally()) for _ in range(4)]
    assert cast == [Vote(A2, True), Vote(A3, True), Vote(A1, True), Vote(A2, True)]


def test_an_outstanding_vote_of_this_node_is_revoked_by_the_opposite_proposal():
    votes = VoteProposer()
    votes.propose(A1, False)
    t = tally(A2, A3)
    t.add_vote(LOCAL, Vote(A1, True))
    assert votes.vote_for(LOCAL, t) == Vote(A1, False)
    votes.propose(A1, True)
    t = tally(A2, A3)
    t.add_vote(LOCAL, Vote(A1, False))
    assert votes.vote_for(LOCAL, t) == Vote(A1, True)


def test_contract_mode_casts_nothing():
    votes = VoteProposer()
    votes.propose(A1, True)
    assert votes.vote_for(LOCAL, None) is None


def test_proposal_must_name_an_address():
    with pytest.raises(ValueError, match="20-byte address"):
        VoteProposer().propose(b"\x01" * 19, True)
