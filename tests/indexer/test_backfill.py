"""Backfill and live following against a real node, a real PostgreSQL and the real ClickHouse
engine: both stores end up holding exactly what the chain says."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from chainkit import FundScenario, isin
from conftest import run
from oracle import assert_no_gaps_or_duplicates, assert_pg_matches_chain, pg_analytics_digests, pg_rows

from indexer import digest
from indexer.abc import IndexerError
from indexer.runner import ChainConfig, Indexer, IndexerConfig


def config(pg_dsn, schema, node, ledger, **kw) -> IndexerConfig:
    chain = ChainConfig(node.url, getattr(node, "ws_url", None), ledger.address,
                        from_block=0, chain_id=ledger.chain_id)
    return IndexerConfig(pg_dsn, (chain,), schema=schema, **kw)


def test_clean_backfill_puts_every_record_in_both_stores_once(pg_dsn, schema, analytics, node,
                                                              ledger):
    scenario = FundScenario(funds=2, investors=12, seed=11)
    for _ in range(6):
        ledger.append(scenario.events(60))
    node.mine(3)
    # Small batches and ranges: many transactions, many ClickHouse inserts, adaptive ranges.
    cfg = config(pg_dsn, schema, node, ledger, batch_events=50, max_range=4, concurrency=3)
    run(Indexer(cfg, analytics).run(follow=False))
    n = assert_pg_matches_chain(pg_dsn, schema, node.url, ledger.address, scenario)
    assert n == sum(scenario.counts.values())
    assert_no_gaps_or_duplicates(pg_dsn, schema)
    head = node.head()
    cp = pg_rows(pg_dsn, f"SELECT block_number FROM {schema}.checkpoints")
    assert cp[0]["block_number"] == head
    blocks = pg_rows(pg_dsn, f"SELECT count(*) AS n FROM {schema}.blocks")
    assert blocks[0]["n"] == head + 1  # every block from genesis, not only those with logs
    assert digest.as_json(digest.clickhouse_digests(analytics)) == \
        pg_analytics_digests(pg_dsn, schema)
    assert analytics.position(f"chain:{ledger.chain_id}") == (head, 0)


def test_a_second_run_at_the_head_writes_nothing(pg_dsn, schema, analytics, node, ledger):
    scenario = FundScenario(seed=12)
    ledger.append(scenario.events(30))
    cfg = config(pg_dsn, schema, node, ledger)
    run(Indexer(cfg, analytics).run(follow=False))
    before = asyncio.run(digest.pg_digests(pg_dsn, schema))
    run(Indexer(cfg, analytics).run(follow=False))
    assert asyncio.run(digest.pg_digests(pg_dsn, schema)) == before


def test_verifying_in_worker_processes_gives_the_same_rows(pg_dsn, schema, analytics, node,
                                                           ledger):
    scenario = FundScenario(funds=1, investors=5, seed=13)
    for _ in range(4):
        ledger.append(scenario.events(40))
    run(Indexer(config(pg_dsn, schema, node, ledger, workers=2, batch_events=100),
                analytics).run(follow=False))
    assert_pg_matches_chain(pg_dsn, schema, node.url, ledger.address, scenario)
    assert digest.as_json(digest.clickhouse_digests(analytics)) == \
        pg_analytics_digests(pg_dsn, schema)


def test_live_following_keeps_up_with_new_blocks(pg_dsn, schema, analytics, node, ledger):
    scenario = FundScenario(funds=2, investors=6, seed=14)
    ledger.append(scenario.events(20))
    indexer = Indexer(config(pg_dsn, schema, node, ledger, poll_interval=0.2), analytics)

    async def scenario_run() -> None:
        task = asyncio.create_task(indexer.run(follow=True))
        try:
            for _ in range(5):
                await asyncio.to_thread(ledger.append, scenario.events(15))
                await asyncio.to_thread(node.mine, 1)
            head = node.head()
            deadline = time.monotonic() + 60
            source = f"chain:{ledger.chain_id}"
            while source not in indexer.status or indexer.status[source].indexed < head:
                status = indexer.status.get(source)
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, f"indexed {status} of {head}"
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            assert indexer.status[source].state == "following"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run(scenario_run())
    assert_pg_matches_chain(pg_dsn, schema, node.url, ledger.address, scenario)
    assert digest.as_json(digest.clickhouse_digests(analytics)) == \
        pg_analytics_digests(pg_dsn, schema)


def test_a_node_of_another_chain_id_is_refused(pg_dsn, schema, analytics, node, ledger):
    chain = ChainConfig(node.url, ledger=ledger.address, chain_id=ledger.chain_id + 1)
    with pytest.raises(IndexerError, match="is chain"):
        run(Indexer(IndexerConfig(pg_dsn, (chain,), schema=schema), analytics).run(follow=False))
    assert pg_rows(pg_dsn, f"SELECT count(*) AS n FROM {schema}.ledger_records")[0]["n"] == 0


def _indexes(pg_dsn, schema) -> set[str]:
    return {r["indexname"] for r in pg_rows(
        pg_dsn, "SELECT indexname FROM pg_indexes WHERE schemaname = $1", schema)}


def test_a_fresh_backfill_defers_secondary_indexes_and_builds_them_at_the_head(
        pg_dsn, schema, analytics, node, ledger):
    from indexer.pg import DEFERRABLE_INDEXES

    scenario = FundScenario(seed=15)
    ledger.append(scenario.events(80))
    seen: list[str] = []
    indexer = Indexer(config(pg_dsn, schema, node, ledger, batch_events=30), analytics,
                      progress=lambda s: seen.append(s.state))
    run(indexer.run(follow=False))
    assert "building indexes" in seen
    assert set(DEFERRABLE_INDEXES) <= _indexes(pg_dsn, schema)
    assert pg_rows(pg_dsn, f"SELECT count(*) AS n FROM {schema}.deferred_indexes")[0]["n"] == 0
    # The same chain indexed without bulk mode gives the same content.
    _assert_same_as_without_bulk(pg_dsn, schema, node, ledger, analytics)


def test_an_index_that_already_holds_rows_keeps_its_indexes_while_catching_up(
        pg_dsn, schema, analytics, node, ledger):
    scenario = FundScenario(seed=16)
    ledger.append(scenario.events(20))
    cfg = config(pg_dsn, schema, node, ledger)
    run(Indexer(cfg, analytics).run(follow=False))
    ledger.append(scenario.events(40))
    seen: list[str] = []
    run(Indexer(cfg, analytics, progress=lambda s: seen.append(s.state)).run(follow=False))
    assert "building indexes" not in seen
    assert "ledger_records_type" in _indexes(pg_dsn, schema)


def test_one_chain_configured_as_two_sources_is_refused(pg_dsn, schema, analytics, node, ledger):
    twice = (ChainConfig(node.url, ledger=ledger.address), ChainConfig(node.url, tokens=(b"\x01" * 20,)))
    with pytest.raises(IndexerError, match="two configured sources are chain"):
        run(Indexer(IndexerConfig(pg_dsn, twice, schema=schema), analytics).run(follow=False))


def test_deferred_indexes_build_on_two_connections_and_a_failed_build_leaves_the_rest_listed(
        pg_dsn, schema):
    from indexer import pg

    async def indexes(conn) -> set[str]:
        return {r[0] for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = $1", schema)}

    async def scenario() -> None:
        conn, helper = await asyncpg.connect(pg_dsn), await asyncpg.connect(pg_dsn)
        try:
            await pg.migrate(conn, schema)
            await pg.defer_indexes(conn, schema)
            await conn.execute(f"INSERT INTO {schema}.deferred_indexes (name, definition) VALUES "
                               f"('broken', 'CREATE INDEX broken ON {schema}.nowhere (x)')")
            with pytest.raises(asyncpg.UndefinedTableError):
                await pg.restore_indexes([conn, helper], schema)
            listed = set(await pg.deferred_indexes(conn, schema))
            assert "broken" in listed
            assert not listed & await indexes(conn)  # built and still listed: never both
            await conn.execute(f"DELETE FROM {schema}.deferred_indexes WHERE name = 'broken'")
            assert await pg.restore_indexes([conn, helper], schema) == len(listed) - 1
            assert set(pg.DEFERRABLE_INDEXES) <= await indexes(conn)
            assert await pg.deferred_indexes(conn, schema) == []
        finally:
            await conn.close()
            await helper.close()

    run(scenario())


def test_a_bulk_backfill_that_resumes_computes_the_balances_it_set_aside_before_reading_them(
        pg_dsn, schema, analytics, node, ledger):
    from indexer import pg

    scenario = FundScenario(funds=2, investors=6, seed=17)
    ledger.append(scenario.events(60))
    run(Indexer(config(pg_dsn, schema, node, ledger), analytics).run(follow=False))
    register = run(_register_now(pg_dsn, schema, isin(0)))
    assert register
    # What a bulk backfill stopped half-way leaves: no current balances, and the note to
    # compute them. The API answers from balance_changes meanwhile.
    pg_rows(pg_dsn, f"DELETE FROM {schema}.balances")
    pg_rows(pg_dsn, f"INSERT INTO {schema}.deferred_indexes (name, definition) VALUES ($1, $2)",
            pg.BALANCES, pg.rebuild_balances_sql(schema))
    assert run(_register_now(pg_dsn, schema, isin(0))) == register
    ledger.append(scenario.events(60))  # the same holders again: their balances are read
    run(Indexer(config(pg_dsn, schema, node, ledger), analytics).run(follow=False))
    assert pg_rows(pg_dsn, f"SELECT count(*) AS n FROM {schema}.deferred_indexes")[0]["n"] == 0
    _assert_same_as_without_bulk(pg_dsn, schema, node, ledger, analytics)
    assert_pg_matches_chain(pg_dsn, schema, node.url, ledger.address, scenario)


def _assert_same_as_without_bulk(pg_dsn, schema, node, ledger, analytics) -> None:
    """The chain indexed again into a fresh schema without bulk mode has the same digests."""
    bulk = asyncio.run(digest.pg_digests(pg_dsn, schema))
    other = schema + "_nb"
    try:
        run(Indexer(config(pg_dsn, other, node, ledger, bulk=False), analytics).run(follow=False))
        assert asyncio.run(digest.pg_digests(pg_dsn, other)) == bulk
    finally:
        pg_rows(pg_dsn, f"DROP SCHEMA IF EXISTS {other} CASCADE")


async def _register_now(dsn: str, schema: str, fund: str) -> list[dict]:
    from indexer import queries

    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            view = await queries.View.open(conn, schema)
            page, _, _ = await queries.register(view, "units", view.ledger_chain, fund,
                                                limit=1000)
            return page
    finally:
        await conn.close()
