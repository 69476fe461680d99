"""Values reach both stores as they are, although the writers bypass the drivers' own
per-value conversions: times are converted once per distinct value (indexer.pg._PgTimes,
indexer.analytics._Ticks), decimals travel to ClickHouse as text."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
from decimal import Decimal

import asyncpg
from conftest import run

from indexer.abc import BlockRef
from indexer.pg import Checkpoint, PgWriter
from indexer.project import Batch
from indexer.runner import Indexer, IndexerConfig

CET = dt.timezone(dt.timedelta(hours=2))
TIMES = [
    dt.datetime(2026, 3, 1, 12, 0, 5, 123456, tzinfo=dt.UTC),
    dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),  # before PostgreSQL's epoch
    dt.datetime(2026, 3, 1, 14, 0, 5, 654321, tzinfo=CET),  # another offset, same instant
    dt.datetime(2026, 3, 1, 12, 0, 5, 123456, tzinfo=dt.UTC),  # repeated: from the cache
    dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
]


def block_rows() -> list[tuple[object, ...]]:
    return [(1, n, bytes([n]) * 32, bytes(32), t, 0) for n, t in enumerate(TIMES)]


def test_the_postgresql_writer_stores_each_time_as_the_instant_it_names(pg_dsn, schema):
    async def scenario() -> list[dt.datetime]:
        writer = await PgWriter.open(pg_dsn, schema)
        try:
            last = BlockRef(len(TIMES) - 1, bytes([len(TIMES) - 1]) * 32, bytes(32), 0)
            await writer.write(Batch("chain:1", 1, last, {"blocks": block_rows()}),
                               Checkpoint("chain:1", None))
        finally:
            await writer.close()
        conn = await asyncpg.connect(pg_dsn)
        try:
            return [r[0] for r in await conn.fetch(
                f"SELECT time FROM {schema}.blocks ORDER BY number")]
        finally:
            await conn.close()

    assert run(scenario()) == TIMES


def test_clickhouse_gets_whole_seconds_and_microseconds_as_its_columns_hold_them(analytics):
    analytics.insert("chain:1", {"blocks": block_rows()}, None)
    stored = [r[0] for r in analytics.query(
        f"SELECT time FROM {analytics.database}.blocks ORDER BY number")]
    # DateTime64(0): the second the instant falls in (ClickHouse answers naive UTC).
    assert stored == [t.astimezone(dt.UTC).replace(microsecond=0, tzinfo=None) for t in TIMES]

    events = [(n, n, "order", "ORDER_ACCEPTED", f"ORD-{n}", None, {"n": n}, None, t)
              for n, t in enumerate(TIMES)]
    analytics.insert("bus:outbox", {"domain_events": events}, None)
    stored = [r[0] for r in analytics.query(
        f"SELECT occurred_at FROM {analytics.database}.domain_events ORDER BY id")]
    assert stored == [t.astimezone(dt.UTC).replace(tzinfo=None) for t in TIMES]


def test_a_run_leaves_the_collector_thresholds_as_it_found_them(pg_dsn, schema, analytics):
    before = gc.get_threshold()
    config = IndexerConfig(pg_dsn, (), schema=schema)
    asyncio.run(Indexer(config, analytics).run(follow=False))
    assert gc.get_threshold() == before


def test_decimals_reach_clickhouse_exactly_whatever_their_python_spelling(analytics):
    values = [Decimal("1E+2"), Decimal("1E-7"), Decimal("-12.5"), Decimal("-0"),
              Decimal("0." + "0" * 29 + "1"), Decimal("1234567890" * 4 + "12345.5"), "100.5"]
    t = TIMES[0]
    changes = [("units", 1, 1, n, 0, "LU0000000001", "inv", v, v, t) for n, v in enumerate(values)]
    navs = [(1, n, 1, "LU0000000001", t.date(), v, "EUR", None if n % 2 else v, v, t)
            for n, v in enumerate(values)]
    analytics.insert("chain:1", {"balance_changes": changes, "nav_history": navs}, None)
    db = analytics.database
    exact = [Decimal(str(v)) for v in values]
    assert [r for r in analytics.query(
        f"SELECT amount, balance FROM {db}.balance_changes ORDER BY ordinal")] == \
        [(v, v) for v in exact]
    assert [r for r in analytics.query(
        f"SELECT nav, net_assets, units_outstanding FROM {db}.nav_history ORDER BY seq")] == \
        [(v, None if n % 2 else v, v) for n, v in enumerate(exact)]
