"""The rules behind `smartta validator` and `smartta network drill`, without processes: which
changes the quorum guard refuses, and how a drill's observations are judged."""

from __future__ import annotations

import pytest

from node.network.drill import Observation, verdict
from node.network.validators import GuardError, Voter, plan_change, plan_rotation

V = [bytes([i]) * 20 for i in range(1, 8)]


def voters(addresses):
    return [Voter(f"v{a[0]}", a, f"http://127.0.0.1:{8000 + a[0]}") for a in addresses]


def test_adding_a_validator_needs_a_strict_majority_of_voters_and_proposes_on_all_that_answer():
    plan = plan_change(V[:4], V[4], True, voters(V[:4]), down=[])
    assert plan.threshold == 3 and len(plan.voters) == 4
    assert plan.after == tuple(sorted(V[:5]))
    with pytest.raises(GuardError, match="would be down or behind"):
        plan_change(V[:4], V[4], True, voters(V[:2]), down=[V[2], V[3]], unsynced_candidate=True)
    # Validators missing from the census (not in network.yaml) leave too few voters.
    with pytest.raises(GuardError, match="only 2 of the 4 validators answer"):
        plan_change(V[:4], V[4], True, voters(V[:2]), down=[])


def test_an_unsynced_candidate_is_refused_unless_asked_and_then_counts_as_a_fault():
    with pytest.raises(GuardError, match="not running and synced"):
        plan_change(V[:4], V[4], True, voters(V[:4]), down=[V[4]])
    # 4 up + an unsynced candidate: 5 validators tolerate 1 fault, the candidate is it.
    plan_change(V[:4], V[4], True, voters(V[:4]), down=[V[4]], unsynced_candidate=True)
    # One validator already down: the candidate would be the second fault of 5.
    with pytest.raises(GuardError, match="would be down or behind"):
        plan_change(V[:4], V[4], True, voters(V[:3]), down=[V[3], V[4]], unsynced_candidate=True)


def test_removal_never_goes_below_four_validators():
    with pytest.raises(GuardError, match="would leave 3 validators"):
        plan_change(V[:4], V[0], False, voters(V[:4]), down=[])
    plan = plan_change(V[:5], V[0], False, voters(V[:5]), down=[])
    assert plan.after == tuple(sorted(V[1:5]))


def test_removing_a_dead_validator_is_allowed_but_not_while_another_is_down_beyond_f():
    plan_change(V[:5], V[0], False, voters(V[1:5]), down=[V[0]])
    with pytest.raises(GuardError, match="tolerate 1 faulty but 2"):
        plan_change(V[:6], V[0], False, voters(V[3:6]), down=[V[1], V[2]])


def test_votes_for_a_change_already_made_are_refused():
    with pytest.raises(GuardError, match="already a validator"):
        plan_change(V[:4], V[0], True, voters(V[:4]), down=[])
    with pytest.raises(GuardError, match="is not a validator"):
        plan_change(V[:4], V[5], False, voters(V[:4]), down=[])


def test_rotation_refuses_networks_it_would_leave_below_four():
    plan_rotation(V[:4], V[0])
    with pytest.raises(GuardError, match="has 3 validators"):
        plan_rotation(V[:3], V[0])
    with pytest.raises(GuardError, match="not a validator"):
        plan_rotation(V[:4], V[6])


def observation(victims, *, fault=10, settle=11, heal=20, first=1.0, synced=2.0, forks=()):
    return Observation("kill", 4, victims, 12.0, fault, settle, heal, first, synced, list(forks))


def test_drill_with_f_faults_passes_only_if_blocks_kept_coming():
    assert verdict(observation(["v4"])).passed
    stalled = verdict(observation(["v4"], heal=11))
    assert not stalled.passed
    assert any("liveness" in what and not ok for ok, what in stalled.checks)


def test_drill_with_f_plus_one_faults_passes_only_on_a_halt_without_fork():
    assert verdict(observation(["v3", "v4"], heal=11)).passed
    assert not verdict(observation(["v3", "v4"], heal=12)).passed
    forked = verdict(observation(["v3", "v4"], heal=11, forks=["block 11: v1 0xaa, v3 0xbb"]))
    assert not forked.passed and any("FORK" in what for _, what in forked.checks)


def test_drill_fails_when_the_network_does_not_recover():
    assert not verdict(observation(["v4"], first=None, synced=None)).passed
    assert not verdict(observation(["v4"], synced=None)).passed
