"""Schema migrations: applied in order, once, to an older schema without losing its rows."""

from __future__ import annotations

import asyncpg
import pytest
from conftest import run

from indexer import pg


async def _older_schema(dsn: str, schema: str, upto: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        await conn.execute(f"CREATE TABLE {schema}.schema_migrations (version integer PRIMARY KEY, "
                           "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        for m in pg.migrations():
            if m.version <= upto:
                await conn.execute(f"SET search_path TO {schema}")
                await conn.execute(m.sql)
                await conn.execute(f"INSERT INTO {schema}.schema_migrations VALUES ($1, $2)",
                                   m.version, m.name)
        await conn.execute(f"INSERT INTO {schema}.checkpoints (source, block_number) "
                           "VALUES ('chain:1', 41)")
    finally:
        await conn.close()


def test_an_older_schema_is_brought_up_to_date_and_keeps_its_rows(pg_dsn, schema):
    run(_older_schema(pg_dsn, schema, 1))

    async def migrate() -> tuple[list[int], list[int], int]:
        conn = await asyncpg.connect(pg_dsn)
        try:
            first = await pg.migrate(conn, schema)
            second = await pg.migrate(conn, schema)
            kept = await conn.fetchval(f"SELECT block_number FROM {schema}.checkpoints")
            await conn.execute(f"SELECT units FROM {schema}.ledger_records")
            return first, second, kept
        finally:
            await conn.close()

    first, second, kept = run(migrate())
    assert first == [m.version for m in pg.migrations() if m.version > 1]
    assert second == [] and kept == 41


def test_a_schema_newer_than_the_code_is_refused(pg_dsn, schema):
    run(_older_schema(pg_dsn, schema, 99))

    async def newer() -> None:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f"INSERT INTO {schema}.schema_migrations VALUES (9999, 'future')")
            with pytest.raises(pg.StoreError, match="newer than this indexer knows"):
                await pg.migrate(conn, schema)
        finally:
            await conn.close()

    run(newer())
