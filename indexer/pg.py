"""The PostgreSQL side of the projection: schema migrations, the writer, the checkpoint.

One writer per schema: it holds a session advisory lock for as long as it runs, and every batch
is one transaction that COPYs the rows, updates the current balances and moves the checkpoint,
the checkpoint only if it still is where the writer left it. A crash at any instant therefore
leaves either all of a batch or none of it, and the next run resumes at the checkpoint: no gap,
no duplicate.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any

import asyncpg

from indexer.abc import BlockRef, IndexerError
from indexer.project import BalanceKey, Batch, RefKey
from indexer.tables import CHAIN_TABLES, TABLES, Table

SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")
DEFAULT_SCHEMA = "smartta_indexer"


class StoreError(IndexerError):
    """The PostgreSQL store is not in the state the indexer expects."""


class StoreUnavailable(StoreError):
    """PostgreSQL cannot be reached (yet); a running indexer waits and retries."""


CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    StoreUnavailable, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
    ConnectionError, OSError)
"""Errors that mean PostgreSQL went away (restart, network); the runner reconnects."""


def check_schema(schema: str) -> str:
    if not SCHEMA_RE.match(schema):
        raise StoreError(f"schema name {schema!r}: use lower-case letters, digits and _, "
                         "starting with a letter")
    return schema


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    out = []
    for entry in resources.files("indexer.migrations").iterdir():
        m = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    return sorted(out, key=lambda m: m.version)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    source: str
    block: BlockRef | None
    ledger_seq: int = 0
    ledger_head: bytes | None = None
    bus: tuple[int, int] = (0, 0)
    stored: bool = False
    """Whether the checkpoint row exists (the first batch inserts it)."""

    @property
    def height(self) -> int:
        return -1 if self.block is None else self.block.number


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, **kwargs)
    except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError) as exc:
        raise StoreUnavailable(f"cannot connect to PostgreSQL at {redact(dsn)}: {exc}; check "
                               "--pg / SMARTTA_PG_DSN and that the server runs") from exc
    except asyncpg.PostgresError as exc:
        raise StoreError(f"PostgreSQL at {redact(dsn)} refused the connection: {exc}") from exc


def redact(dsn: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)


async def migrate(conn: asyncpg.Connection, schema: str) -> list[int]:
    """Create or upgrade the schema; returns the versions applied now. Safe to run from several
    processes at once (an advisory lock orders them)."""
    check_schema(schema)
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                           "version integer PRIMARY KEY, name text NOT NULL, "
                           "applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r[0] for r in await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")}
        known = migrations()
        newest = max((m.version for m in known), default=0)
        if done and max(done) > newest:
            raise StoreError(f"schema {schema} is at migration {max(done)}, newer than this "
                             f"indexer knows ({newest}); upgrade the indexer")
        for m in known:
            if m.version in done:
                continue
            await conn.execute(f"SET LOCAL search_path TO {schema}")
            await conn.execute(m.sql)
            await conn.execute(f"INSERT INTO {schema}.schema_migrations (version, name) "
                               "VALUES ($1, $2)", m.version, m.name)
            applied.append(m.version)
        await conn.execute("SET LOCAL search_path TO DEFAULT")
    return applied


async def drop(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {check_schema(schema)} CASCADE")


DEFERRABLE_INDEXES = (
    "blocks_time", "ledger_records_type", "ledger_records_actor", "ledger_records_fund",
    "ledger_records_investor", "ledger_records_counterparty", "ledger_records_reference",
    "ledger_records_block", "balance_changes_register", "balance_changes_holder",
    "balances_holder", "nav_history_isin", "distributions_block", "bridge_links_tx",
    "bridge_links_block", "token_transfers_token", "token_transfers_from", "token_transfers_to",
    "token_transfers_tx", "token_events_contract", "token_events_event")
"""Secondary indexes a bulk backfill drops and rebuilds at the end: a btree built by one sort is
several times cheaper than the same index kept up row by row (a 21-column ledger row with all
its indexes COPYs at ~1/4 of the speed without them)."""


BALANCES = "balances"
"""The ``deferred_indexes`` row that stands for the current balances: a bulk backfill does not
upsert them batch by batch (measured: 2.5 us of the writer's and 8.5 us of PostgreSQL's CPU per
balance, half a balance per event), it computes them from ``balance_changes`` when it builds the
indexes, and when it resumes after a crash, before it reads any of them."""


def rebuild_balances_sql(schema: str) -> str:
    """Every current balance from ``balance_changes``: the balance after the last change of each
    holder, at that change's block (what the upserts of the batches would have left)."""
    s = check_schema(schema)
    return (f"DELETE FROM {s}.balances; "
            f"INSERT INTO {s}.balances (kind, chain_id, asset, holder, balance, block_number) "
            f"SELECT DISTINCT ON (kind, chain_id, asset, holder) kind, chain_id, asset, holder, "
            f"balance, block_number FROM {s}.balance_changes "
            f"ORDER BY kind, chain_id, asset, holder, block_number DESC, ordinal DESC, leg DESC")


async def deferred_indexes(conn: asyncpg.Connection, schema: str) -> list[str]:
    return [r[0] for r in await conn.fetch(
        f"SELECT name FROM {check_schema(schema)}.deferred_indexes ORDER BY name")]


async def defer_indexes(conn: asyncpg.Connection, schema: str) -> int:
    """Drop the secondary indexes, remembering their definitions, and set the current balances
    aside (``BALANCES``), in one transaction."""
    s = check_schema(schema)
    async with conn.transaction():
        rows = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 "
                                "AND indexname = ANY($2::text[])", s, list(DEFERRABLE_INDEXES))
        await conn.execute(f"INSERT INTO {s}.deferred_indexes (name, definition) "
                           "VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", BALANCES,
                           rebuild_balances_sql(s))
        for name, definition in rows:
            await conn.execute(f"INSERT INTO {s}.deferred_indexes (name, definition) "
                               "VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", name, definition)
            await conn.execute(f"DROP INDEX {s}.{name}")
    return len(rows)


async def restore_indexes(conns: Sequence[asyncpg.Connection], schema: str) -> int:
    """Build every deferred index again, one build per connection at a time (the current
    balances, then the largest tables first); each build and its bookkeeping commit together,
    so a crash in between leaves the rest for the next start.

    Two connections building one index each, without parallel workers, keep two cores busy
    better than one connection with PostgreSQL's parallel build (measured on 200,000 events:
    0.99 s against 1.33 s)."""
    s = check_schema(schema)
    rows = await conns[0].fetch(f"SELECT name, definition FROM {s}.deferred_indexes")
    sizes = dict(await conns[0].fetch(
        "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relnamespace = $1::regnamespace",
        s))

    def size(definition: str) -> int:
        table = re.search(r" ON (?:ONLY )?\S+?\.(\w+) ", definition)
        return sizes.get(table.group(1), 0) if table else 0

    rows.sort(key=lambda r: (r[0] != BALANCES, -size(r[1]), r[0]))
    todo = collections.deque(
        [(definition, name) for name, definition in rows]
        # Fresh statistics, or the first queries are planned for empty tables.
        + ([(f"ANALYZE {s}.{t}", None) for t in (*TABLES, "balances")] if rows else []))

    async def work(conn: asyncpg.Connection) -> None:
        while todo:
            statement, name = todo.popleft()
            try:
                async with conn.transaction():
                    await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
                    await conn.execute("SET LOCAL max_parallel_maintenance_workers = 0")
                    await conn.execute(statement)
                    if name is not None:
                        await conn.execute(f"DELETE FROM {s}.deferred_indexes WHERE name = $1",
                                           name)
            except BaseException:
                todo.clear()  # the other connection stops after its build, not in the middle
                raise

    # Not cancelled on the first failure: a cancel could cut a connection's rollback short.
    done = await asyncio.gather(*(work(c) for c in conns), return_exceptions=True)
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
    return len(rows)


PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class _PgTimes(dict[dt.datetime, tuple[int]]):
    """timestamptz as PostgreSQL's binary form wants it: microseconds since 2000-01-01 UTC.

    asyncpg's own encoder converts every value (astimezone, a subtraction, two comparisons with
    infinity); a batch holds one time per block for a thousand records, so the writer converts
    each distinct time once and looks the rest up."""

    def __missing__(self, t: dt.datetime) -> tuple[int]:
        if len(self) >= 100_000:
            self.clear()
        d = t.astimezone(dt.UTC) - PG_EPOCH
        value = self[t] = ((d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds,)
        return value


def _decode_time(value: tuple[int]) -> dt.datetime:
    return PG_EPOCH + dt.timedelta(microseconds=value[0])


class PgWriter:
    """The one connection that writes a schema; it holds the schema's writer lock."""

    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = check_schema(schema)
        self.balances_deferred = False
        """The current balances are set aside (``BALANCES``): batches do not upsert them."""

    @classmethod
    async def open(cls, dsn: str, schema: str) -> PgWriter:
        conn = await connect(dsn)
        try:
            await migrate(conn, schema)
            locked = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))",
                                         f"writer:{schema}")
            if not locked:
                holder = await conn.fetchval(
                    "SELECT string_agg(a.pid::text || ' (' || coalesce(a.application_name, '') "
                    "|| ' ' || coalesce(a.client_addr::text, 'local') || ')', ', ') "
                    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.objid = hashtext($1)::oid",
                    f"writer:{schema}")
                raise StoreError(f"another indexer is writing schema {schema} (backend "
                                 f"{holder or 'unknown'}); stop it first, or use --schema")
            await conn.set_type_codec("timestamptz", schema="pg_catalog", format="tuple",
                                      encoder=_PgTimes().__getitem__, decoder=_decode_time)
        except BaseException:
            await conn.close()
            raise
        return cls(conn, schema)

    async def close(self) -> None:
        if not self.conn.is_closed():
            await self.conn.close()

    # ---- reading state ------------------------------------------------------------------------

    async def checkpoint(self, source: str) -> Checkpoint:
        row = await self.conn.fetchrow(
            f"SELECT block_number, block_hash, ledger_seq, ledger_head, bus_xid, bus_id "
            f"FROM {self.schema}.checkpoints WHERE source = $1", source)
        if row is None:
            return Checkpoint(source, None)
        block = None
        if row["block_number"] >= 0:
            block = BlockRef(row["block_number"], bytes(row["block_hash"]), b"", 0)
        return Checkpoint(source, block, row["ledger_seq"],
                          None if row["ledger_head"] is None else bytes(row["ledger_head"]),
                          (row["bus_xid"], row["bus_id"]), stored=True)

    async def load(self, balances: Iterable[BalanceKey], refs: Iterable[RefKey],
                   ) -> tuple[dict[BalanceKey, Decimal], dict[RefKey, str | None]]:
        keys = list(balances)
        found_b: dict[BalanceKey, Decimal] = {}
        if keys:
            rows = await self.conn.fetch(
                f"SELECT b.kind, b.chain_id, b.asset, b.holder, b.balance "
                f"FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) "
                f"AS k(kind, chain_id, asset, holder) JOIN {self.schema}.balances b "
                f"USING (kind, chain_id, asset, holder)",
                [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                [k[3] for k in keys])
            found_b = {(r[0], r[1], r[2], r[3]): r[4] for r in rows}
        wanted = list(refs)
        found_r: dict[RefKey, str | None] = {}
        if wanted:
            rows = await self.conn.fetch(
                f"SELECT d.chain_id, d.reference, d.isin FROM unnest($1::bigint[], $2::text[]) "
                f"AS k(chain_id, reference) JOIN {self.schema}.distributions d "
                f"USING (chain_id, reference)", [k[0] for k in wanted], [k[1] for k in wanted])
            found_r = {(r[0], r[1]): r[2] for r in rows}
        return found_b, found_r

    # ---- writing ------------------------------------------------------------------------------

    async def write(self, batch: Batch, previous: Checkpoint,
                    after_copy: Callable[[], None] | None = None) -> Checkpoint:
        """Write ``batch`` and move the checkpoint from ``previous``, in one transaction.
        ``after_copy`` runs after each COPY (the crash tests kill the process there)."""
        s = self.schema
        async with self.conn.transaction():
            for name, rows in batch.rows.items():
                if rows:
                    await self.conn.copy_records_to_table(
                        name, records=rows, columns=TABLES[name].columns, schema_name=s)
                    if after_copy is not None:
                        after_copy()
            if batch.balances and not self.balances_deferred:
                cols = list(zip(*batch.balances, strict=True))
                await self.conn.execute(
                    f"INSERT INTO {s}.balances (kind, chain_id, asset, holder, balance, "
                    f"block_number) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], "
                    f"$4::text[], $5::numeric[], $6::bigint[]) ON CONFLICT (kind, chain_id, asset, "
                    f"holder) DO UPDATE SET balance = EXCLUDED.balance, "
                    f"block_number = EXCLUDED.block_number", *[list(c) for c in cols])
            new = Checkpoint(
                batch.source, batch.last if batch.last is not None else previous.block,
                batch.ledger_head[0] if batch.ledger_head else previous.ledger_seq,
                batch.ledger_head[1] if batch.ledger_head else previous.ledger_head,
                batch.bus_cursor if batch.bus_cursor is not None else previous.bus, stored=True)
            await self._move(previous, new, batch.chain_id)
        return new

    async def _move(self, previous: Checkpoint, new: Checkpoint, chain_id: int | None) -> None:
        block_hash = None if new.block is None else new.block.hash
        if not previous.stored:
            status = await self.conn.execute(
                f"INSERT INTO {self.schema}.checkpoints (source, chain_id, block_number, "
                f"block_hash, ledger_seq, ledger_head, bus_xid, bus_id) VALUES ($1, $2, $3, $4, "
                f"$5, $6, $7, $8) ON CONFLICT (source) DO NOTHING",
                new.source, chain_id, new.height, block_hash, new.ledger_seq, new.ledger_head,
                new.bus[0], new.bus[1])
        else:
            status = await self.conn.execute(
                f"UPDATE {self.schema}.checkpoints SET block_number = $2, block_hash = $3, "
                f"ledger_seq = $4, ledger_head = $5, bus_xid = $6, bus_id = $7, "
                f"updated_at = now() WHERE source = $1 AND block_number = $8 AND bus_xid = $9 "
                f"AND bus_id = $10",
                new.source, new.height, block_hash, new.ledger_seq, new.ledger_head, new.bus[0],
                new.bus[1], previous.height, previous.bus[0], previous.bus[1])
        if not status.endswith(" 1"):
            raise StoreError(f"checkpoint of {new.source} moved under this indexer (expected it "
                             f"at {previous.height}/{previous.bus}); another writer? Restart to "
                             "resume from the stored checkpoint")

    async def rollback(self, chain_id: int, height: int, previous: Checkpoint) -> Checkpoint:
        """Undo everything of ``chain_id`` above ``height`` (a reorg on a non-final chain)."""
        s = self.schema
        async with self.conn.transaction():
            keys = await self.conn.fetch(
                f"WITH gone AS (DELETE FROM {s}.balance_changes WHERE chain_id = $1 AND "
                f"block_number > $2 RETURNING kind, chain_id, asset, holder) "
                f"SELECT DISTINCT kind, chain_id, asset, holder FROM gone", chain_id, height)
            for t in CHAIN_TABLES:
                if t.name != "balance_changes":
                    await self.conn.execute(f"DELETE FROM {s}.{t.name} WHERE chain_id = $1 AND "
                                            f"{t.height} > $2", chain_id, height)
            if self.balances_deferred:
                # The table is behind on purpose; the projector reloads from it next.
                await self.conn.execute(rebuild_balances_sql(s))
                keys = []
            for k in keys:
                last = await self.conn.fetchrow(
                    f"SELECT balance, block_number FROM {s}.balance_changes WHERE kind = $1 AND "
                    f"chain_id = $2 AND asset = $3 AND holder = $4 ORDER BY block_number DESC, "
                    f"ordinal DESC, leg DESC LIMIT 1", *k)
                if last is None:
                    await self.conn.execute(
                        f"DELETE FROM {s}.balances WHERE kind = $1 AND chain_id = $2 AND "
                        f"asset = $3 AND holder = $4", *k)
                else:
                    await self.conn.execute(
                        f"UPDATE {s}.balances SET balance = $5, block_number = $6 WHERE kind = $1 "
                        f"AND chain_id = $2 AND asset = $3 AND holder = $4", *k, *last)
            head = await self.conn.fetchrow(
                f"SELECT seq, record_hash FROM {s}.ledger_records WHERE chain_id = $1 "
                f"ORDER BY seq DESC LIMIT 1", chain_id)
            block = await self.conn.fetchrow(
                f"SELECT number, hash FROM {s}.blocks WHERE chain_id = $1 AND number = $2",
                chain_id, height)
            ref = None if block is None else BlockRef(block[0], bytes(block[1]), b"", 0)
            new = Checkpoint(previous.source, ref, 0 if head is None else head[0],
                             None if head is None else bytes(head[1]), previous.bus, stored=True)
            await self._move(previous, new, chain_id)
        return new

    async def stored_block(self, chain_id: int, number: int) -> bytes | None:
        value = await self.conn.fetchval(
            f"SELECT hash FROM {self.schema}.blocks WHERE chain_id = $1 AND number = $2",
            chain_id, number)
        return None if value is None else bytes(value)


async def table_rows(conn: asyncpg.Connection, schema: str, table: Table, *,
                     chain_id: int | None = None, after: tuple[int, int] = (-1, -1),
                     upto: tuple[int, int] | None = None, chunk: int = 20_000,
                     ) -> AsyncIterator[list[tuple[Any, ...]]]:
    """Rows of ``table`` in key order, in chunks: of one chain above height ``after[0]`` (up to
    ``upto[0]``), or, for the bus table, after the cursor ``after`` (up to ``upto``)."""
    cols = ", ".join(table.columns)
    key = ", ".join(table.key)
    where: list[str] = []
    args: list[Any] = []
    if table.bus:
        args += [after[0], after[1]]
        where.append("(xid, id) > ($1, $2)")
        if upto is not None:
            args += [upto[0], upto[1]]
            where.append("(xid, id) <= ($3, $4)")
    else:
        if chain_id is not None:
            args.append(chain_id)
            where.append(f"chain_id = ${len(args)}")
        args.append(after[0])
        where.append(f"{table.height} > ${len(args)}")
        if upto is not None:
            args.append(upto[0])
            where.append(f"{table.height} <= ${len(args)}")
    sql = (f"SELECT {cols} FROM {check_schema(schema)}.{table.name} "
           f"WHERE {' AND '.join(where)} ORDER BY {key}")
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(sql, *args)
        while True:
            rows = await cursor.fetch(chunk)
            if not rows:
                break
            yield [tuple(r) for r in rows]
