"""Every pluggable role of the indexer in one place (after py-evm's ``eth/abc.py``).

- ``ChainSource``: a chain as an EVM JSON-RPC endpoint shows it (our node, Besu, anvil); the
  implementation is ``indexer.rpc.JsonRpcSource``.
- ``EventBus``: where the TA services' domain events come from; the default is the PostgreSQL
  outbox with LISTEN/NOTIFY (``indexer.outbox.PgOutbox``).
- ``AnalyticsStore``: the ClickHouse side; ``indexer.analytics.ClickHouseStore`` serves both the
  embedded chdb engine and a server, through the same clickhouse-connect code path.

The wire types the parts hand each other (blocks, logs, domain events) live here too.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class IndexerError(RuntimeError):
    """Something that stops the indexer; the message says what to do next."""


class ForkError(IndexerError):
    """The node serves a block that does not extend what is indexed; nothing was written."""

    def __init__(self, message: str, *, height: int) -> None:
        super().__init__(message)
        self.height = height


class SourceError(IndexerError):
    """The node answered wrongly or not at all (after retries)."""


class RangeTooLarge(SourceError):
    """The node refuses a log query over this many blocks or results; ask for fewer."""


@dataclass(frozen=True, slots=True)
class BlockRef:
    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp, dt.UTC)


@dataclass(frozen=True, slots=True)
class RawLog:
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    tx_index: int
    log_index: int


@dataclass(frozen=True, slots=True)
class LogFilter:
    """One eth_getLogs filter: any of ``addresses`` (None: any contract), topic 0 any of
    ``topics``."""

    addresses: tuple[bytes, ...] | None
    topics: tuple[bytes, ...]


class ChainSource(ABC):
    """A chain as its JSON-RPC endpoint shows it. Every method retries transient failures and
    raises SourceError (or RangeTooLarge) when it gives up."""

    url: str

    @abstractmethod
    async def chain_id(self) -> int: ...

    @abstractmethod
    async def head(self) -> int:
        """The latest block number."""

    @abstractmethod
    async def blocks(self, first: int, last: int) -> list[BlockRef]:
        """Every block from ``first`` to ``last``, in order; SourceError if one is missing."""

    @abstractmethod
    async def logs(self, first: int, last: int, filters: Sequence[LogFilter]) -> list[RawLog]:
        """The logs of blocks ``first``..``last`` matching any filter, in chain order."""

    @abstractmethod
    async def wait_for_head(self, above: int, timeout: float) -> int:
        """Return the head once it is above ``above``, or the current head after ``timeout``
        seconds (WebSocket newHeads when the node has them, polling otherwise)."""

    @abstractmethod
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BusCursor:
    """Position in the event bus: everything up to and including (xid, id) is consumed."""

    xid: int = 0
    id: int = 0


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One event a TA service published (the outbox row contract, docs/indexer.md)."""

    xid: int
    id: int
    topic: str
    event_type: str
    aggregate_id: str
    payload: Mapping[str, Any]
    occurred_at: dt.datetime
    subject: str | None = None
    """The pseudonymous investor whose personal data ``personal`` holds."""
    personal: Mapping[str, Any] | None = None
    """Personal data (names, addresses...): kept in PostgreSQL only, and erasable."""

    @property
    def cursor(self) -> BusCursor:
        return BusCursor(self.xid, self.id)


class EventBus(ABC):
    """Domain events in commit order, each exactly once when consumed from a cursor."""

    @abstractmethod
    async def fetch(self, after: BusCursor, limit: int) -> list[DomainEvent]:
        """Events after ``after`` whose transactions are all committed, oldest first."""

    @abstractmethod
    async def wait(self, timeout: float) -> None:
        """Return when new events may be there (a notification), or after ``timeout``."""

    @abstractmethod
    async def close(self) -> None: ...


class AnalyticsStore(ABC):
    """The analytics copy of the projection (ClickHouse). It is written after PostgreSQL has
    committed the same rows and catches up from PostgreSQL after a crash, so it never holds a
    row PostgreSQL does not.

    A position is ``(block, 0)`` for a chain source and ``(xid, id)`` for the event bus."""

    @abstractmethod
    def migrate(self) -> None: ...

    @abstractmethod
    def position(self, source: str) -> tuple[int, int] | None:
        """Where the rows of ``source`` are complete up to; None if nothing was written."""

    @abstractmethod
    def insert(self, source: str, rows: Mapping[str, Sequence[tuple[Any, ...]]],
               position: tuple[int, int] | None) -> None:
        """Insert projection rows (PostgreSQL column order, per table), then move the position
        of ``source`` (unless ``position`` is None)."""

    @abstractmethod
    def delete_after(self, source: str, chain_id: int | None, position: tuple[int, int]) -> None:
        """Remove the rows of ``source`` past ``position`` (a partial insert, or a reorg)."""

    @abstractmethod
    def set_position(self, source: str, position: tuple[int, int]) -> None: ...

    @abstractmethod
    def query(self, sql: str, parameters: Mapping[str, Any] | None = None,
              ) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def drop(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...
