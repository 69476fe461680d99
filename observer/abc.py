"""What the observer reads from a node, in one place. Nothing read through it is trusted:
every answer is checked against the genesis file, the seals and the hashes before use.

``observer.rpc.RpcSource`` reads any node over standard JSON-RPC (our node, an observer node,
Besu); a test or a benchmark may read a chain from memory through the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

RpcBlock = dict[str, Any]
"""A block as ``eth_getBlockByNumber(n, false)`` returns it."""
RpcReceipt = dict[str, Any]
RpcTransaction = dict[str, Any]


class SourceError(Exception):
    """A node that could not be read: unreachable, an error answer, or an answer of the wrong
    shape. Not a verification failure: the chain may be fine, the node did not say."""


class ChainSource(ABC):
    """One node's view of the chain."""

    name: str
    """How reports name this node (its URL)."""

    @abstractmethod
    def chain_id(self) -> int: ...

    @abstractmethod
    def head(self) -> int:
        """The number of the newest block the node has."""

    @abstractmethod
    def blocks(self, numbers: Sequence[int]) -> list[RpcBlock | None]:
        """The blocks at ``numbers`` (transaction hashes only), None where the node has none."""

    @abstractmethod
    def receipts(self, numbers: Sequence[int]) -> list[list[RpcReceipt] | None]:
        """Every receipt of each block, in transaction order, None where the node has none."""

    @abstractmethod
    def transactions(self, hashes: Sequence[bytes]) -> list[RpcTransaction | None]: ...

    @abstractmethod
    def block_transactions(self, numbers: Sequence[int]) -> list[list[RpcTransaction] | None]:
        """Every transaction of each block (``eth_getBlockByNumber(n, true)``), in order."""

    @abstractmethod
    def logs(self, address: bytes, topic0: bytes, from_block: int, to_block: int
             ) -> list[dict[str, Any]]:
        """``eth_getLogs`` for one contract and one event: a hint where to look, never proof."""
