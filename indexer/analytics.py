"""``ClickHouseStore``: the analytics copy of the projection, in ClickHouse.

The same clickhouse-connect code serves the embedded engine (``chdb://memory``, or
``chdb:///path/to/dir`` to keep it on disk) and a server (``http://user:pass@host:8123``).
docs/indexer.md explains the engines, sort keys and partitions below.

Replays are idempotent twice over: rows are inserted only after PostgreSQL has committed them
and only above the ClickHouse checkpoint, a restart first deletes whatever a crashed insert left
above that checkpoint; and every table is a ReplacingMergeTree keyed by the row's identity, so
even a row inserted twice would collapse to one in merges.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import operator
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from indexer.abc import AnalyticsStore, IndexerError
from indexer.tables import ANALYTICS_TABLES, TABLES, Table

DEFAULT_URL = "chdb://memory"
DEFAULT_DATABASE = "smartta"
_DB_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}\Z")

DEC = "Decimal(76, 30)"
TIME = "DateTime64(0, 'UTC')"
H32, A20 = "FixedString(32)", "FixedString(20)"
LC = "LowCardinality(String)"

# name -> (column types in Table.analytics order, ORDER BY, PARTITION BY)
DDL: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "blocks": (("UInt64", "UInt64", H32, H32, TIME, "UInt32"),
               "chain_id, number", "intDiv(number, 1000000)"),
    "ledger_records": (("UInt64", "UInt64", "UInt64", H32, H32, "UInt32", A20, LC, "UInt64",
                        "UInt8", H32, H32, H32, H32, TIME, "String", "Nullable(String)",
                        "Nullable(String)", "Nullable(String)", "Nullable(String)",
                        "Nullable(String)", f"Nullable({DEC})"),
                       "chain_id, event_type, seq", "toYYYYMM(time)"),
    "balance_changes": ((LC, "UInt64", "UInt64", "UInt64", "UInt8", LC, "String", DEC, DEC,
                         TIME), "kind, chain_id, asset, block_number, ordinal, leg",
                        "toYYYYMM(time)"),
    "nav_history": (("UInt64", "UInt64", "UInt64", LC, "Date32", DEC, LC, f"Nullable({DEC})",
                     f"Nullable({DEC})", TIME), "chain_id, isin, nav_date, seq", None),
    "bridge_links": (("UInt64", "UInt64", "UInt64", LC, "UInt64", A20, H32, DEC),
                     "chain_id, seq", None),
    "token_transfers": (("UInt64", "UInt64", "UInt32", H32, A20, A20, A20, "UInt256", TIME),
                        "chain_id, token, block_number, log_index", "toYYYYMM(time)"),
    "token_events": (("UInt64", "UInt64", "UInt32", H32, A20, LC, "String", TIME),
                      "chain_id, event, block_number, log_index", "toYYYYMM(time)"),
    "domain_events": (("UInt64", "UInt64", LC, LC, "String", "String", "DateTime64(6, 'UTC')"),
                      "topic, event_type, xid, id", "toYYYYMM(occurred_at)"),
}


class AnalyticsError(IndexerError):
    """ClickHouse refused or failed; the message says what to check."""


def _json_text(value: Any) -> str:
    """One spelling of a JSON value, whether it comes from the projector or from jsonb."""
    return json.dumps(json.loads(value) if isinstance(value, str) else value, sort_keys=True,
                      separators=(",", ":"))


class _Ticks(dict[dt.datetime, int]):
    """A DateTime64(p) column's integer ticks, as clickhouse-connect computes them from a
    datetime (``DateTime64._datetime64_ticks``), but once per distinct time: a thousand records
    of a block share one, and clickhouse-connect takes integers as they are."""

    def __init__(self, precision: int) -> None:
        super().__init__()
        self.scale = 10 ** precision

    def __missing__(self, t: dt.datetime) -> int:
        if len(self) >= 100_000:
            self.clear()
        seconds = math.floor(t.timestamp())
        ticks: int = (seconds * 1_000_000 + t.microsecond) * self.scale // 1_000_000
        self[t] = ticks
        return ticks


def _decimal_text(value: Any) -> str:
    """A decimal as plain text, never with an exponent (ledger deltas already hold it so)."""
    return value if value.__class__ is str else format(value, "f")


Column = Callable[[Sequence[tuple[Any, ...]]], list[Any]]


def _column(index: int, convert: Callable[[Any], Any] | None, nullable: bool) -> Column:
    """A function that takes one ClickHouse column out of row tuples (map and itemgetter: about
    half the cost of a list comprehension)."""
    field = operator.itemgetter(index)
    if convert is None:
        return lambda rows: list(map(field, rows))
    if not nullable:
        return lambda rows: list(map(convert, map(field, rows)))
    return lambda rows: [None if v is None else convert(v) for v in map(field, rows)]


def _plan(table: Table) -> tuple[list[Column], list[str]]:
    """How each ClickHouse column is taken from a row, and the column types the insert
    declares. Decimal columns travel as text, which ClickHouse converts as it inserts:
    clickhouse-connect's own Decimal(76, 30) encoding costs ~0.85 us a value in Python, the
    text ~0.2 us."""
    types = DDL[table.name][0]
    assert table.analytics is not None
    columns = []
    declared = []
    for column, kind in zip(table.analytics, types, strict=True):
        convert: Callable[[Any], Any] | None = None
        nullable = kind.startswith("Nullable(")
        if "Decimal(" in kind:
            convert = _decimal_text
            kind = "Nullable(String)" if nullable else "String"
        elif kind == "UInt256":
            convert = int
        elif kind.startswith("DateTime64("):
            convert = _Ticks(int(kind.removeprefix("DateTime64(").split(",")[0])).__getitem__
        elif column in ("args", "payload"):
            convert = _json_text
        elif column == "nonce":
            convert = int
        columns.append(_column(table.index(column), convert, nullable))
        declared.append(kind)
    return columns, declared


class ClickHouseStore(AnalyticsStore):
    def __init__(self, client: Client, database: str, url: str) -> None:
        self.client = client
        self.database = database
        self.url = url
        self.lock = threading.RLock()  # one client, used from the writer and the API threads
        self._plans = {t.name: _plan(t) for t in ANALYTICS_TABLES}

    @classmethod
    def connect(cls, url: str = DEFAULT_URL, database: str = DEFAULT_DATABASE) -> ClickHouseStore:
        if not _DB_RE.match(database):
            raise AnalyticsError(f"ClickHouse database name {database!r}: use letters, digits, _")
        try:
            if url.startswith("chdb:"):
                client = clickhouse_connect.get_client(dsn=url)
            else:
                client = clickhouse_connect.get_client(dsn=url, database="default")
        except Exception as exc:  # clickhouse-connect raises several unrelated types here
            hint = ("another process holds this chdb directory (one process per chdb path: serve "
                    "the API from the indexer with `smartta indexer run --api`, or use a "
                    "ClickHouse server)") if "lock" in str(exc).lower() or "chdb" in url \
                else "check --clickhouse and that the server runs"
            raise AnalyticsError(f"cannot open ClickHouse at {_redact(url)}: {exc}; {hint}") \
                from exc
        return cls(client, database, url)

    # ---- schema -------------------------------------------------------------------------------

    def migrate(self) -> None:
        db = self.database
        with self.lock:
            self.client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
            for t in ANALYTICS_TABLES:
                types, order, partition = DDL[t.name]
                assert t.analytics is not None
                cols = ", ".join(f"{c} {k}" for c, k in zip(t.analytics, types, strict=True))
                part = f" PARTITION BY {partition}" if partition else ""
                self.client.command(f"CREATE TABLE IF NOT EXISTS {db}.{t.name} ({cols}) "
                                    f"ENGINE = ReplacingMergeTree ORDER BY ({order}){part}")
            # Columns added after a table was first created (PostgreSQL migration 0003).
            self.client.command(f"ALTER TABLE {db}.ledger_records ADD COLUMN IF NOT EXISTS "
                                f"units Nullable({DEC})")
            self.client.command(f"CREATE TABLE IF NOT EXISTS {db}.checkpoints (source String, "
                                "a Int64, b Int64, version UInt64) "
                                "ENGINE = ReplacingMergeTree(version) ORDER BY source")

    def drop(self) -> None:
        with self.lock:
            self.client.command(f"DROP DATABASE IF EXISTS {self.database} SYNC")

    # ---- position -----------------------------------------------------------------------------

    def position(self, source: str) -> tuple[int, int] | None:
        with self.lock:
            rows = self.client.query(
                f"SELECT a, b FROM {self.database}.checkpoints FINAL WHERE source = "
                "{s:String}", parameters={"s": source}).result_rows
        return None if not rows else (int(rows[0][0]), int(rows[0][1]))

    def _set_position(self, source: str, position: tuple[int, int]) -> None:
        self.client.insert(f"{self.database}.checkpoints",
                           [[source], [position[0]], [position[1]], [time.time_ns()]],
                           column_names=["source", "a", "b", "version"], column_oriented=True)

    # ---- writing ------------------------------------------------------------------------------

    def insert(self, source: str, rows: Mapping[str, Sequence[tuple[Any, ...]]],
               position: tuple[int, int] | None) -> None:
        with self.lock:
            try:
                for name, table_rows in rows.items():
                    table = TABLES[name]
                    if table.analytics is None or not table_rows:
                        continue
                    plan, types = self._plans[name]
                    columns = [take(table_rows) for take in plan]
                    self.client.insert(f"{self.database}.{name}", columns,
                                       column_names=list(table.analytics),
                                       column_type_names=types, column_oriented=True)
                if position is not None:
                    self._set_position(source, position)
            except ClickHouseError as exc:
                raise AnalyticsError(f"ClickHouse insert into {self.database} failed: {exc}") \
                    from exc

    def delete_after(self, source: str, chain_id: int | None, position: tuple[int, int]) -> None:
        with self.lock:
            for t in ANALYTICS_TABLES:
                if t.bus != source.startswith("bus:"):
                    continue
                if t.bus:
                    where = f"(xid, id) > ({int(position[0])}, {int(position[1])})"
                else:
                    where = f"chain_id = {int(chain_id or 0)} AND {t.height} > {int(position[0])}"
                count = self.client.query(
                    f"SELECT count() FROM {self.database}.{t.name} WHERE {where}").result_rows
                if count and count[0][0]:
                    self.client.command(f"DELETE FROM {self.database}.{t.name} WHERE {where}")

    def set_position(self, source: str, position: tuple[int, int]) -> None:
        with self.lock:
            self._set_position(source, position)

    # ---- reading ------------------------------------------------------------------------------

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None,
              ) -> list[tuple[Any, ...]]:
        with self.lock:
            try:
                result = self.client.query(sql, parameters=dict(parameters or {}))
            except ClickHouseError as exc:
                raise AnalyticsError(f"ClickHouse query failed: {exc}") from exc
            return [tuple(r) for r in result.result_rows]

    def close(self) -> None:
        with self.lock:
            self.client.close()


def _redact(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def normalise(value: Any) -> Any:
    """A value as both stores give it back, for digests: bytes as hex, whole decimals as
    integers and others without trailing zeros, times as epoch seconds (ClickHouse returns them
    naive, in UTC)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return str(value.normalize())
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
