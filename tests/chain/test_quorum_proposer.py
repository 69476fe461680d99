"""Quorum and proposer rotation against BftHelpersTest and ProposerSelectorTest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chain.qbft.proposer import select_proposer
from chain.qbft.quorum import future_round_change_quorum, max_faulty, quorum, vote_threshold

DATA = Path(__file__).parents[1] / "data" / "besu"
QUORUM = json.loads((DATA / "quorum.json").read_text())
PROPOSER = json.loads((DATA / "proposer.json").read_text())


@pytest.mark.parametrize(("n", "q"), sorted((int(k), v) for k, v in QUORUM["required_quorum"].items()))
def test_required_quorum_matches_besu(n, q):
    assert quorum(n) == q


@pytest.mark.parametrize(("n", "q"), sorted(
    (int(k), v) for k, v in PROPOSER["future_round_change_quorum"]["values"].items()))
def test_future_round_change_quorum_matches_besu(n, q):
    assert future_round_change_quorum(n) == q


def test_zero_validators_need_one_seal_as_java_truncation_gives():
    assert quorum(0) == 1
    assert future_round_change_quorum(0) == 1


def test_quorum_tolerates_f_faults_and_two_quorums_always_share_an_honest_validator():
    for n in range(1, 50):
        f = max_faulty(n)
        assert n - f >= quorum(n)
        assert 2 * quorum(n) - n >= f + 1 or n < 4


def test_vote_threshold_is_a_strict_majority():
    assert [vote_threshold(n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 2, 3, 3, 4]


V = [bytes([i]) * 20 for i in (0x10, 0x20, 0x30, 0x40, 0x50)]


def test_previous_proposer_first_of_five_gives_the_second():
    assert select_proposer(V, V[0], 0) == V[1]


def test_last_validator_wraps_to_the_first():
    assert select_proposer(V, V[-1], 0) == V[0]


def test_removed_previous_proposer_hands_to_the_next_higher_address_without_extra_step():
    four = [V[0], V[1], V[3], V[4]]  # V[2] was removed; it would sit at index 2
    assert select_proposer(four, V[2], 0) == four[2]


def test_removed_highest_proposer_hands_to_the_first():
    four = V[:4]
    assert select_proposer(four, V[4], 0) == four[0]


def test_genesis_zero_coinbase_gives_block_one_to_the_lowest_address():
    assert select_proposer(V, bytes(20), 0) == V[0]


def test_rounds_move_the_proposer_forward():
    assert [select_proposer(V, V[0], r) for r in range(6)] == [V[1], V[2], V[3], V[4], V[0], V[1]]


def test_input_order_does_not_matter():
    assert select_proposer(list(reversed(V)), V[2], 1) == select_proposer(V, V[2], 1)
