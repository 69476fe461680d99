"""Nodes that switch chains, reorganise or lie: the indexer stops (or, on a non-final chain,
rolls back) and never writes what it cannot verify."""

from __future__ import annotations

import asyncio

import pytest
from chainkit import Anvil, FundScenario, LedgerKit, actor_key
from conftest import run
from lying import LyingProxy
from oracle import assert_pg_matches_chain, pg_analytics_digests, pg_rows

from indexer import digest
from indexer.abc import ForkError
from indexer.project import LedgerIntegrityError
from indexer.runner import ChainConfig, Indexer, IndexerConfig


def indexer_for(pg_dsn, schema, analytics, url, ledger, confirmations=0, **config) -> Indexer:
    chain = ChainConfig(url, ledger=ledger.address, confirmations=confirmations)
    return Indexer(IndexerConfig(pg_dsn, (chain,), schema=schema, **{"batch_events": 40, **config}),
                   analytics)


def everything(pg_dsn, schema, analytics):
    return (asyncio.run(digest.pg_digests(pg_dsn, schema)),
            digest.as_json(digest.clickhouse_digests(analytics)))


def test_a_node_serving_another_block_at_an_indexed_height_is_refused_and_nothing_written(
        pg_dsn, schema, analytics, node, ledger):
    scenario = FundScenario(seed=21)
    ledger.append(scenario.events(40))
    run(indexer_for(pg_dsn, schema, analytics, node.url, ledger).run(follow=False))
    before = everything(pg_dsn, schema, analytics)
    # A second chain with the same id and the same contract address, but other history.
    with Anvil(chain_id=ledger.chain_id) as other:
        impostor = LedgerKit(other.url, [actor_key(0), actor_key(1)])
        impostor.deploy()
        assert impostor.address == ledger.address
        impostor.append(FundScenario(seed=99).events(60))
        other.mine(5)
        with pytest.raises(ForkError, match="a different chain or a lying node"):
            run(indexer_for(pg_dsn, schema, analytics, other.url, ledger).run(follow=False))
    assert everything(pg_dsn, schema, analytics) == before


def test_a_node_that_switches_history_while_followed_is_a_fork(pg_dsn, schema, analytics, node,
                                                               ledger):
    ledger.append(FundScenario(seed=22).events(30))
    run(indexer_for(pg_dsn, schema, analytics, node.url, ledger).run(follow=False))
    before = everything(pg_dsn, schema, analytics)
    indexed = node.head()
    proxy = LyingProxy(node.url)
    try:
        # Blocks after the indexed one now claim another parent.
        def rewrite(request, result):
            if request["method"] == "eth_getBlockByNumber" and result and \
                    int(result["number"], 16) == indexed + 1:
                result["parentHash"] = "0x" + "ee" * 32
            return result

        proxy.rewrite = rewrite
        node.mine(3)
        with pytest.raises(ForkError, match=f"block {indexed + 1} with parent 0xeeee"):
            run(indexer_for(pg_dsn, schema, analytics, proxy.url, ledger).run(follow=False))
    finally:
        proxy.close()
    assert everything(pg_dsn, schema, analytics) == before


def test_a_node_altering_a_ledger_record_stops_the_indexer_before_that_batch(
        pg_dsn, schema, analytics, node, ledger):
    scenario = FundScenario(seed=23)
    ledger.append(scenario.events(30))
    receipt = ledger.append(scenario.events(30))
    altered_block = int(receipt["blockNumber"], 16)
    proxy = LyingProxy(node.url)
    try:
        def rewrite(request, result):
            if request["method"] == "eth_getLogs":
                for log in result:
                    if int(log["blockNumber"], 16) == altered_block:
                        # Another digit in someone's units, in the packed records.
                        data = bytearray.fromhex(log["data"][2:])
                        at = data.find(b'"units":"') + len(b'"units":"')
                        data[at] = ord("9") if data[at] != ord("9") else ord("8")
                        log["data"] = "0x" + data.hex()
            return result

        proxy.rewrite = rewrite
        with pytest.raises(LedgerIntegrityError, match="does not verify"):
            run(indexer_for(pg_dsn, schema, analytics, proxy.url, ledger, max_range=1,
                            batch_events=10)
                .run(follow=False))
    finally:
        proxy.close()
    cp = pg_rows(pg_dsn, f"SELECT block_number FROM {schema}.checkpoints")
    assert cp and cp[0]["block_number"] < altered_block
    records = pg_rows(pg_dsn, f"SELECT max(block_number) AS b FROM {schema}.ledger_records")
    assert records[0]["b"] is None or records[0]["b"] < altered_block
    # The honest node then gets everything in, verified.
    run(indexer_for(pg_dsn, schema, analytics, node.url, ledger).run(follow=False))
    assert_pg_matches_chain(pg_dsn, schema, node.url, ledger.address, scenario)


def test_a_reorg_deeper_than_the_confirmations_is_rolled_back(pg_dsn, schema, analytics, node,
                                                              ledger):
    if not hasattr(node, "call"):
        pytest.skip("needs a node with evm_snapshot/evm_revert (anvil)")
    scenario = FundScenario(seed=24)
    ledger.append(scenario.events(30))
    snapshot = node.call("evm_snapshot")
    kept_nonces = dict(ledger.nonces)
    ledger.append(FundScenario(seed=25, investors=3).events(40))  # the branch that will vanish
    node.mine(4)
    ix = indexer_for(pg_dsn, schema, analytics, node.url, ledger, confirmations=2)
    run(ix.run(follow=False))
    orphaned_head = node.head()
    # The chain reorganises: back to the snapshot, then a longer, different branch.
    node.call("evm_revert", [snapshot])
    ledger.nonces = kept_nonces
    ledger.append(scenario.events(50))
    node.mine(8)
    assert node.head() > orphaned_head
    run(indexer_for(pg_dsn, schema, analytics, node.url, ledger, confirmations=2)
        .run(follow=False))
    assert_pg_matches_chain(pg_dsn, schema, node.url, ledger.address, upto=node.head() - 2)
    assert digest.as_json(digest.clickhouse_digests(analytics)) == \
        pg_analytics_digests(pg_dsn, schema)
    balances = pg_rows(pg_dsn, f"SELECT asset, holder, balance FROM {schema}.balances "
                               "WHERE kind = 'units' AND balance <> 0")
    assert {(b["asset"], b["holder"]): b["balance"] for b in balances} == \
        {k: v for k, v in scenario.register.items() if v != 0}
