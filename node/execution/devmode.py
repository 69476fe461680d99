"""Development networks: a single validator that seals its own blocks, anvil/Hardhat controls.

Off unless the network definition enables it. The validator signs each block's commit seal
with its key (``chain.qbft.seals``), so every block still verifies with ``chain.qbft`` alone:
quorum of one validator is one seal. ``DevChain`` implements ``DevChainAPI`` (snapshots,
mining, time travel) and offers an automining pool: every accepted transaction is mined into
a block of its own before ``add`` returns, as anvil and Hardhat do by default.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from chain.abc import Signer
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.hashing import commit_seal_hash
from node.abc import DevChainAPI, PoolStats, TxPoolAPI
from node.execution.chain import Chain
from node.txpool.pool import TxPool


def seal(block: Block, signer: Signer) -> Block:
    """``block`` with ``signer``'s commit seal added (a quorum for a single validator)."""
    header = block.header
    extra = xd.decode(header.extra_data)
    digest = commit_seal_hash(header, extra=extra)
    sealed = xd.encode(extra.with_seals((*extra.seals, signer.sign_digest(digest))))
    return Block(header.with_extra_data(sealed), block.transactions, block.withdrawals)


class DevChain(DevChainAPI):
    def __init__(self, chain: Chain, signer: Signer, *, automine: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        validators = chain.validators_for(chain.head.number + 1)
        if validators != (signer.address,):
            raise ValueError(
                "dev mode needs a network whose only validator is this node's key "
                f"(0x{signer.address.hex()}); the validators are "
                f"{['0x' + v.hex() for v in validators]}")
        self.chain = chain
        self.signer = signer
        self.automine = automine
        self.clock = clock
        self._offset = 0
        self._next_timestamp: int | None = None
        self._snapshots: dict[int, tuple[int, int]] = {}
        self._next_id = 1
        self._lock = threading.RLock()
        self.pool: TxPoolAPI = _AutominePool(self) if automine else chain.pool

    def _timestamp(self) -> int:
        head = self.chain.head
        period = self.chain.genesis.qbft.block_period_seconds
        if self._next_timestamp is not None:
            ts, self._next_timestamp = self._next_timestamp, None
            return ts
        return max(int(self.clock()) + self._offset, head.timestamp + period)

    def mine_one(self, timestamp: int | None = None) -> Block:
        with self._lock:
            chain = self.chain
            ts = self._timestamp() if timestamp is None else timestamp
            block = chain.create_block(chain.head, 0, ts, self.signer.address, None)
            sealed = seal(block, self.signer)
            chain.import_block(sealed)
            return sealed

    # ---- DevChainAPI ----------------------------------------------------------------------

    def snapshot(self) -> int:
        with self._lock:
            sid = self._next_id
            self._next_id += 1
            self._snapshots[sid] = (self.chain.head.number, self._offset)
            return sid

    def revert(self, snapshot_id: int) -> bool:
        with self._lock:
            if snapshot_id not in self._snapshots:
                return False
            number, offset = self._snapshots[snapshot_id]
            for sid in [s for s in self._snapshots if s >= snapshot_id]:
                del self._snapshots[sid]
            self.chain.rewind(number)
            self._offset = offset
            self._next_timestamp = None
            return True

    def mine(self, blocks: int = 1, timestamp: int | None = None, interval: int = 1) -> None:
        if blocks < 1:
            raise ValueError("mine at least one block")
        period = self.chain.genesis.qbft.block_period_seconds
        if interval < period:
            raise ValueError(f"blocks must be at least blockperiodseconds ({period}s) apart")
        with self._lock:
            ts = timestamp
            for _ in range(blocks):
                self._check_timestamp(ts)
                block = self.mine_one(ts)
                ts = block.header.timestamp + interval

    def _check_timestamp(self, ts: int | None) -> None:
        if ts is None:
            return
        head = self.chain.head
        period = self.chain.genesis.qbft.block_period_seconds
        if ts < head.timestamp + period:
            raise ValueError(f"timestamp {ts} is not at least {period}s after the head's "
                             f"{head.timestamp} (the QBFT block period rule)")

    def increase_time(self, seconds: int) -> int:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += seconds
            return self._offset

    def set_next_block_timestamp(self, timestamp: int) -> None:
        with self._lock:
            self._check_timestamp(timestamp)
            self._next_timestamp = timestamp


class _AutominePool(TxPoolAPI):
    """The chain's pool, mining a block right after each accepted transaction."""

    def __init__(self, dev: DevChain) -> None:
        self.dev = dev
        self.inner: TxPool = dev.chain.pool

    def add(self, raw: bytes, *, local: bool = True) -> bytes:
        with self.dev._lock:
            tx_hash = self.inner.add(raw, local=local)
            tx = self.inner.tx(tx_hash)
            # a transaction behind a nonce gap waits in the pool, as in Hardhat
            if tx is not None and tx.nonce == self.dev.chain.head_account(tx.sender)[0]:
                self.dev.mine_one()
            return tx_hash

    def get(self, tx_hash: bytes) -> bytes | None:
        return self.inner.get(tx_hash)

    def pending_nonce(self, address: bytes) -> int:
        return self.inner.pending_nonce(address)

    def stats(self) -> PoolStats:
        return self.inner.stats()
