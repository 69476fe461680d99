"""Content digests of the projection, to compare stores and rebuilds.

A table's digest is SHA-256 over its rows in key order, each row its values normalised the same
way whichever store they come from (``indexer.analytics.normalise``) and written as one JSON
line. ``pg_digests(..., analytics_only=True)`` covers exactly the columns ClickHouse holds, so a
PostgreSQL digest and a ClickHouse digest of the same projection are equal.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from indexer import pg
from indexer.analytics import ClickHouseStore, normalise
from indexer.tables import ANALYTICS_TABLES, TABLES, Table

EXTRA_PG_TABLES = {"balances": ("kind", "chain_id", "asset", "holder", "balance", "block_number")}
"""Current-state tables that are not streamed to ClickHouse, keyed by their first four columns."""


@dataclass(frozen=True, slots=True)
class Digest:
    rows: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "sha256": self.sha256}


JSON_COLUMNS = frozenset({"args", "payload", "personal"})


class _Hasher:
    def __init__(self, columns: tuple[str, ...]) -> None:
        self.h = hashlib.sha256()
        self.rows = 0
        self.json = [i for i, c in enumerate(columns) if c in JSON_COLUMNS]

    def add(self, row: tuple[Any, ...]) -> None:
        values = [normalise(v) for v in row]
        for i in self.json:
            if isinstance(values[i], str):  # jsonb text and ClickHouse's String differ in spacing
                values[i] = json.loads(values[i])
        self.h.update(json.dumps(values, separators=(",", ":"), sort_keys=True,
                                 default=str).encode())
        self.h.update(b"\n")
        self.rows += 1

    def digest(self) -> Digest:
        return Digest(self.rows, self.h.hexdigest())


def _columns(table: Table, analytics_only: bool) -> tuple[str, ...]:
    if analytics_only:
        assert table.analytics is not None
        return table.analytics
    return table.columns


async def pg_digests(dsn: str, schema: str, *, analytics_only: bool = False,
                     ) -> dict[str, Digest]:
    conn = await pg.connect(dsn)
    out: dict[str, Digest] = {}
    try:
        s = pg.check_schema(schema)
        if await conn.fetchval("SELECT to_regclass($1)", f"{s}.checkpoints") is None:
            return {}
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            tables: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
                (t.name, _columns(t, analytics_only), t.key)
                for t in (ANALYTICS_TABLES if analytics_only else TABLES.values())]
            if not analytics_only:
                tables += [(name, cols, cols[:4]) for name, cols in EXTRA_PG_TABLES.items()]
            for name, cols, key in tables:
                out[name] = await _pg_table(conn, s, name, cols, key)
    finally:
        await conn.close()
    return out


async def _pg_table(conn: asyncpg.Connection, schema: str, name: str, cols: tuple[str, ...],
                    key: tuple[str, ...]) -> Digest:
    hasher = _Hasher(cols)
    cursor = conn.cursor(f"SELECT {', '.join(cols)} FROM {schema}.{name} "
                         f"ORDER BY {', '.join(key)}", prefetch=10_000)
    async for row in cursor:
        hasher.add(tuple(row))
    return hasher.digest()


def clickhouse_digests(store: ClickHouseStore) -> dict[str, Digest]:
    out: dict[str, Digest] = {}
    for t in ANALYTICS_TABLES:
        assert t.analytics is not None
        hasher = _Hasher(t.analytics)
        with store.lock, store.client.query_row_block_stream(
                f"SELECT {', '.join(t.analytics)} FROM {store.database}.{t.name} FINAL "
                f"ORDER BY {', '.join(t.key)}",
                column_formats={"delta": "bytes"}) as stream:
            for block in stream:
                for row in block:
                    hasher.add(tuple(row))
        out[t.name] = hasher.digest()
    return out


def as_json(digests: dict[str, Digest]) -> dict[str, Any]:
    return {k: v.to_json() for k, v in sorted(digests.items())}
