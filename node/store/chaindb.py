"""The persistent chain in one LMDB environment.

Everything a block brings (its sealed header, body, receipts, logs and their indexes, the
transaction index, its new state-trie nodes and code, the validator-history snapshot) is written
in ONE write transaction whose last write moves the head pointer. LMDB commits a transaction
atomically and copy-on-write, so a process killed at any instant (SIGKILL included) restarts
with either the whole block or none of it, and the head always names a complete block.

Tables (LMDB named databases):

- ``headers``   block hash -> header RLP, with the commit seals this node holds
- ``canonical`` number (8 bytes) -> block hash
- ``bodies``    block hash -> RLP [transactions (network encoding), withdrawals?]
- ``receipts``  block hash -> RLP list of per-transaction receipt records
- ``logs``      number (8) || log index (4) -> RLP [address, topics, data, tx index, tx hash]
- ``logaddr``   address || number -> empty: blocks with logs of an address
- ``logtopic``  topic || number -> empty: blocks with logs carrying a topic (any position)
- ``txs``       transaction hash -> number (8) || index (4)
- ``state``     hash -> trie node or contract code (content-addressed, never overwritten)
- ``meta``      ``head``, ``genesis``, ``validators`` (snapshot), ``schema``
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb

from chain import fastrlp
from chain.qbft.header import BlockHeader

SCHEMA = b"1"
_U64 = struct.Struct(">Q")
_LOGKEY = struct.Struct(">QI")
_TXLOC = struct.Struct(">QI")


class StoreError(RuntimeError):
    """The data directory cannot be used as it is; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    tx_hash: bytes
    tx_type: int
    status: int
    cumulative_gas: int
    gas_used: int
    effective_gas_price: int
    sender: bytes
    to: bytes | None
    contract_address: bytes | None
    output: bytes | None
    first_log: int
    log_count: int

    def encode(self) -> list[object]:
        return [self.tx_hash, self.tx_type, self.status, self.cumulative_gas, self.gas_used,
                self.effective_gas_price, self.sender, self.to or b"",
                self.contract_address or b"", [] if self.output is None else [self.output],
                self.first_log, self.log_count]

    @classmethod
    def decode(cls, items: list[object]) -> StoredReceipt:
        (tx_hash, kind, status, cum, used, price, sender, to, created, output,
         first, count) = items
        assert isinstance(output, list)

        def n(b: object) -> int:
            assert isinstance(b, bytes)
            return int.from_bytes(b, "big")

        def b(v: object) -> bytes:
            assert isinstance(v, bytes)
            return v

        return cls(b(tx_hash), n(kind), n(status), n(cum), n(used), n(price), b(sender),
                   b(to) or None, b(created) or None, b(output[0]) if output else None,
                   n(first), n(count))


@dataclass(frozen=True, slots=True)
class StoredLog:
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    tx_index: int
    tx_hash: bytes
    log_index: int
    block_number: int


@dataclass(slots=True)
class BlockRecord:
    """Everything one block adds to the store."""

    header: BlockHeader
    hash: bytes
    transactions: Sequence[bytes]
    withdrawals: Sequence[bytes] | None
    receipts: Sequence[StoredReceipt]
    logs: Sequence[tuple[bytes, tuple[bytes, ...], bytes, int, bytes]]
    """(address, topics, data, tx index, tx hash), in log-index order."""
    nodes: dict[bytes, bytes]
    validators: bytes


class ChainStore:
    def __init__(self, path: Path | str, *, sync: bool = True, map_size: int = 2**38) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self.env = lmdb.open(str(self.path), map_size=map_size, max_dbs=16, sync=sync,
                                 metasync=sync, readahead=False)
        except lmdb.Error as exc:
            if "already open" in str(exc):
                raise StoreError(f"the chain store in {self.path} is already open in this process; "
                                 "close the other Chain first") from exc
            raise StoreError(f"cannot open the chain store in {self.path}: {exc}; check that the "
                             "directory is writable and not on a network filesystem") from exc
        db = self.env.open_db
        self._headers = db(b"headers")
        self._canonical = db(b"canonical")
        self._bodies = db(b"bodies")
        self._receipts = db(b"receipts")
        self._logs = db(b"logs")
        self._logaddr = db(b"logaddr")
        self._logtopic = db(b"logtopic")
        self._txs = db(b"txs")
        self._state = db(b"state")
        self._meta = db(b"meta")
        schema = self.meta(b"schema")
        if schema is not None and schema != SCHEMA:
            raise StoreError(f"the chain store in {self.path} has schema {schema!r}, this node "
                             f"writes {SCHEMA!r}; resync into an empty directory")

    def close(self) -> None:
        self.env.close()

    # ---- reads ----------------------------------------------------------------------------

    def meta(self, key: bytes) -> bytes | None:
        with self.env.begin(db=self._meta) as txn:
            value = txn.get(key)
        return None if value is None else bytes(value)

    def head(self) -> bytes | None:
        return self.meta(b"head")

    def header(self, block_hash: bytes) -> BlockHeader | None:
        with self.env.begin(db=self._headers) as txn:
            raw = txn.get(block_hash)
        return None if raw is None else BlockHeader.decode(bytes(raw))

    def hash_at(self, number: int) -> bytes | None:
        with self.env.begin(db=self._canonical) as txn:
            value = txn.get(_U64.pack(number))
        return None if value is None else bytes(value)

    def body(self, block_hash: bytes) -> tuple[tuple[bytes, ...], tuple[bytes, ...] | None] | None:
        with self.env.begin(db=self._bodies) as txn:
            raw = txn.get(block_hash)
        if raw is None:
            return None
        items = _decode(bytes(raw))
        txs = tuple(items[0])
        withdrawals = tuple(items[1][0]) if items[1] else None
        return txs, withdrawals

    def receipts(self, block_hash: bytes) -> list[StoredReceipt] | None:
        with self.env.begin(db=self._receipts) as txn:
            raw = txn.get(block_hash)
        if raw is None:
            return None
        return [StoredReceipt.decode(r) for r in _decode(bytes(raw))]

    def block_logs(self, number: int) -> list[StoredLog]:
        with self.env.begin(db=self._logs) as txn:
            return list(self._logs_of(txn, number))

    def _logs_of(self, txn: lmdb.Transaction, number: int) -> Iterator[StoredLog]:
        cursor = txn.cursor(db=self._logs)
        prefix = _U64.pack(number)
        if not cursor.set_range(prefix):
            return
        for key, value in cursor:
            if key[:8] != prefix:
                break
            yield _decode_log(number, _LOGKEY.unpack(key)[1], bytes(value))

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        with self.env.begin(db=self._txs) as txn:
            raw = txn.get(tx_hash)
        if raw is None:
            return None
        number, index = _TXLOC.unpack(raw)
        return number, index

    def node(self, key: bytes) -> bytes | None:
        with self.env.begin(db=self._state) as txn:
            raw = txn.get(key)
        return None if raw is None else bytes(raw)

    def logs(self, first: int, last: int, addresses: Sequence[bytes],
             topics: Sequence[Sequence[bytes] | None]) -> Iterator[StoredLog]:
        """Logs of blocks ``first..last`` whose address is one of ``addresses`` (any if empty)
        and whose topic at each position is one of the listed ones (None: any)."""
        wanted = [set(t) if t else None for t in topics]
        addr_set = set(addresses)
        with self.env.begin() as txn:
            for number in self._candidate_blocks(txn, first, last, addresses, wanted):
                for log in self._logs_of(txn, number):
                    if addr_set and log.address not in addr_set:
                        continue
                    if len(wanted) > len(log.topics) and any(
                            w is not None for w in wanted[len(log.topics):]):
                        continue
                    if all(w is None or log.topics[i] in w for i, w in enumerate(wanted)
                           if i < len(log.topics)):
                        yield log

    def _candidate_blocks(self, txn: lmdb.Transaction, first: int, last: int,
                          addresses: Sequence[bytes], wanted: list[set[bytes] | None]) -> list[int]:
        """Blocks that may hold matching logs, from the address and topic indexes."""
        sets: list[set[int]] = []
        if addresses:
            sets.append(self._index_blocks(txn, self._logaddr, addresses, first, last))
        for w in wanted:
            if w:
                sets.append(self._index_blocks(txn, self._logtopic, sorted(w), first, last))
        if sets:
            blocks = set.intersection(*sets)
            return sorted(blocks)
        out: list[int] = []
        cursor = txn.cursor(db=self._logs)
        key = _U64.pack(first)
        while cursor.set_range(key):
            number = _U64.unpack(cursor.key()[:8])[0]
            if number > last:
                break
            out.append(number)
            key = _U64.pack(number + 1)
        return out

    def _index_blocks(self, txn: lmdb.Transaction, db: Any, keys: Sequence[bytes],
                      first: int, last: int) -> set[int]:
        out: set[int] = set()
        cursor = txn.cursor(db=db)
        for k in keys:
            if not cursor.set_range(k + _U64.pack(first)):
                continue
            for key in cursor.iternext(values=False):
                if key[:len(k)] != k:
                    break
                number = _U64.unpack(key[len(k):])[0]
                if number > last:
                    break
                out.add(number)
        return out

    # ---- writes ---------------------------------------------------------------------------

    def write_block(self, block: BlockRecord) -> None:
        """Store a block and make it the head, atomically."""
        header = block.header
        number = header.number
        with self.env.begin(write=True) as txn:
            if txn.get(b"schema", db=self._meta) is None:
                txn.put(b"schema", SCHEMA, db=self._meta)
            if number == 0:
                txn.put(b"genesis", block.hash, db=self._meta)
            txn.put(block.hash, header.encode(), db=self._headers)
            txn.put(_U64.pack(number), block.hash, db=self._canonical)
            body: list[object] = [list(block.transactions),
                                  [] if block.withdrawals is None else [list(block.withdrawals)]]
            txn.put(block.hash, fastrlp.encode(body), db=self._bodies)
            txn.put(block.hash, fastrlp.encode([r.encode() for r in block.receipts]),
                    db=self._receipts)
            for i, r in enumerate(block.receipts):
                txn.put(r.tx_hash, _TXLOC.pack(number, i), db=self._txs)
            if block.logs:
                txn.cursor(db=self._logs).putmulti(
                    [(_LOGKEY.pack(number, i), fastrlp.encode([a, list(t), d, ti, th]))
                     for i, (a, t, d, ti, th) in enumerate(block.logs)])
                suffix = _U64.pack(number)
                addrs = {a for a, _t, _d, _i, _h in block.logs}
                topics = {t for _a, ts, _d, _i, _h in block.logs for t in ts}
                txn.cursor(db=self._logaddr).putmulti([(a + suffix, b"") for a in addrs])
                txn.cursor(db=self._logtopic).putmulti([(t + suffix, b"") for t in topics])
            if block.nodes:
                txn.cursor(db=self._state).putmulti(list(block.nodes.items()), overwrite=False)
            txn.put(b"validators", block.validators, db=self._meta)
            txn.put(b"head", block.hash, db=self._meta)

    def rewind(self, number: int, validators: bytes) -> None:
        """Drop every block above ``number`` and make block ``number`` the head (dev networks
        only: a finalized BFT chain is never rewound). State nodes stay; they are harmless."""
        with self.env.begin(write=True) as txn:
            head_hash = txn.get(b"head", db=self._meta)
            raw = None if head_hash is None else txn.get(bytes(head_hash), db=self._headers)
            if raw is None:
                raise StoreError("the store has no head block; there is nothing to rewind")
            head = BlockHeader.decode(bytes(raw))
            target = txn.get(_U64.pack(number), db=self._canonical)
            if target is None:
                raise StoreError(f"block {number} is not in the store")
            for n in range(head.number, number, -1):
                key = _U64.pack(n)
                h = _need(txn.get(key, db=self._canonical), f"canonical hash of block {n}")
                receipts = _decode(_need(txn.get(h, db=self._receipts), f"receipts of block {n}"))
                for r in receipts:
                    txn.delete(StoredReceipt.decode(r).tx_hash, db=self._txs)
                for log in list(self._logs_of(txn, n)):
                    suffix = _U64.pack(n)
                    txn.delete(log.address + suffix, db=self._logaddr)
                    for t in log.topics:
                        txn.delete(t + suffix, db=self._logtopic)
                    txn.delete(_LOGKEY.pack(n, log.log_index), db=self._logs)
                for db in (self._headers, self._bodies, self._receipts):
                    txn.delete(h, db=db)
                txn.delete(key, db=self._canonical)
            txn.put(b"validators", validators, db=self._meta)
            txn.put(b"head", bytes(target), db=self._meta)


def _decode(raw: bytes) -> Any:
    """Stored values are this module's own RLP, so their shape is known."""
    return fastrlp.decode(raw)


def _need(value: bytes | None, what: str) -> bytes:
    if value is None:
        raise StoreError(f"the store lacks the {what}; it is damaged, resync into an empty directory")
    return bytes(value)


def _decode_log(number: int, index: int, raw: bytes) -> StoredLog:
    address, topics, data, tx_index, tx_hash = _decode(bytes(raw))
    return StoredLog(address, tuple(topics), data, int.from_bytes(tx_index, "big"), tx_hash, index,
                     number)
