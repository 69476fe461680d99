"""The default event bus: the TA services' transactional outbox in PostgreSQL, with
LISTEN/NOTIFY to wake the indexer.

A service writes its state change and an outbox row in one transaction. Sequence numbers are
assigned before commit, so reading "id > last" could skip a row whose transaction commits late;
the outbox therefore records the writing transaction's id (``xid``), and the indexer reads only
rows whose transaction is older than every transaction still running
(``xid < pg_snapshot_xmin(pg_current_snapshot())``), in ``(xid, id)`` order. Nothing can appear
behind that cursor later, so consuming from a cursor stored with the projected rows is exactly
once. ``OUTBOX_DDL`` is the table contract (docs/indexer.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

import asyncpg

from indexer.abc import BusCursor, DomainEvent, EventBus, IndexerError

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?\Z")
DEFAULT_TABLE = "ta.outbox"
DEFAULT_CHANNEL = "smartta_outbox"

OUTBOX_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    id           bigserial PRIMARY KEY,
    xid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    topic        text NOT NULL,
    event_type   text NOT NULL,
    aggregate_id text NOT NULL,
    subject      text,
    payload      jsonb NOT NULL,
    personal     jsonb,
    occurred_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS {index} ON {table} (xid, id);
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{channel}', '');
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS {trigger} ON {table};
CREATE TRIGGER {trigger} AFTER INSERT ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {function}();
"""


def check_table(name: str) -> str:
    if not _NAME.match(name):
        raise IndexerError(f"outbox table {name!r}: use schema.table in lower-case letters, "
                           "digits and _")
    return name


def outbox_ddl(table: str = DEFAULT_TABLE, channel: str = DEFAULT_CHANNEL) -> str:
    """The DDL a TA service runs to create its outbox (schema first, if it has one)."""
    check_table(table)
    if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", channel):
        raise IndexerError(f"channel {channel!r}: use lower-case letters, digits and _")
    name = table.split(".")[-1]
    schema = f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]};\n" if "." in table else ""
    return schema + OUTBOX_DDL.format(table=table, index=f"{name}_xid_id",
                                      function=f"{table}_notify", trigger=f"{name}_notify",
                                      channel=channel)


async def create_outbox(conn: asyncpg.Connection, table: str = DEFAULT_TABLE,
                        channel: str = DEFAULT_CHANNEL) -> None:
    await conn.execute(outbox_ddl(table, channel))


class PgOutbox(EventBus):
    def __init__(self, dsn: str, table: str = DEFAULT_TABLE, channel: str = DEFAULT_CHANNEL,
                 ) -> None:
        self.dsn = dsn
        self.table = check_table(table)
        self.channel = channel
        self._conn: asyncpg.Connection | None = None
        self._woken = asyncio.Event()

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn)
            await self._conn.add_listener(self.channel, self._notified)
            self._woken.set()  # anything committed while we were away
        return self._conn

    def _notified(self, *_: Any) -> None:
        self._woken.set()

    async def fetch(self, after: BusCursor, limit: int) -> list[DomainEvent]:
        conn = await self._connection()
        try:
            rows = await conn.fetch(
                f"SELECT xid::text::bigint AS xid, id, topic, event_type, aggregate_id, subject, "
                f"payload::text AS payload, personal::text AS personal, occurred_at "
                f"FROM {self.table} WHERE (xid, id) > ($1::text::xid8, $2) "
                f"AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid, id LIMIT $3",
                str(after.xid), after.id, limit)
        except asyncpg.UndefinedTableError:
            raise IndexerError(f"the outbox table {self.table} does not exist at the bus DSN; "
                               "create it with the DDL in docs/indexer.md (indexer.outbox."
                               "outbox_ddl) or point --outbox-table at it") from None
        return [DomainEvent(r["xid"], r["id"], r["topic"], r["event_type"], r["aggregate_id"],
                            json.loads(r["payload"]), r["occurred_at"], r["subject"],
                            None if r["personal"] is None else json.loads(r["personal"]))
                for r in rows]

    async def wait(self, timeout: float) -> None:
        await self._connection()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), timeout)
        self._woken.clear()

    async def close(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()


def event_rows(events: list[DomainEvent]) -> list[tuple[Any, ...]]:
    """``domain_events`` rows (indexer.tables order) for a list of bus events."""
    return [(e.xid, e.id, e.topic, e.event_type, e.aggregate_id, e.subject,
             json.dumps(dict(e.payload), sort_keys=True),
             None if e.personal is None else json.dumps(dict(e.personal), sort_keys=True),
             e.occurred_at) for e in events]
