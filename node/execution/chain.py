"""The node's chain: py-evm execution over the LMDB store, as consensus, RPC and the pool see it.

``Chain`` implements ``ChainAPI`` (reads), ``BlockSource`` (what consensus asks: build, validate
and import blocks), ``ValidatorView`` (validator sets and votes from the headers) and the pool's
view of the head. Each block is executed once per node: the execution of a block this node
built or validated is kept by block hash, so importing it only stores it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak
from eth_typing import Address

from chain.execution import mpt
from chain.execution.block import (
    FieldError,
    base_fee,
    block_env,
    check_fields,
    genesis_state,
    mismatches,
)
from chain.execution.calls import Simulator
from chain.execution.executor import BlockEnv, BlockRunner, Execution
from chain.execution.forks import Fork, ForkSchedule, TxInvalid
from chain.execution.hashing import use_fast_keccak
from chain.execution.receipts import bloom_bytes, logs_bloom
from chain.execution.statedb import EMPTY_CODE_HASH, StateDB, StateSource, slot_key
from chain.execution.txs import TxCache
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.extra_data import ExtraData, Vote
from chain.qbft.genesis import EMPTY_REQUESTS_HASH, Genesis
from chain.qbft.hashing import block_hash
from chain.qbft.header import (
    BFT_MIX_HASH,
    EMPTY_OMMERS_HASH,
    EMPTY_TRIE_ROOT,
    ZERO_HASH,
    BlockHeader,
    HeaderError,
)
from chain.qbft.verify import verify_header
from chain.qbft.votes import ValidatorHistory, VoteTally
from node import abc
from node.abc import (
    AccountProof,
    BlockId,
    BlockInvalid,
    BlockSource,
    CallRequest,
    CallResult,
    ChainAPI,
    Log,
    LogFilter,
    Receipt,
    TxLocation,
    ValidatorView,
)
from node.store.chaindb import BlockRecord, ChainStore, StoredLog, StoredReceipt, StoreError
from node.txpool.pool import PoolConfig, TxPool

log = logging.getLogger("smartta.node.execution")

VANITY = bytes(32)


class UnknownBlock(LookupError):
    """A block number or hash this node does not have."""


class Chain(ChainAPI, BlockSource, ValidatorView):
    def __init__(self, genesis: Genesis, store: ChainStore, *, pool: PoolConfig | None = None,
                 vanity: bytes = VANITY, clock: Callable[[], float] | None = time.time,
                 selection_seconds: float | None = None) -> None:
        """``clock`` (None: no check) bounds how far in the future an imported block may be;
        ``selection_seconds`` bounds how long ``create_block`` executes pool transactions
        (default 75% of the block period, as Besu's PoA block-creation time limit)."""
        use_fast_keccak()
        self.genesis = genesis
        self.store = store
        self.schedule = ForkSchedule(genesis)
        self.chain_id = genesis.chain_id
        self.source = StateSource(store.node)
        self.cache = TxCache()
        self.vanity = vanity[-32:].rjust(32, b"\x00")
        self.clock = clock
        period = genesis.qbft.block_period_seconds
        self.selection_seconds = selection_seconds if selection_seconds is not None else 0.75 * period
        self._lock = threading.RLock()
        self._executed: OrderedDict[bytes, Execution] = OrderedDict()
        self._callbacks: list[Callable[[Block, list[Receipt]], None]] = []
        self._genesis_hash = genesis.hash
        stored = store.meta(b"genesis")
        if stored is None:
            self._write_genesis()
        elif stored != self._genesis_hash:
            raise StoreError(
                f"the data directory {store.path} holds the chain of genesis 0x{stored.hex()}, not "
                f"0x{self._genesis_hash.hex()} from this genesis file; use another directory or the "
                "genesis it was created with")
        self._load_head()
        self.pool = TxPool(self, pool, self.cache)

    # ---- start-up ---------------------------------------------------------------------------

    def _write_genesis(self) -> None:
        g = self.genesis
        db = genesis_state(g, self.source)
        root = bytes(db.state_root)
        header = g.header()
        if root != header.state_root:
            raise StoreError(f"genesis alloc gives state root 0x{root.hex()}, the genesis header has "
                             f"0x{header.state_root.hex()}; the alloc cannot be represented")
        history = ValidatorHistory(g.qbft.epoch, g.validator_overrides)
        history.apply(0, header.coinbase, g.extra)
        self.store.write_block(BlockRecord(header, self._genesis_hash, (), None if
                                           header.withdrawals_root is None else (), [], [],
                                           db.nodes, _snapshot(history)))

    def _load_head(self) -> None:
        head_hash = self.store.head()
        assert head_hash is not None
        header = self.store.header(head_hash)
        if header is None:
            raise StoreError(f"the head block 0x{head_hash.hex()} is missing from {self.store.path}")
        self._head = header
        self._head_hash = head_hash
        raw = self.store.meta(b"validators")
        assert raw is not None
        q = self.genesis.qbft
        self.history = ValidatorHistory.from_json(q.epoch, self.genesis.validator_overrides,
                                                  json.loads(raw))
        if self.history.head != header.number:
            raise StoreError(f"validator snapshot is at block {self.history.head}, head is "
                             f"{header.number}: the store is inconsistent")
        first = max(0, header.number - 255)
        # (head number, hashes of the last 256 blocks up to it): replaced whole, never mutated,
        # so a call in another thread reads a consistent view
        self._recent = (header.number, tuple(self._hash_at(n) for n in range(first, header.number + 1)))
        self._head_state = StateDB(self.source, header.state_root)

    @classmethod
    def open(cls, genesis: Genesis, data_dir: Path | str, **kwargs: Any) -> Chain:
        return cls(genesis, ChainStore(Path(data_dir) / "chain"), **kwargs)

    def close(self) -> None:
        self.store.close()

    # ---- ChainAPI: reads --------------------------------------------------------------------

    @property
    def head(self) -> BlockHeader:
        return self._head

    @property
    def head_hash(self) -> bytes:
        return self._head_hash

    def _hash_at(self, number: int) -> bytes:
        h = self.store.hash_at(number)
        if h is None:
            raise StoreError(f"block {number} is missing from the canonical index")
        return h

    def hash_of(self, block: BlockId) -> bytes | None:
        if isinstance(block, int):
            if block < 0 or block > self._head.number:
                return None
            return self.store.hash_at(block)
        return block if self.store.header(block) is not None else None

    def header(self, block: BlockId) -> BlockHeader | None:
        h = self.hash_of(block) if isinstance(block, int) else block
        return None if h is None else self.store.header(h)

    def _resolve(self, block: BlockId) -> tuple[bytes, BlockHeader]:
        h = self.hash_of(block) if isinstance(block, int) else block
        header = None if h is None else self.store.header(h)
        if h is None or header is None:
            raise UnknownBlock(f"block {block if isinstance(block, int) else '0x' + block.hex()} "
                               "is not known to this node")
        return h, header

    def block(self, block: BlockId) -> Block | None:
        h = self.hash_of(block) if isinstance(block, int) else block
        if h is None:
            return None
        header = self.store.header(h)
        body = self.store.body(h)
        if header is None or body is None:
            return None
        return Block(header, body[0], body[1])

    def receipts(self, block: BlockId) -> list[Receipt] | None:
        h = self.hash_of(block) if isinstance(block, int) else block
        if h is None:
            return None
        header = self.store.header(h)
        stored = self.store.receipts(h)
        if header is None or stored is None:
            return None
        logs = self.store.block_logs(header.number)
        return [_receipt(r, i, h, header.number, logs) for i, r in enumerate(stored)]

    def transaction(self, tx_hash: bytes) -> TxLocation | None:
        loc = self.store.tx_location(tx_hash)
        if loc is None:
            return None
        number, index = loc
        h = self.store.hash_at(number)
        if h is None:
            return None
        body = self.store.body(h)
        stored = self.store.receipts(h)
        if body is None or stored is None:
            return None
        return TxLocation(tx_hash, body[0][index], stored[index].sender, h, number, index)

    def logs(self, flt: LogFilter) -> list[Log]:
        if flt.block_hash is not None:
            header = self.store.header(flt.block_hash)
            if header is None:
                raise UnknownBlock(f"block 0x{flt.block_hash.hex()} is not known to this node")
            first = last = header.number
        else:
            first, last = flt.from_block, min(flt.to_block, self._head.number)
        hashes: dict[int, bytes] = {}
        out = []
        for s in self.store.logs(first, last, flt.addresses, list(flt.topics)):
            h = hashes.get(s.block_number)
            if h is None:
                h = hashes[s.block_number] = self._hash_at(s.block_number)
            out.append(_log(s, h))
        return out

    def _state(self, block: BlockId) -> StateDB:
        _h, header = self._resolve(block)
        if header.number == self._head.number and header.state_root == self._head_state.state_root:
            return self._head_state
        return StateDB(self.source, header.state_root)

    def account(self, address: bytes, block: BlockId) -> abc.Account:
        a = self._state(block).account(address)
        if a is None:
            return abc.Account(0, 0, EMPTY_CODE_HASH, mpt.BLANK_ROOT)
        return abc.Account(a.nonce, a.balance, a.code_hash, a.storage_root)

    def code(self, address: bytes, block: BlockId) -> bytes:
        return self._state(block).get_code(Address(address))

    def storage_at(self, address: bytes, slot: int, block: BlockId) -> int:
        return self._state(block).get_storage(Address(address), slot)

    def proof(self, address: bytes, slots: Sequence[int], block: BlockId) -> AccountProof:
        _h, header = self._resolve(block)
        load = self.source.load
        root = self.source.trie(header.state_root)
        account_proof = mpt.prove(root, keccak(address), load)
        acct = self.account(address, header.number)
        storage_root = self.source.trie(acct.storage_root)
        state = self._state(header.number)
        storage = tuple(
            (slot, state.get_storage(Address(address), slot),
             tuple(mpt.prove(storage_root, slot_key(slot), load)))
            for slot in slots)
        return AccountProof(address, acct, tuple(account_proof), storage)

    def _simulator(self, block: BlockId) -> Simulator:
        _h, header = self._resolve(block)
        fork = self.schedule.at(header.timestamp)
        q = self.genesis.qbft
        env = BlockEnv(fork, header.number, header.timestamp, header.coinbase, header.gas_limit,
                       header.base_fee or 0, header.excess_blob_gas, self.chain_id,
                       q.mining_beneficiary or header.coinbase)
        return Simulator(env, self.source, header.state_root,
                         lambda: self._ancestors(header.number - 1))

    def call(self, request: CallRequest, block: BlockId) -> CallResult:
        return self._simulator(block).call(request)

    def estimate_gas(self, request: CallRequest, block: BlockId) -> int:
        return self._simulator(block).estimate(request)

    def validators_for(self, number: int) -> tuple[bytes, ...]:
        return self.history.validators_for(number)

    def on_new_head(self, callback: Callable[[Block, list[Receipt]], None]) -> None:
        self._callbacks.append(callback)

    # ---- ValidatorView ---------------------------------------------------------------------

    def validators_after(self, header: BlockHeader) -> tuple[bytes, ...]:
        return self.history.validators_after(header.number)

    def votes_after(self, header: BlockHeader) -> VoteTally | None:
        history = self.history
        if header.number == history.head and history.tally is not None:
            return history.tally.copy()
        if header.number > history.head:
            raise ValueError(f"votes after block {header.number} are not known: the head is "
                             f"block {history.head}")
        replay = ValidatorHistory(self.genesis.qbft.epoch, self.genesis.validator_overrides)
        for n in range(0, header.number + 1):
            h = self.header(n)
            assert h is not None
            replay.apply(n, h.coinbase, xd.decode(h.extra_data))
        return None if replay.tally is None else replay.tally.copy()

    # ---- the pool's view of the next block ---------------------------------------------------

    def next_fork(self) -> Fork:
        return self.schedule.at(self._next_timestamp())

    def _next_timestamp(self) -> int:
        return max(int(time.time()), self._head.timestamp + self.genesis.qbft.block_period_seconds)

    def next_base_fee(self) -> int:
        return self._base_fee(self._head)

    def next_gas_limit(self) -> int:
        return self._head.gas_limit

    def head_account(self, address: bytes) -> tuple[int, int, bool]:
        a = self._head_state.account(address)
        if a is None:
            return 0, 0, False
        contract = a.code_hash != EMPTY_CODE_HASH and not self._head_state.get_code(
            Address(address)).startswith(b"\xef\x01\x00")
        return a.nonce, a.balance, contract

    # ---- block environment -----------------------------------------------------------------

    def _base_fee(self, parent: BlockHeader) -> int:
        return base_fee(self.genesis, parent)

    def _env(self, parent: BlockHeader, timestamp: int, coinbase: bytes) -> BlockEnv:
        return block_env(self.genesis, self.schedule, parent, timestamp, coinbase)

    def _ancestors(self, parent_number: int) -> Iterator[bytes]:
        """Hashes of block ``parent_number`` and its ancestors, newest first (BLOCKHASH)."""
        top, recent = self._recent
        for n in range(parent_number, max(-1, parent_number - 256), -1):
            i = len(recent) - 1 - (top - n)
            if 0 <= i < len(recent) and n <= top:
                yield recent[i]
            else:
                h = self.store.hash_at(n)
                if h is None:
                    return
                yield h

    def _parent(self, parent_hash: bytes) -> BlockHeader:
        if parent_hash == self._head_hash:
            return self._head
        parent = self.store.header(parent_hash)
        if parent is None:
            raise BlockInvalid(f"parent 0x{parent_hash.hex()} is not known to this node; sync first")
        return parent

    # ---- BlockSource ----------------------------------------------------------------------

    def create_block(self, parent: BlockHeader, round: int, timestamp: int, coinbase: bytes,
                     vote: Vote | None) -> Block:
        with self._lock:
            parent_hash = self._head_hash if parent is self._head else block_hash(parent)
            self._parent(parent_hash)
            env = self._env(parent, timestamp, coinbase)
            runner = BlockRunner(env, self.source, parent.state_root, self._ancestors(parent.number))
            deadline = time.monotonic() + self.selection_seconds
            selection = self.pool.select(
                env.base_fee, None if parent_hash == self._head_hash else _NonceView(runner))
            for tx in selection:
                if runner.gas_left < 21_000 or time.monotonic() > deadline:
                    break
                try:
                    if tx.fork != env.fork.name:  # the pool decoded it before a fork began
                        tx = self.cache.decode(tx.raw, env.fork, self.chain_id)
                    runner.apply(tx)
                except (TxInvalid, abc.TxRejected) as exc:
                    log.debug("left out 0x%s: %s", tx.hash.hex(), exc)
                    selection.skip_sender(tx.sender)
                    if getattr(exc, "reason", "") in _NEVER_VALID:
                        self.pool.drop(tx.hash)
            execution = runner.finish()
            validators = self.history.validators_after(parent.number)
            extra = xd.encode(ExtraData(self.vanity, tuple(sorted(validators)), vote, round, ()))
            header = self._header(parent_hash, env, execution, extra)
            block = Block(header, tuple(o.tx.raw for o in execution.outcomes),
                          () if env.fork.shanghai else None)
            self._remember(block.hash, execution)
            return block

    def _header(self, parent_hash: bytes, env: BlockEnv, ex: Execution, extra: bytes) -> BlockHeader:
        fork = env.fork
        return BlockHeader(
            parent_hash=parent_hash,
            ommers_hash=EMPTY_OMMERS_HASH,
            coinbase=env.coinbase,
            state_root=ex.state_root,
            transactions_root=ex.transactions_root,
            receipts_root=ex.receipts_root,
            logs_bloom=ex.logs_bloom,
            difficulty=1,
            number=env.number,
            gas_limit=env.gas_limit,
            gas_used=ex.gas_used,
            timestamp=env.timestamp,
            extra_data=extra,
            mix_hash=BFT_MIX_HASH,
            nonce=bytes(8),
            base_fee=env.base_fee,
            withdrawals_root=EMPTY_TRIE_ROOT if fork.shanghai else None,
            blob_gas_used=0 if fork.cancun else None,
            excess_blob_gas=env.excess_blob_gas if fork.cancun else None,
            parent_beacon_block_root=ZERO_HASH if fork.cancun else None,
            requests_hash=EMPTY_REQUESTS_HASH if fork.prague else None,
        )

    def _remember(self, h: bytes, execution: Execution) -> None:
        self._executed[h] = execution
        while len(self._executed) > 8:
            self._executed.popitem(last=False)

    def validate_block(self, block: Block) -> None:
        with self._lock:
            self._execution(block)

    def _execution(self, block: Block) -> Execution:
        """The execution of ``block``, from memory or by running it; BlockInvalid if it does
        not produce exactly the header it carries."""
        header = block.header
        try:
            h = block_hash(header)
        except (xd.ExtraDataError, HeaderError) as exc:
            raise BlockInvalid(f"block {header.number}: {exc}") from exc
        done = self._executed.get(h)
        if done is not None:
            if tuple(block.transactions) != tuple(o.tx.raw for o in done.outcomes):
                raise BlockInvalid(f"block {header.number}: its transactions differ from those "
                                   "of the block with this hash")
            return done
        parent = self._parent(header.parent_hash)
        try:
            verify_header(header, parent, self.history.validators_after(parent.number),
                          block_period_seconds=self.genesis.qbft.block_period_seconds,
                          now=None if self.clock is None else int(self.clock()),
                          parent_hash=header.parent_hash, seals=False)
        except HeaderError as exc:
            raise BlockInvalid(str(exc)) from exc
        env = self._env(parent, header.timestamp, header.coinbase)
        self._check_fields(block, env)
        runner = BlockRunner(env, self.source, parent.state_root, self._ancestors(parent.number))
        for i, raw in enumerate(block.transactions):
            try:
                tx = self.cache.decode(raw, env.fork, self.chain_id)
                runner.apply(tx)
            except (abc.TxRejected, TxInvalid) as exc:
                raise BlockInvalid(f"block {header.number}: transaction {i} "
                                   f"(0x{keccak(raw).hex()}) is invalid: {exc}") from exc
        execution = runner.finish()
        found = mismatches(header, execution)
        if found:
            raise BlockInvalid(f"block {header.number}: {found[0]}")
        self._remember(h, execution)
        return execution

    def _check_fields(self, block: Block, env: BlockEnv) -> None:
        try:
            check_fields(block.header, block.withdrawals, env)
        except FieldError as exc:
            raise BlockInvalid(f"block {block.header.number}: {exc}") from None

    def import_block(self, block: Block) -> None:
        with self._lock:
            header = block.header
            if header.parent_hash != self._head_hash:
                if header.number <= self._head.number:
                    have = self.store.hash_at(header.number)
                    if have == self._safe_hash(header):
                        return  # already imported
                    raise BlockInvalid(
                        f"block {header.number} conflicts with the block this node holds at that "
                        f"height (0x{(have or b'').hex()}); a final chain has one block per height")
                raise BlockInvalid(f"block {header.number} does not extend the head "
                                   f"{self._head.number} (0x{self._head_hash.hex()}); import "
                                   f"blocks {self._head.number + 1}..{header.number - 1} first")
            parent = self._head
            validators = self.history.validators_after(parent.number)
            try:
                sealed = verify_header(
                    header, parent, validators,
                    block_period_seconds=self.genesis.qbft.block_period_seconds,
                    now=None if self.clock is None else int(self.clock()),
                    parent_hash=self._head_hash)
            except HeaderError as exc:
                raise BlockInvalid(str(exc)) from exc
            execution = self._execution(block)
            self._commit(block, sealed.hash, sealed.extra, execution)

    def _safe_hash(self, header: BlockHeader) -> bytes | None:
        try:
            return block_hash(header)
        except (xd.ExtraDataError, HeaderError):
            return None

    def _commit(self, block: Block, h: bytes, extra: ExtraData, ex: Execution) -> None:
        header = block.header
        number = header.number
        receipts: list[StoredReceipt] = []
        logs: list[tuple[bytes, tuple[bytes, ...], bytes, int, bytes]] = []
        for i, o in enumerate(ex.outcomes):
            receipts.append(StoredReceipt(
                o.tx.hash, o.tx.type, o.status, o.cumulative_gas, o.gas_used,
                o.effective_gas_price, o.tx.sender, o.tx.to, o.contract_address, o.output,
                len(logs), len(o.logs)))
            logs.extend((a, t, d, i, o.tx.hash) for a, t, d in o.logs)
        history = self.history
        try:
            history.apply(number, header.coinbase, extra)
            self.store.write_block(BlockRecord(header, h, block.transactions, block.withdrawals,
                                               receipts, logs, ex.nodes, _snapshot(history)))
        except BaseException:
            raw = self.store.meta(b"validators")
            assert raw is not None
            self.history = ValidatorHistory.from_json(self.genesis.qbft.epoch,
                                                      self.genesis.validator_overrides,
                                                      json.loads(raw))
            raise
        self.source.keep(ex.tries, len(ex.nodes))
        self._head_state = StateDB(self.source, header.state_root)
        self._recent = (number, (*self._recent[1][-255:], h))
        self._head = header
        self._head_hash = h
        self._executed.clear()
        self.pool.removed_in_block([o.tx for o in ex.outcomes])
        if self._callbacks:
            stored_logs = [StoredLog(a, t, d, ti, th, li, number)
                           for li, (a, t, d, ti, th) in enumerate(logs)]
            full = [_receipt(r, i, h, number, stored_logs) for i, r in enumerate(receipts)]
            for callback in list(self._callbacks):
                try:
                    callback(block, full)
                except Exception:
                    log.exception("a new-head callback failed on block %d", number)

    # ---- rewinding (dev networks) -------------------------------------------------------

    def rewind(self, number: int) -> None:
        """Make block ``number`` the head again, dropping later blocks. Only for a development
        network with a single validator; a finalized multi-validator chain is never rewound."""
        with self._lock:
            validators = self.history.validators_after(self._head.number)
            if len(validators) > 1 or len(self.genesis.validators) > 1:
                raise ValueError("refusing to rewind: this is a multi-validator BFT chain whose blocks "
                                 "are final; rewinding is for single-validator dev networks only")
            if not 0 <= number <= self._head.number:
                raise ValueError(f"cannot rewind to block {number}: the head is {self._head.number}")
            if number == self._head.number:
                return
            history = ValidatorHistory(self.genesis.qbft.epoch, self.genesis.validator_overrides)
            for n in range(0, number + 1):
                h = self.header(n)
                assert h is not None
                history.apply(n, h.coinbase, xd.decode(h.extra_data) if n else self.genesis.extra)
            self.store.rewind(number, _snapshot(history))
            self.source.forget()
            self._executed.clear()
            self._load_head()
            self.pool.revalidate()


_NEVER_VALID = frozenset({
    "Nonce too low", "Sender account not authorized to send transactions", "Invalid params",
    "Invalid transaction type", "Intrinsic gas exceeds gas limit",
})
"""Reasons a pooled transaction can never become valid again (Besu drops these while building
a block and keeps the transient ones, such as a balance that may still arrive)."""


class _NonceView(dict[bytes, int]):
    """Sender nonces read from a runner's parent state, for building on a non-head parent."""

    def __init__(self, runner: BlockRunner) -> None:
        super().__init__()
        self._runner = runner

    def get(self, key: bytes, default: Any = None) -> Any:
        return self._runner.state.get_nonce(Address(key))


def _snapshot(history: ValidatorHistory) -> bytes:
    return json.dumps(history.to_json(), separators=(",", ":")).encode()


def _log(s: StoredLog, block_hash_: bytes) -> Log:
    return Log(s.address, s.topics, s.data, s.block_number, block_hash_, s.tx_hash, s.tx_index,
               s.log_index)


def _receipt(r: StoredReceipt, index: int, h: bytes, number: int,
             logs: Sequence[StoredLog]) -> Receipt:
    mine = tuple(_log(s, h) for s in logs[r.first_log:r.first_log + r.log_count])
    bloom = bloom_bytes(logs_bloom((lg.address, lg.topics, lg.data) for lg in mine))
    return Receipt(
        tx_hash=r.tx_hash, tx_index=index, tx_type=r.tx_type, block_hash=h, block_number=number,
        sender=r.sender, to=r.to, contract_address=r.contract_address, status=r.status,
        cumulative_gas_used=r.cumulative_gas, gas_used=r.gas_used,
        effective_gas_price=r.effective_gas_price, logs_bloom=bloom, logs=mine,
        revert_reason=r.output)


def logs_of(receipts: Iterable[Receipt]) -> list[Log]:
    return [lg for r in receipts for lg in r.logs]
