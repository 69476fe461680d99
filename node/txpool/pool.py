"""The transaction pool: per-sender nonce queues, replacement by price bump, limits, eviction.

A transaction is checked like Besu's pool checks it (signature, chain id, type, intrinsic gas,
block gas limit, minimum gas price, nonce against the head state, upfront cost against the
sender's balance, replacement price bump) and refused with Besu's wording
(``node.txpool.reasons``). On a free-gas network (``zeroBaseFee`` with a minimum gas price of 0,
as consortia run Besu with ``--min-gas-price=0``) a gasPrice-0 transaction from an account with
no balance is accepted: its upfront cost is zero.

Block building takes transactions through ``select``: the highest effective tip first, each
sender's transactions in nonce order, only gapless runs from the sender's current nonce.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from chain.execution.forks import Fork
from chain.execution.txs import Tx, TxCache, decode
from node.abc import PoolStats, TxPoolAPI, TxRejected
from node.txpool import reasons as R


class PoolChain(Protocol):
    """What the pool reads from the chain: rules and state of the block being built next."""

    chain_id: int

    def next_fork(self) -> Fork: ...

    def next_base_fee(self) -> int: ...

    def next_gas_limit(self) -> int: ...

    def head_account(self, address: bytes) -> tuple[int, int, bool]:
        """(nonce, balance, is a contract) of ``address`` at the head."""
        ...


@dataclass(frozen=True, slots=True)
class PoolConfig:
    max_size: int = 20_000
    max_per_sender: int = 200
    """Also the furthest a nonce may be ahead of the sender's (Besu's max-future-by-sender)."""
    price_bump_percent: int = 10
    min_gas_price: int = 0
    allow_unprotected: bool = False
    """Accept transactions without an EIP-155 chain id (Besu: --rpc-tx-allow-unprotected)."""


@dataclass(slots=True)
class _Entry:
    tx: Tx
    local: bool
    seq: int


class TxPool(TxPoolAPI):
    def __init__(self, chain: PoolChain, config: PoolConfig | None = None,
                 cache: TxCache | None = None) -> None:
        self.chain = chain
        self.config = config or PoolConfig()
        self.cache = cache or TxCache()
        self._by_hash: dict[bytes, _Entry] = {}
        self._by_sender: dict[bytes, dict[int, _Entry]] = {}
        self._seq = itertools.count()
        self._lock = threading.RLock()

    # ---- TxPoolAPI ----------------------------------------------------------------------

    def add(self, raw: bytes, *, local: bool = True) -> bytes:
        fork = self.chain.next_fork()
        tx = decode(raw, fork, self.chain.chain_id, allow_unprotected=self.config.allow_unprotected)
        self._admit(tx, local)
        self.cache.put(tx)
        return tx.hash

    def get(self, tx_hash: bytes) -> bytes | None:
        entry = self._by_hash.get(tx_hash)
        return None if entry is None else entry.tx.raw

    def pending_nonce(self, address: bytes) -> int:
        nonce = self.chain.head_account(address)[0]
        with self._lock:
            queue = self._by_sender.get(address, {})
            while nonce in queue:
                nonce += 1
        return nonce

    def stats(self) -> PoolStats:
        with self._lock:
            local = sum(1 for e in self._by_hash.values() if e.local)
            return PoolStats(local, len(self._by_hash) - local, self.config.max_size)

    def drop(self, tx_hash: bytes) -> None:
        """Forget a transaction that can no longer be included."""
        with self._lock:
            entry = self._by_hash.get(tx_hash)
            if entry is not None:
                self._remove(entry.tx)

    def tx(self, tx_hash: bytes) -> Tx | None:
        entry = self._by_hash.get(tx_hash)
        return None if entry is None else entry.tx

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    # ---- admission ----------------------------------------------------------------------

    def _admit(self, tx: Tx, local: bool) -> None:
        cfg = self.config
        if tx.hash in self._by_hash:
            raise TxRejected(R.KNOWN, f"0x{tx.hash.hex()} is already in the pool")
        gas_limit = self.chain.next_gas_limit()
        if tx.gas > gas_limit:
            raise TxRejected(R.BLOCK_GAS_LIMIT, f"gas limit {tx.gas} > block gas limit {gas_limit}")
        if tx.max_fee < cfg.min_gas_price:
            raise TxRejected(R.GAS_PRICE_TOO_LOW, f"gas price {tx.max_fee} < minimum {cfg.min_gas_price}")
        base_fee = self.chain.next_base_fee()
        if tx.max_fee < base_fee:
            raise TxRejected(R.BELOW_BASE_FEE, f"max fee per gas {tx.max_fee} < base fee {base_fee}")
        nonce, balance, contract = self.chain.head_account(tx.sender)
        who = f"0x{tx.sender.hex()}"
        if contract:
            raise TxRejected(R.SENDER_NOT_AUTHORIZED, f"{who} has code (EIP-3607)")
        if tx.nonce < nonce:
            raise TxRejected(R.NONCE_TOO_LOW, f"{who} is at nonce {nonce}, transaction has {tx.nonce}")
        if tx.nonce >= nonce + cfg.max_per_sender:
            raise TxRejected(R.TOO_DISTANT, f"{who} is at nonce {nonce}, transaction has {tx.nonce}; "
                                            f"at most {cfg.max_per_sender} ahead are kept")
        upfront = tx.gas * tx.max_fee + tx.value
        if upfront > balance:
            raise TxRejected(R.UPFRONT_COST, f"transaction costs up to {upfront} wei, {who} has "
                                             f"{balance}")
        with self._lock:
            queue = self._by_sender.get(tx.sender, {})
            old = queue.get(tx.nonce)
            if old is not None:
                if not self._bumps(old.tx, tx):
                    raise TxRejected(R.UNDERPRICED, f"replacing nonce {tx.nonce} of {who} needs fees "
                                                    f"{cfg.price_bump_percent}% above the pooled one")
                del self._by_hash[old.tx.hash]
            elif len(queue) >= cfg.max_per_sender:
                raise TxRejected(R.TOO_DISTANT, f"{who} already has {len(queue)} transactions "
                                                "pooled")
            elif len(self._by_hash) >= cfg.max_size:
                self._evict_for(tx, base_fee)
            entry = _Entry(tx, local, next(self._seq))
            queue = self._by_sender.setdefault(tx.sender, queue)
            queue[tx.nonce] = entry
            self._by_hash[tx.hash] = entry

    def _bumps(self, old: Tx, new: Tx) -> bool:
        pct = 100 + self.config.price_bump_percent
        if new.max_fee * 100 < old.max_fee * pct:
            return False
        return new.type < 2 or new.max_priority_fee * 100 >= old.max_priority_fee * pct

    def _evict_for(self, tx: Tx, base_fee: int) -> None:
        """Make room by dropping the last queued transaction of the lowest-paying sender, if it
        pays less than ``tx``; otherwise refuse ``tx``."""
        worst: _Entry | None = None
        for queue in self._by_sender.values():
            if not queue:
                continue
            last = queue[max(queue)]
            if worst is None or (last.tx.tip(base_fee), -last.seq) < (worst.tx.tip(base_fee), -worst.seq):
                worst = last
        if worst is None or worst.tx.tip(base_fee) >= tx.tip(base_fee):
            raise TxRejected(R.POOL_FULL, f"{len(self._by_hash)} transactions pooled and none pays "
                                          "less than this one; retry later or raise the fee")
        self._remove(worst.tx)

    def _remove(self, tx: Tx) -> None:
        self._by_hash.pop(tx.hash, None)
        queue = self._by_sender.get(tx.sender)
        if queue is not None:
            entry = queue.get(tx.nonce)
            if entry is not None and entry.tx.hash == tx.hash:
                del queue[tx.nonce]
            if not queue:
                del self._by_sender[tx.sender]

    # ---- block building and import ------------------------------------------------------

    def select(self, base_fee: int, nonce_of: dict[bytes, int] | None = None) -> Selection:
        """Pending transactions in block order; ``nonce_of`` overrides head nonces (senders not
        in it are looked up at the head)."""
        with self._lock:
            queues = {s: dict(q) for s, q in self._by_sender.items()}
        selection = Selection(queues, base_fee, nonce_of if nonce_of is not None else {},
                              self.chain.head_account)
        if nonce_of is None:
            with self._lock:  # below the sender's nonce at the head: can never be included
                for tx in selection.stale:
                    self._remove(tx)
        return selection

    def removed_in_block(self, txs: list[Tx]) -> None:
        """A block with ``txs`` became the head: drop them and everything their senders can no
        longer include."""
        with self._lock:
            senders = set()
            for tx in txs:
                entry = self._by_hash.get(tx.hash)
                if entry is not None:
                    self._remove(entry.tx)
                senders.add(tx.sender)
            for sender in senders:
                queue = self._by_sender.get(sender)
                if not queue:
                    continue
                nonce = self.chain.head_account(sender)[0]
                for n in [n for n in queue if n < nonce]:
                    self._remove(queue[n].tx)

    def revalidate(self) -> None:
        """After the head moved backwards (a dev-chain revert): drop what no longer fits."""
        with self._lock:
            for sender, queue in list(self._by_sender.items()):
                nonce = self.chain.head_account(sender)[0]
                for n in [n for n in queue if n < nonce]:
                    self._remove(queue[n].tx)

    def pending(self) -> list[Tx]:
        with self._lock:
            return [e.tx for e in sorted(self._by_hash.values(), key=lambda e: e.seq)]


class Selection:
    """Iterates the pool in block order. After a transaction turns out not to fit, call
    ``skip_sender`` so none of that sender's later nonces are offered."""

    def __init__(self, queues: dict[bytes, dict[int, _Entry]], base_fee: int,
                 nonce_of: dict[bytes, int], head_account: object) -> None:
        self._queues = queues
        self._base_fee = base_fee
        self._nonce_of = nonce_of
        self._head_account = head_account
        self._heap: list[tuple[int, int, bytes, int]] = []
        self._skipped: set[bytes] = set()
        self.stale: list[Tx] = []
        for sender, queue in queues.items():
            nonce = nonce_of.get(sender)
            if nonce is None:
                nonce = head_account(sender)[0]  # type: ignore[operator]
            self.stale.extend(e.tx for n, e in queue.items() if n < nonce)
            self._push(sender, nonce)

    def _push(self, sender: bytes, nonce: int) -> None:
        entry = self._queues[sender].get(nonce)
        if entry is not None:
            heapq.heappush(self._heap, (-entry.tx.tip(self._base_fee), entry.seq, sender, nonce))

    def __iter__(self) -> Iterator[Tx]:
        while self._heap:
            _tip, _seq, sender, nonce = heapq.heappop(self._heap)
            if sender in self._skipped:
                continue
            yield self._queues[sender][nonce].tx
            if sender not in self._skipped:
                self._push(sender, nonce + 1)

    def skip_sender(self, sender: bytes) -> None:
        self._skipped.add(sender)
