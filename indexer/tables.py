"""The projection's tables: one column list per table, shared by the projector (row tuples are
in this order), the PostgreSQL writer (COPY), the ClickHouse writer (a subset of the columns)
and the digests. The DDL is in ``indexer/migrations/*.sql`` (PostgreSQL) and
``indexer/analytics.py`` (ClickHouse); tests check both against these lists.

Every chain table carries ``chain_id`` and ``block_number``, so a crash or a reorg is undone by
height; ``domain_events`` is positioned by the bus cursor ``(xid, id)`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    """Unique ordering: digests and copies walk rows in this order."""
    analytics: tuple[str, ...] | None
    """Columns copied to ClickHouse (None: PostgreSQL only). Personal data never is."""
    bus: bool = False
    """Positioned by the event bus cursor rather than by chain height."""
    height: str = "block_number"
    """The column holding the block a row comes from."""

    def index(self, column: str) -> int:
        return self.columns.index(column)


BLOCKS = Table(
    "blocks",
    ("chain_id", "number", "hash", "parent_hash", "time", "log_count"),
    ("chain_id", "number"),
    ("chain_id", "number", "hash", "parent_hash", "time", "log_count"),
    height="number",
)

LEDGER_RECORDS = Table(
    "ledger_records",
    ("chain_id", "seq", "block_number", "block_hash", "tx_hash", "log_index", "actor",
     "event_type", "nonce", "scheme", "attestation_id", "data_hash", "previous_hash",
     "record_hash", "time", "delta", "fund", "investor", "counterparty", "reference",
     "finding", "units"),
    ("chain_id", "seq"),
    ("chain_id", "seq", "block_number", "block_hash", "tx_hash", "log_index", "actor",
     "event_type", "nonce", "scheme", "attestation_id", "data_hash", "previous_hash",
     "record_hash", "time", "delta", "fund", "investor", "counterparty", "reference",
     "finding", "units"),
)

BALANCE_CHANGES = Table(
    "balance_changes",
    ("kind", "chain_id", "block_number", "ordinal", "leg", "asset", "holder", "amount",
     "balance", "time"),
    ("kind", "chain_id", "block_number", "ordinal", "leg"),
    ("kind", "chain_id", "block_number", "ordinal", "leg", "asset", "holder", "amount",
     "balance", "time"),
)

NAV_HISTORY = Table(
    "nav_history",
    ("chain_id", "seq", "block_number", "isin", "nav_date", "nav", "currency", "net_assets",
     "units_outstanding", "time"),
    ("chain_id", "seq"),
    ("chain_id", "seq", "block_number", "isin", "nav_date", "nav", "currency", "net_assets",
     "units_outstanding", "time"),
)

DISTRIBUTIONS = Table(
    "distributions",
    ("chain_id", "reference", "isin", "seq", "block_number"),
    ("chain_id", "reference"),
    None,
)

BRIDGE_LINKS = Table(
    "bridge_links",
    ("chain_id", "seq", "block_number", "kind", "token_chain", "token", "tx_hash", "amount"),
    ("chain_id", "seq"),
    ("chain_id", "seq", "block_number", "kind", "token_chain", "token", "tx_hash", "amount"),
)

TOKEN_TRANSFERS = Table(
    "token_transfers",
    ("chain_id", "block_number", "log_index", "tx_hash", "token", "from_addr", "to_addr",
     "amount", "time"),
    ("chain_id", "block_number", "log_index"),
    ("chain_id", "block_number", "log_index", "tx_hash", "token", "from_addr", "to_addr",
     "amount", "time"),
)

TOKEN_EVENTS = Table(
    "token_events",
    ("chain_id", "block_number", "log_index", "tx_hash", "contract", "event", "args", "time"),
    ("chain_id", "block_number", "log_index"),
    ("chain_id", "block_number", "log_index", "tx_hash", "contract", "event", "args", "time"),
)

DOMAIN_EVENTS = Table(
    "domain_events",
    ("xid", "id", "topic", "event_type", "aggregate_id", "subject", "payload", "personal",
     "occurred_at"),
    ("xid", "id"),
    ("xid", "id", "topic", "event_type", "aggregate_id", "payload", "occurred_at"),
    bus=True,
    height="",
)

TABLES: dict[str, Table] = {t.name: t for t in (
    BLOCKS, LEDGER_RECORDS, BALANCE_CHANGES, NAV_HISTORY, DISTRIBUTIONS, BRIDGE_LINKS,
    TOKEN_TRANSFERS, TOKEN_EVENTS, DOMAIN_EVENTS)}
CHAIN_TABLES = tuple(t for t in TABLES.values() if not t.bus)
ANALYTICS_TABLES = tuple(t for t in TABLES.values() if t.analytics is not None)
