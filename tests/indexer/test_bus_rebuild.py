"""The domain event bus (the PostgreSQL outbox) consumed exactly once, and `smartta indexer
rebuild` ending with identical content."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
from chainkit import FundScenario
from conftest import run
from oracle import pg_analytics_digests, pg_rows

from indexer import digest
from indexer.abc import BusCursor
from indexer.cli import rebuild
from indexer.outbox import PgOutbox
from indexer.runner import BusConfig, ChainConfig, Indexer, IndexerConfig


async def publish(dsn: str, table: str, events: list[tuple[str, str, str, dict]],
                  personal: dict | None = None) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for topic, event_type, aggregate, payload in events:
                await conn.execute(
                    f"INSERT INTO {table} (topic, event_type, aggregate_id, subject, payload, "
                    f"personal) VALUES ($1, $2, $3, $4, $5, $6)", topic, event_type, aggregate,
                    payload.get("investor"), json.dumps(payload),
                    None if personal is None else json.dumps(personal))
    finally:
        await conn.close()


def test_an_outbox_row_committed_late_is_not_skipped_and_order_is_commit_safe(pg_dsn,
                                                                             outbox_table):
    async def scenario() -> None:
        slow = await asyncpg.connect(pg_dsn)
        bus = PgOutbox(pg_dsn, outbox_table)
        try:
            tx = slow.transaction()
            await tx.start()
            # The slow transaction takes its id first but commits last.
            await slow.execute(f"INSERT INTO {outbox_table} (topic, event_type, aggregate_id, "
                               "payload) VALUES ('order', 'ORDER_ACCEPTED', 'ORD-1', '{}')")
            await publish(pg_dsn, outbox_table, [("order", "ORDER_ACCEPTED", "ORD-2", {})])
            seen = await bus.fetch(BusCursor(), 100)
            # ORD-2 is committed, but an older transaction is still open: it waits.
            assert seen == []
            await tx.commit()
            seen = await bus.fetch(BusCursor(), 100)
            assert [e.aggregate_id for e in seen] == ["ORD-1", "ORD-2"]
            assert await bus.fetch(seen[-1].cursor, 100) == []
        finally:
            await slow.close()
            await bus.close()

    run(scenario())


def test_domain_events_reach_both_stores_once_and_personal_data_only_postgresql(
        pg_dsn, schema, analytics, outbox_table):
    run(publish(pg_dsn, outbox_table, [
        ("order", "ORDER_ACCEPTED", f"ORD-{i}", {"investor": "inv_0123456789abcdef", "n": i})
        for i in range(120)], personal={"name": "Ada Lovelace"}))
    bus = BusConfig(pg_dsn, outbox_table, channel=outbox_table.split(".")[0])
    config = IndexerConfig(pg_dsn, (), schema=schema, bus=bus)
    run(Indexer(config, analytics).run(follow=False))
    run(Indexer(config, analytics).run(follow=False))  # nothing new: nothing written twice
    rows = pg_rows(pg_dsn, f"SELECT aggregate_id, personal FROM {schema}.domain_events ORDER BY id")
    assert [r["aggregate_id"] for r in rows] == [f"ORD-{i}" for i in range(120)]
    assert json.loads(rows[0]["personal"]) == {"name": "Ada Lovelace"}
    assert digest.as_json(digest.clickhouse_digests(analytics)) == \
        pg_analytics_digests(pg_dsn, schema)
    columns = analytics.query(f"SELECT name FROM system.columns WHERE database = "
                              f"'{analytics.database}' AND table = 'domain_events'")
    assert "personal" not in {c[0] for c in columns} and "subject" not in {c[0] for c in columns}


def test_a_following_indexer_is_woken_by_the_outbox_notification(pg_dsn, schema, analytics,
                                                                outbox_table):
    bus = BusConfig(pg_dsn, outbox_table, channel=outbox_table.split(".")[0])
    indexer = Indexer(IndexerConfig(pg_dsn, (), schema=schema, bus=bus), analytics)

    async def scenario() -> None:
        task = asyncio.create_task(indexer.run(follow=True))
        try:
            while indexer.status.get(bus.source) is None or \
                    indexer.status[bus.source].state != "following":
                await asyncio.sleep(0.05)
            await publish(pg_dsn, outbox_table, [("nav", "NAV_CALCULATED", "LU0000000009", {})])
            # Well inside the 5 s a poll would take: the NOTIFY woke it.
            await asyncio.wait_for(_until(lambda: indexer.status[bus.source].events == 1), 3)
        finally:
            indexer.stop()
            await asyncio.wait_for(task, 30)

    run(scenario())


async def _until(predicate) -> None:
    while not predicate():
        await asyncio.sleep(0.02)


def test_rebuild_from_genesis_ends_with_identical_content(pg_dsn, schema, analytics, node, ledger,
                                                         outbox_table):
    scenario = FundScenario(funds=2, investors=10, seed=41)
    for _ in range(4):
        ledger.append(scenario.events(50))
        node.mine(2)
    run(publish(pg_dsn, outbox_table, [("order", "ORDER_ACCEPTED", f"ORD-{i}", {"i": i})
                                       for i in range(30)]))
    bus = BusConfig(pg_dsn, outbox_table, channel=outbox_table.split(".")[0])
    config = IndexerConfig(pg_dsn, (ChainConfig(node.url, ledger=ledger.address),),
                           schema=schema, bus=bus, batch_events=70)
    run(Indexer(config, analytics).run(follow=False))
    indexed = sum(scenario.counts.values())
    # The chain and the outbox go on; the rebuild stops where the index stood.
    ledger.append(scenario.events(30))
    run(publish(pg_dsn, outbox_table, [("order", "ORDER_ACCEPTED", "ORD-late", {})]))
    rebuilt = IndexerConfig(pg_dsn, config.chains, schema=schema, bus=bus, batch_events=33)
    before, after = asyncio.run(rebuild(rebuilt, analytics))
    assert before == after
    assert before["pg.ledger_records"]["rows"] == indexed
    assert before["clickhouse.ledger_records"]["rows"] == indexed
    assert before["pg.domain_events"]["rows"] == 30


def test_rebuild_keeps_api_credentials(pg_dsn, schema, analytics, node, ledger):
    from indexer import access

    ledger.append(FundScenario(seed=42).events(10))
    config = IndexerConfig(pg_dsn, (ChainConfig(node.url, ledger=ledger.address),), schema=schema)
    run(Indexer(config, analytics).run(follow=False))

    async def issue() -> str:
        conn = await asyncpg.connect(pg_dsn)
        try:
            return (await access.issue(conn, schema, "CSSF", "observer"))[1]
        finally:
            await conn.close()

    token = run(issue())
    before, after = asyncio.run(rebuild(config, analytics))
    assert before == after

    async def check() -> None:
        conn = await asyncpg.connect(pg_dsn)
        try:
            assert (await access.authenticate(conn, schema, token)) is not None
            again = (await access.issue(conn, schema, "FCA", "observer"))[0]
            assert again.id == 2
        finally:
            await conn.close()

    run(check())


@pytest.mark.parametrize("bad", ["ta.outbox; drop table x", "Outbox"])
def test_an_outbox_table_name_that_is_not_an_identifier_is_refused(pg_dsn, bad):
    from indexer.abc import IndexerError

    with pytest.raises(IndexerError, match="outbox table"):
        PgOutbox(pg_dsn, bad)
