"""The fork schedule is read from the genesis alone, and a genesis whose rules these execution
rules do not implement is refused with what to change."""

from __future__ import annotations

import pytest

from chain.execution.forks import ForkSchedule
from chain.qbft.genesis import Genesis, GenesisError, QbftSettings, build_genesis

VALIDATORS = [b"\x09" * 20, b"\x03" * 20]  # unsorted, as Besu's tooling writes them


def test_forks_are_read_from_the_genesis_by_time():
    g = Genesis(build_genesis(chain_id=2026, validators=VALIDATORS, qbft=QbftSettings(), fork="london"))
    config = {**g.raw["config"], "shanghaiTime": 100, "cancunTime": 200, "pragueTime": 300}
    schedule = ForkSchedule(Genesis({**g.raw, "config": config}))
    assert [schedule.at(t).name for t in (0, 99, 100, 250, 300)] == \
        ["london", "london", "shanghai", "cancun", "prague"]


@pytest.mark.parametrize("change, message", [
    ({"londonBlock": 5}, "londonBlock"),
    ({"osakaTime": 0}, "osakaTime"),
    ({"qbft": {"validatorcontractaddress": "0x" + "11" * 20}}, "contract"),
    ({"cancunTime": 10, "shanghaiTime": 20}, "in order"),
])
def test_genesis_these_rules_cannot_run_is_refused_with_what_to_change(change, message):
    g = Genesis(build_genesis(chain_id=2026, validators=VALIDATORS, qbft=QbftSettings(), fork="london"))
    config = {**g.raw["config"], **change}
    if "qbft" in change:
        config["qbft"] = {**g.raw["config"]["qbft"], **change["qbft"]}
    with pytest.raises(GenesisError, match=message):
        ForkSchedule(Genesis({**g.raw, "config": config}))
