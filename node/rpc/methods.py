"""The JSON-RPC methods: each parses its params, asks the node one thing, formats the answer.

``Methods.table`` maps a method name to a ``Method``: the function, whether it writes (refused
on a read-only node), and whether it may run long (eth_call, eth_getLogs...: the server runs
those off the event loop). Which methods exist depends on the node: the QBFT vote methods need
a vote proposer, the ``evm_*``/``hardhat_mine`` methods exist only on a dev-mode network.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from eth_hash.auto import keccak

from chain.qbft.block import Block
from chain.qbft.hashing import block_hash
from chain.qbft.header import BlockHeader
from node.abc import BlockId, CallRequest, CallResult, LogFilter, NodeAPI, Receipt, TxRejected
from node.rpc import params as P
from node.rpc import results as R
from node.rpc.errors import (
    RpcError,
    block_not_found,
    invalid_params,
    method_not_enabled,
    pool_rejection,
    range_too_large,
    revert,
)
from node.rpc.params import BlockRef, Params
from node.rpc.tx import decode

VERSION = "v0.1.0"


@dataclass(frozen=True)
class RpcConfig:
    """Server settings; the defaults are Besu's where Besu has one."""

    client_version: str = f"smartta/{VERSION}/linux-x86_64/python"
    network_id: int | None = None
    """``net_version``; the chain id when not set (as Besu does without --network-id)."""
    read_only: bool | None = None
    """Refuse every write method; defaults to True on an observer node."""
    max_batch_size: int = 1024  # --rpc-http-max-batch-size
    max_body_bytes: int = 5 * 1024 * 1024  # --rpc-http-max-request-content-length
    max_logs_range: int = 5000  # --rpc-max-logs-range
    min_gas_price: int = 0  # consortia run with --min-gas-price=0
    min_priority_fee: int = 0
    gas_price_blocks: int = 100  # --api-gas-price-blocks
    gas_price_percentile: float = 0.6  # --api-gas-price-percentile / 100
    gas_price_max: int = 500 * 10**9  # --api-gas-price-max
    p2p_enabled: bool = True
    """Readiness requires peers only when the node talks to others (Besu: p2p enabled)."""
    max_ws_subscriptions: int = 1000


@dataclass(frozen=True, slots=True)
class Method:
    fn: Callable[[Params], Any]
    write: bool = False
    blocking: bool = False


class _Lru:
    """A small thread-safe LRU for immutable per-block results (keyed by block hash)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Hashable, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        if value is None:
            return None  # not known yet: ask again next time
        with self.lock:
            self.items[key] = value
            if len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


@dataclass
class Counters:
    """What the RPC layer counts for /metrics."""

    requests: dict[str, list[float]] = field(default_factory=dict)
    """method -> [count, total seconds]."""
    errors: dict[tuple[str, str], int] = field(default_factory=dict)
    pool_added: int = 0
    pool_rejected: dict[str, int] = field(default_factory=dict)


CONTRACT_MODE = "validators come from the validator contract in this network; vote by calling it"


class Methods:
    def __init__(self, node: NodeAPI, config: RpcConfig | None = None) -> None:
        self.node = node
        self.chain = node.chain
        self.config = config or RpcConfig()
        self.counters = Counters()
        genesis = self.chain.genesis
        self.chain_id = genesis.chain_id
        self.genesis_hash = genesis.hash
        self.genesis_difficulty = genesis.header().difficulty
        self._blocks = _Lru(256)
        self._receipts = _Lru(256)
        self._fees = _Lru(1024)
        read_only = self.config.read_only
        self.read_only = node.status.role == "observer" if read_only is None else read_only
        self.table: dict[str, Method] = self._build_table()

    # ---- plumbing -------------------------------------------------------------------------

    def _build_table(self) -> dict[str, Method]:
        m = Method
        table = {
            "web3_clientVersion": m(lambda p: self.config.client_version),
            "web3_sha3": m(lambda p: R.d(bytes(keccak(p.data(0))))),
            "net_version": m(lambda p: str(self.config.network_id or self.chain_id)),
            "net_listening": m(lambda p: True),
            "net_peerCount": m(lambda p: R.q(len(self.node.status.peers))),
            "eth_chainId": m(lambda p: R.q(self.chain_id)),
            "eth_blockNumber": m(lambda p: R.q(self.chain.head.number)),
            "eth_syncing": m(lambda p: R.syncing(self.node.status.syncing)),
            "eth_accounts": m(lambda p: []),
            "eth_mining": m(lambda p: self.node.status.role == "validator"),
            "eth_getBlockByNumber": m(self.eth_getBlockByNumber),
            "eth_getBlockByHash": m(self.eth_getBlockByHash),
            "eth_getBlockTransactionCountByNumber": m(self.eth_getBlockTransactionCountByNumber),
            "eth_getBlockTransactionCountByHash": m(self.eth_getBlockTransactionCountByHash),
            "eth_getUncleCountByBlockNumber": m(lambda p: self._uncle_count(p, False)),
            "eth_getUncleCountByBlockHash": m(lambda p: self._uncle_count(p, True)),
            "eth_getTransactionByHash": m(self.eth_getTransactionByHash),
            "eth_getTransactionByBlockNumberAndIndex": m(lambda p: self._tx_by_index(p, False)),
            "eth_getTransactionByBlockHashAndIndex": m(lambda p: self._tx_by_index(p, True)),
            "eth_getTransactionReceipt": m(self.eth_getTransactionReceipt),
            "eth_getBlockReceipts": m(self.eth_getBlockReceipts),
            "eth_sendRawTransaction": m(self.eth_sendRawTransaction, write=True),
            "eth_sendTransaction": m(self.eth_sendTransaction, write=True),
            "eth_call": m(self.eth_call, blocking=True),
            "eth_estimateGas": m(self.eth_estimateGas, blocking=True),
            "eth_gasPrice": m(self.eth_gasPrice, blocking=True),
            "eth_maxPriorityFeePerGas": m(self.eth_maxPriorityFeePerGas, blocking=True),
            "eth_feeHistory": m(self.eth_feeHistory, blocking=True),
            "eth_getLogs": m(self.eth_getLogs, blocking=True),
            "eth_getBalance": m(lambda p: self._account(p, lambda a: R.q(a.balance))),
            "eth_getTransactionCount": m(self.eth_getTransactionCount),
            "eth_getCode": m(self.eth_getCode),
            "eth_getStorageAt": m(self.eth_getStorageAt),
            "eth_getProof": m(self.eth_getProof, blocking=True),
            "txpool_besuStatistics": m(self.txpool_besuStatistics),
            "admin_peers": m(self.admin_peers),
            "qbft_getValidatorsByBlockNumber": m(self.qbft_getValidatorsByBlockNumber),
            "qbft_getValidatorsByBlockHash": m(self.qbft_getValidatorsByBlockHash),
            "qbft_getSignerMetrics": m(self.qbft_getSignerMetrics, blocking=True),
            "qbft_getRequestTimeoutSeconds": m(
                lambda p: self.chain.genesis.qbft.request_timeout_seconds),
            "qbft_proposeValidatorVote": m(self.qbft_proposeValidatorVote, write=True),
            "qbft_discardValidatorVote": m(self.qbft_discardValidatorVote, write=True),
            "qbft_getPendingVotes": m(self.qbft_getPendingVotes),
        }
        if self.node.dev is not None:
            table.update({
                "evm_snapshot": m(self.evm_snapshot, write=True),
                "evm_revert": m(self.evm_revert, write=True, blocking=True),
                "evm_mine": m(self.evm_mine, write=True, blocking=True),
                "evm_increaseTime": m(self.evm_increaseTime, write=True),
                "evm_setNextBlockTimestamp": m(self.evm_setNextBlockTimestamp, write=True),
                "hardhat_mine": m(self.hardhat_mine, write=True, blocking=True),
            })
        return table

    def block_hash(self, header: BlockHeader) -> bytes:
        return self.genesis_hash if header.number == 0 else block_hash(header)

    def resolve(self, ref: BlockRef) -> BlockHeader | None:
        """The header a block parameter names, or None if there is no such block (yet)."""
        if ref.hash is not None:
            return self.chain.header(ref.hash)
        head = self.chain.head
        if ref.tag == "earliest":
            return self.chain.header(0)
        if ref.tag is not None:
            return head  # latest, pending; QBFT is final, so safe and finalized are the head too
        assert ref.number is not None
        if ref.number > head.number:
            return None
        return head if ref.number == head.number else self.chain.header(ref.number)

    def _state_block(self, p: Params, i: int) -> BlockId | None:
        header = self.resolve(p.block(i, P.BLOCK, allow_hash=True))
        return None if header is None else header.number

    def receipts(self, block_id: bytes) -> list[Receipt]:
        """Receipts of a known block, cached by its hash (a block's receipts never change)."""
        found: list[Receipt] | None = self._receipts.get(block_id, lambda: self.chain.receipts(block_id))
        return found or []

    def timestamp(self, block_id: bytes) -> int:
        header = self.chain.header(block_id)
        return 0 if header is None else header.timestamp

    # ---- blocks ---------------------------------------------------------------------------

    def block_json(self, blk: Block, full: bool) -> dict[str, Any]:
        bh = self.block_hash(blk.header)

        def make() -> dict[str, Any]:
            txs: list[Any]
            if full:
                senders = [r.sender for r in self.receipts(bh)]
                txs = [R.transaction(decode(raw), senders[i], blk.header, bh, i)
                       for i, raw in enumerate(blk.transactions)]
            else:
                txs = [R.d(bytes(keccak(raw))) for raw in blk.transactions]
            return R.block(blk, bh, len(blk.encode()),
                           self.genesis_difficulty + blk.header.number, txs)

        result: dict[str, Any] = self._blocks.get((bh, full), make)
        return result

    def _block(self, p: Params, by_hash: bool) -> Block | None:
        if by_hash:
            return self.chain.block(p.hash(0, P.BLOCK_HASH))
        header = self.resolve(p.block(0, P.BLOCK, default=None))
        return None if header is None else self.chain.block(header.number)

    def eth_getBlockByNumber(self, p: Params) -> Any:
        blk = self._block(p, False)
        full = p.boolean(1, P.RETURN_COMPLETE, default=False)
        return None if blk is None else self.block_json(blk, full)

    def eth_getBlockByHash(self, p: Params) -> Any:
        blk = self._block(p, True)
        full = p.boolean(1, P.RETURN_COMPLETE, default=False)
        return None if blk is None else self.block_json(blk, full)

    def eth_getBlockTransactionCountByNumber(self, p: Params) -> Any:
        blk = self._block(p, False)
        return None if blk is None else R.q(len(blk.transactions))

    def eth_getBlockTransactionCountByHash(self, p: Params) -> Any:
        blk = self._block(p, True)
        return None if blk is None else R.q(len(blk.transactions))

    def _uncle_count(self, p: Params, by_hash: bool) -> Any:
        return None if self._block(p, by_hash) is None else "0x0"

    # ---- transactions and receipts --------------------------------------------------------

    def eth_getTransactionByHash(self, p: Params) -> Any:
        p.at_most(1)
        tx_hash = p.hash(0, P.TX_HASH)
        pool = self.node.pool
        raw = pool.get(tx_hash) if pool is not None else None
        if raw is not None:
            tx = decode(raw)
            public_key = tx.public_key()
            return R.pending_transaction(tx, bytes(keccak(public_key)[12:]), public_key)
        loc = self.chain.transaction(tx_hash)
        if loc is None:
            return None
        header = self.chain.header(loc.block_hash)
        if header is None:
            return None
        return R.transaction(decode(loc.raw), loc.sender, header, loc.block_hash, loc.index)

    def _tx_by_index(self, p: Params, by_hash: bool) -> Any:
        blk = self._block(p, by_hash)
        index = p.quantity(1, "Invalid transaction index params", 2**31)
        if blk is None or index >= len(blk.transactions):
            return None
        bh = self.block_hash(blk.header)
        sender = self.receipts(bh)[index].sender
        return R.transaction(decode(blk.transactions[index]), sender, blk.header, bh, index)

    def eth_getTransactionReceipt(self, p: Params) -> Any:
        tx_hash = p.hash(0, P.TX_HASH)
        loc = self.chain.transaction(tx_hash)
        if loc is None:
            return None
        receipts = self.receipts(loc.block_hash)
        if loc.index >= len(receipts):
            return None
        return R.receipt(receipts[loc.index], self.timestamp(loc.block_hash))

    def eth_getBlockReceipts(self, p: Params) -> Any:
        header = self.resolve(p.block(0, P.BLOCK, allow_hash=True, default=None))
        if header is None:
            return None
        bh = self.block_hash(header)
        return [R.receipt(r, header.timestamp) for r in self.receipts(bh)]

    def eth_sendRawTransaction(self, p: Params) -> Any:
        if len(p) != 1:
            raise invalid_params("Invalid number of params",
                                 f"eth_sendRawTransaction takes 1 param, {len(p)} given")
        raw = p.data(0, P.TX)
        pool = self.node.pool
        if pool is None:
            raise method_not_enabled("this node has no transaction pool")
        try:
            tx_hash = pool.add(raw, local=True)
        except TxRejected as exc:
            key = exc.reason
            self.counters.pool_rejected[key] = self.counters.pool_rejected.get(key, 0) + 1
            raise pool_rejection(exc.reason, exc.detail) from None
        self.counters.pool_added += 1
        return R.d(tx_hash)

    def eth_sendTransaction(self, p: Params) -> Any:
        raise RpcError(-32604, "The method eth_sendTransaction is not supported. "
                               "Use eth_sendRawTransaction to send a signed transaction to Besu.")

    # ---- execution ------------------------------------------------------------------------

    def _call_block(self, p: Params, i: int) -> BlockId:
        ref = p.block(i, P.BLOCK, allow_hash=True)
        header = self.resolve(ref)
        if header is None:
            raise block_not_found()
        return header.number

    def _call_outcome(self, result: CallResult) -> str:
        if result.error is None:
            return R.d(result.output)
        if result.error == "execution reverted":
            raise revert(result.output)
        raise RpcError(-32000, result.error)

    def _call(self, request: CallRequest, block: BlockId) -> CallResult:
        try:
            return self.chain.call(request, block)
        except (ValueError, TxRejected) as exc:
            raise RpcError(-32000, str(exc)) from None

    def eth_call(self, p: Params) -> Any:
        request = p.call(0)
        return self._call_outcome(self._call(request, self._call_block(p, 1)))

    def eth_estimateGas(self, p: Params) -> Any:
        request = p.call(0)
        block = self._call_block(p, 1)
        try:
            return R.q(self.chain.estimate_gas(request, block))
        except (ValueError, TxRejected) as exc:
            # Run the call once at the cap to report what went wrong as eth_call would.
            self._call_outcome(self._call(request, block))
            raise RpcError(-32000, str(exc)) from None

    def _fee_lists(self, header: BlockHeader) -> tuple[list[int], list[int]]:
        """Gas prices of legacy/2930 transactions and priority fees of 1559 ones in a block."""

        def make() -> tuple[list[int], list[int]]:
            blk = self.chain.block(header.number)
            prices: list[int] = []
            tips: list[int] = []
            for raw in blk.transactions if blk else ():
                tx = decode(raw)
                if tx.gas_price is not None:
                    prices.append(tx.gas_price)
                elif tx.max_priority_fee_per_gas is not None:
                    tips.append(tx.max_priority_fee_per_gas)
            return prices, tips

        lists: tuple[list[int], list[int]] = self._fees.get(self.block_hash(header), make)
        return lists

    def _recent_fees(self, which: int) -> list[int]:
        head = self.chain.head
        out: list[int] = []
        for n in range(max(0, head.number - self.config.gas_price_blocks + 1), head.number + 1):
            header = head if n == head.number else self.chain.header(n)
            if header is not None:
                out.extend(self._fee_lists(header)[which])
        return sorted(out)

    def next_base_fee(self, header: BlockHeader) -> int:
        """EIP-1559 base fee of the block after ``header`` (0 on zero-base-fee networks)."""
        if header.base_fee is None or self.chain.genesis.zero_base_fee:
            return 0
        target = header.gas_limit // 2
        base = header.base_fee
        if header.gas_used == target or target == 0:
            return base
        if header.gas_used > target:
            return base + max(1, base * (header.gas_used - target) // target // 8)
        return max(0, base - base * (target - header.gas_used) // target // 8)

    def eth_gasPrice(self, p: Params) -> Any:
        # Besu's BlockchainQueries.gasPrice: a percentile of recent legacy gas prices, bounded
        # below by the next base fee / min gas price and above by --api-gas-price-max.
        floor = max(self.next_base_fee(self.chain.head), self.config.min_gas_price)
        prices = self._recent_fees(0)
        if not prices:
            return R.q(floor)
        pick = prices[min(len(prices) - 1, int(len(prices) * self.config.gas_price_percentile))]
        return R.q(max(floor, min(self.config.gas_price_max, pick)))

    def eth_maxPriorityFeePerGas(self, p: Params) -> Any:
        tips = self._recent_fees(1)
        if not tips:
            return R.q(self.config.min_priority_fee)
        pick = tips[min(len(tips) - 1, int(len(tips) * self.config.gas_price_percentile))]
        return R.q(max(self.config.min_priority_fee, pick))

    def eth_feeHistory(self, p: Params) -> Any:
        count = p.quantity(0, P.BLOCK_COUNT, 2**32 - 1)
        if not 1 <= count <= 1024:
            raise invalid_params(P.BLOCK_COUNT, f"params[0]: {count} blocks, ask for 1 to 1024")
        ref = p.block(1, P.BLOCK, default=None)
        head = self.chain.head
        newest = self.resolve(ref)
        if newest is None:
            raise invalid_params(P.BLOCK_NUMBER, f"params[1]: block {ref.number} is after the head "
                                                 f"{head.number}")
        percentiles: list[float] | None = None
        if p.has(2):
            percentiles = _percentiles(p.raw(2, P.PERCENTILES))
        first = max(0, newest.number - count + 1)
        headers = [newest if n == newest.number else self.chain.header(n)
                   for n in range(first, newest.number + 1)]
        headers_ok = [h for h in headers if h is not None]
        base_fees = [h.base_fee or 0 for h in headers_ok]
        base_fees.append(self.next_base_fee(newest))
        blob_fees = [_blob_base_fee(h.excess_blob_gas or 0) for h in headers_ok]
        blob_fees.append(blob_fees[-1] if blob_fees else 1)
        result: dict[str, Any] = {
            "oldestBlock": R.q(first),
            "baseFeePerGas": [R.q(f) for f in base_fees],
            "baseFeePerBlobGas": [R.q(f) for f in blob_fees],
            "gasUsedRatio": [h.gas_used / h.gas_limit if h.gas_limit else 0.0 for h in headers_ok],
            "blobGasUsedRatio": [(h.blob_gas_used or 0) / MAX_BLOB_GAS_PER_BLOCK for h in headers_ok],
        }
        if percentiles is not None:
            result["reward"] = [[R.q(v) for v in self._rewards(h, percentiles)] for h in headers_ok]
        return result

    def _rewards(self, header: BlockHeader, percentiles: list[float]) -> list[int]:
        blk = self.chain.block(header.number)
        if blk is None or not blk.transactions:
            return [0] * len(percentiles)
        base = header.base_fee or 0
        receipts = self.receipts(self.block_hash(header))
        rewards = []
        for raw, rcpt in zip(blk.transactions, receipts, strict=False):
            tx = decode(raw)
            if tx.gas_price is not None:
                tip = tx.gas_price - base
            else:
                assert tx.max_fee_per_gas is not None and tx.max_priority_fee_per_gas is not None
                tip = min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base)
            rewards.append((max(0, tip), rcpt.gas_used))
        rewards.sort()
        out = []
        for pct in percentiles:
            threshold = header.gas_used * pct / 100
            total, pick = 0, rewards[-1][0]
            for tip, used in rewards:
                total += used
                if total >= threshold:
                    pick = tip
                    break
            out.append(pick)
        return out

    def eth_getLogs(self, p: Params) -> Any:
        raw = p.raw(0, P.FILTER)
        try:
            spec = P.log_filter(raw)
        except P.ParamError as exc:
            raise invalid_params(P.FILTER, f"params[0].{exc}") from None
        return [R.log(entry, ts) for entry, ts in self.find_logs(spec)]

    def find_logs(self, spec: P.FilterSpec) -> list[tuple[Any, int]]:
        head = self.chain.head.number
        if spec.block_hash is not None:
            header = self.chain.header(spec.block_hash)
            if header is None:
                raise block_not_found()
            start = end = header.number
        else:
            start_h, end_h = self.resolve(spec.from_block), self.resolve(spec.to_block)
            if start_h is None:
                return []
            start = start_h.number
            end = head if end_h is None else end_h.number
            if start > end:
                raise invalid_params(P.FILTER, f"params[0]: fromBlock {start} is after toBlock {end}")
            if end - start + 1 > self.config.max_logs_range:
                raise range_too_large(end - start + 1, self.config.max_logs_range)
        logs = self.chain.logs(LogFilter(start, end, spec.addresses, spec.topics, spec.block_hash))
        stamps: dict[bytes, int] = {}
        out = []
        for entry in logs:
            ts = stamps.get(entry.block_hash)
            if ts is None:
                ts = stamps[entry.block_hash] = self.timestamp(entry.block_hash)
            out.append((entry, ts))
        return out

    # ---- state ----------------------------------------------------------------------------

    def _account(self, p: Params, show: Callable[[Any], Any]) -> Any:
        address = p.address(0)
        block = self._state_block(p, 1)
        return None if block is None else show(self.chain.account(address, block))

    def eth_getTransactionCount(self, p: Params) -> Any:
        address = p.address(0)
        ref = p.block(1, P.BLOCK, allow_hash=True)
        if ref.tag == "pending" and self.node.pool is not None:
            return R.q(self.node.pool.pending_nonce(address))
        header = self.resolve(ref)
        return None if header is None else R.q(self.chain.account(address, header.number).nonce)

    def eth_getCode(self, p: Params) -> Any:
        address = p.address(0)
        block = self._state_block(p, 1)
        return None if block is None else R.d(self.chain.code(address, block))

    def eth_getStorageAt(self, p: Params) -> Any:
        address = p.address(0)
        slot = p.quantity(1, P.POSITION)
        block = self._state_block(p, 2)
        if block is None:
            return None
        return R.d(self.chain.storage_at(address, slot, block).to_bytes(32, "big"))

    def eth_getProof(self, p: Params) -> Any:
        address = p.address(0)
        keys = p.raw(1, P.STORAGE_KEYS)
        if not isinstance(keys, list):
            raise invalid_params(P.STORAGE_KEYS, "params[1]: expected an array of storage keys")
        slots = []
        for n, key in enumerate(keys):
            try:
                slots.append(P.quantity(key))
            except P.ParamError as exc:
                raise invalid_params(P.STORAGE_KEYS, f"params[1][{n}]: {exc}") from None
        block = self._state_block(p, 2)
        return None if block is None else R.proof(self.chain.proof(address, slots, block))

    # ---- node -----------------------------------------------------------------------------

    def txpool_besuStatistics(self, p: Params) -> Any:
        if self.node.pool is None:
            return {"maxSize": 0, "localCount": 0, "remoteCount": 0}
        s = self.node.pool.stats()
        return {"maxSize": s.max_size, "localCount": s.local_count, "remoteCount": s.remote_count}

    def admin_peers(self, p: Params) -> Any:
        return [R.peer(peer, self.node.status.name) for peer in self.node.status.peers]

    # ---- QBFT -----------------------------------------------------------------------------

    def _validators(self, header: BlockHeader) -> list[str]:
        # Header mode: the set that sealed this block; contract mode: the contract's answer at
        # this block's post-state, i.e. the set for the next block (Besu's two providers).
        number = header.number + (1 if self.chain.genesis.contract_mode else 0)
        return [R.d(v) for v in self.chain.validators_for(number)]

    def qbft_getValidatorsByBlockNumber(self, p: Params) -> Any:
        ref = p.block(0, P.BLOCK, default=None)
        head = self.chain.head
        if ref.tag == "pending":
            return [R.d(v) for v in self.chain.validators_for(head.number + 1)]
        header = self.resolve(ref)
        return None if header is None else self._validators(header)

    def qbft_getValidatorsByBlockHash(self, p: Params) -> Any:
        header = self.chain.header(p.hash(0, P.BLOCK_HASH))
        return None if header is None else self._validators(header)

    def qbft_getSignerMetrics(self, p: Params) -> Any:
        head = self.chain.head.number
        start = self._metric_bound(p, 0, max(0, head - 100))
        end = self._metric_bound(p, 1, head)
        end = end if end <= head else head
        if start >= end:
            raise invalid_params(P.BLOCK_NUMBER, f"the range [{start}, {end}) is empty: the end "
                                                 "is exclusive and must be after the start")
        if end - start > self.config.max_logs_range:
            raise range_too_large(end - start, self.config.max_logs_range)
        metrics: dict[bytes, list[int]] = {}
        for n in range(start, end):
            header = self.chain.header(n)
            if header is None:
                continue
            entry = metrics.setdefault(header.coinbase, [0, 0])
            entry[0] += 1
            entry[1] = n
            if n == end - 1:
                for v in self.chain.validators_for(n + 1):
                    metrics.setdefault(v, [0, 0])
        return [{"address": R.d(a), "proposedBlockCount": R.q(c), "lastProposedBlockNumber": R.q(last)}
                for a, (c, last) in metrics.items()]

    def _metric_bound(self, p: Params, i: int, default: int) -> int:
        if not p.has(i):
            return default
        ref = p.block(i, P.BLOCK_NUMBER)
        if ref.number is not None:
            return ref.number
        return 0 if ref.tag == "earliest" else self.chain.head.number

    def _votes(self) -> Any:
        if self.chain.genesis.contract_mode:
            raise method_not_enabled(CONTRACT_MODE)
        if self.node.votes is None:
            raise method_not_enabled("this node is not a validator, so it casts no votes")
        return self.node.votes

    def qbft_proposeValidatorVote(self, p: Params) -> Any:
        votes = self._votes()
        address = p.address(0)
        add = p.boolean(1, P.VOTE_TYPE)
        votes.propose(address, add)
        return True

    def qbft_discardValidatorVote(self, p: Params) -> Any:
        votes = self._votes()
        votes.discard(p.address(0))
        return True

    def qbft_getPendingVotes(self, p: Params) -> Any:
        return {R.d(a): add for a, add in self._votes().pending().items()}

    # ---- development networks -------------------------------------------------------------

    @property
    def _dev(self) -> Any:
        assert self.node.dev is not None
        return self.node.dev

    def evm_snapshot(self, p: Params) -> Any:
        return R.q(self._dev.snapshot())

    def evm_revert(self, p: Params) -> Any:
        return bool(self._dev.revert(_number(p, 0, P.ID)))

    def evm_mine(self, p: Params) -> Any:
        timestamp: int | None = None
        blocks = 1
        if p.has(0):
            arg = p.values[0]
            if isinstance(arg, dict):  # anvil's MineOptions {timestamp, blocks}
                sub = Params([arg.get("timestamp"), arg.get("blocks")])
                timestamp = _number(sub, 0, P.TIMESTAMP) if sub.has(0) else None
                blocks = _number(sub, 1, P.INVALID) if sub.has(1) else 1
            else:
                timestamp = _number(p, 0, P.TIMESTAMP)
        self._dev_call(lambda: self._dev.mine(blocks, timestamp))
        return "0x0"

    def hardhat_mine(self, p: Params) -> Any:
        blocks = _number(p, 0, P.INVALID) if p.has(0) else 1
        interval = _number(p, 1, P.INVALID) if p.has(1) else 1
        self._dev_call(lambda: self._dev.mine(blocks, None, interval))
        return True

    def evm_increaseTime(self, p: Params) -> Any:
        return str(self._dev_call(lambda: self._dev.increase_time(_number(p, 0, P.INVALID))))

    def evm_setNextBlockTimestamp(self, p: Params) -> Any:
        timestamp = _number(p, 0, P.TIMESTAMP)
        self._dev_call(lambda: self._dev.set_next_block_timestamp(timestamp))
        return str(timestamp)

    def _dev_call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ValueError as exc:
            raise RpcError(-32000, str(exc)) from None


def _number(p: Params, i: int, kind: str) -> int:
    """A count or timestamp: dev tools send JSON numbers or hex quantities."""
    value = p.raw(i, kind)
    try:
        return P.quantity(value, 2**63 - 1)
    except P.ParamError as exc:
        raise invalid_params(kind, f"params[{i}]: {exc}") from None


def _percentiles(raw: Any) -> list[float]:
    if not isinstance(raw, list) or len(raw) > 100:
        raise invalid_params(P.PERCENTILES, "params[2]: expected an array of at most 100 numbers")
    out: list[float] = []
    for n, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 100:
            raise invalid_params(P.PERCENTILES, f"params[2][{n}]: {v!r} is not a number in 0..100")
        if out and v < out[-1]:
            raise invalid_params(P.PERCENTILES, "params[2]: percentiles must not decrease")
        out.append(float(v))
    return out


MAX_BLOB_GAS_PER_BLOCK = 786432  # Cancun: 6 blobs of 131072
_BLOB_FEE_FRACTION = 3338477  # Cancun BLOB_BASE_FEE_UPDATE_FRACTION


def _blob_base_fee(excess_blob_gas: int) -> int:
    # EIP-4844 fake_exponential(MIN_BASE_FEE_PER_BLOB_GAS=1, excess, fraction)
    i, output, acc = 1, 0, _BLOB_FEE_FRACTION
    while acc > 0:
        output += acc
        acc = acc * excess_blob_gas // (_BLOB_FEE_FRACTION * i)
        i += 1
    return output // _BLOB_FEE_FRACTION

