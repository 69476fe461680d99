"""``verify --replay``: execute every block again from the genesis alloc and hold the result
against the sealed header.

Seals prove that a quorum of validators signed a header; they do not prove that the header's
state is what its transactions produce. Replay closes that gap with the QBFT execution rules
of ``chain.execution`` (the same code the node runs): for each block whose seals verified, in
order, it reads the block's transactions, which must hash to the header's
``transactionsRoot``, executes them on the state after the parent, and compares the state
root, receipts root (every status, gas figure and log), logs bloom and gas used. The first
block that differs is named with what differs, so a Byzantine quorum that sealed a false state
is caught as surely as a node that serves a false transaction list.

State lives in memory (``chain.execution.memstore``), pruned to the latest state as it grows.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from eth_hash.auto import keccak
from eth_utils.exceptions import ValidationError

from chain import proofs
from chain.abc import TxRejected
from chain.execution.block import FieldError, Mismatch, block_env, check_fields, genesis_state, mismatches
from chain.execution.executor import BlockRunner, Execution
from chain.execution.forks import ForkSchedule
from chain.execution.hashing import use_fast_keccak
from chain.execution.memstore import MemoryNodes
from chain.execution.statedb import StateSource
from chain.execution.txs import decode
from chain.qbft.genesis import Genesis, GenesisError
from chain.qbft.header import EMPTY_TRIE_ROOT, BlockHeader
from observer.abc import ChainSource, RpcTransaction
from observer.blocks import Failure, Sealed, served_transactions

_CHECKS = {"stateRoot": "state-root", "transactionsRoot": "transactions-root",
           "receiptsRoot": "receipts-root", "logsBloom": "logs-bloom", "gasUsed": "gas-used"}


class Replay:
    """Executes verified blocks in order from the genesis; keeps the state after the last."""

    def __init__(self, genesis: Genesis, source: ChainSource, *, prune_floor: int = 200_000) -> None:
        """``prune_floor``: state entries kept in memory before the first prune to the latest
        state (then whenever they double)."""
        try:
            self.schedule = ForkSchedule(genesis)
        except GenesisError as exc:
            raise ValueError(f"--replay cannot execute this network's blocks: {exc}") from None
        use_fast_keccak()  # pysha3 where installed (the node extra); the same hashes either way
        self.genesis = genesis
        self.source = source
        self.nodes = MemoryNodes(prune_floor=prune_floor)
        self.state = StateSource(self.nodes.read)
        db = genesis_state(genesis, self.state)
        self.nodes.write(db.nodes)
        self.parent = genesis.header()
        self.genesis_root = bytes(db.state_root)
        self.hashes: deque[bytes] = deque([genesis.hash], maxlen=256)
        """Hashes of the parent and its ancestors, newest first (what BLOCKHASH reads)."""
        self.blocks = 0
        self.transactions = 0
        self.gas = 0
        self.seconds = 0.0
        self.prunes = 0

    def summary(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "transactions": self.transactions, "gas": self.gas,
                "seconds": round(self.seconds, 3), "stateRoot": "0x" + self.parent.state_root.hex(),
                "stateNodes": len(self.nodes)}

    def blocks_verified(self, headers: Sequence[BlockHeader], sealed: Sequence[Sealed]
                        ) -> Failure | None:
        """Replay these blocks, whose seals verified, after the last one replayed; the first
        difference found, or None."""
        started = time.perf_counter()
        try:
            if headers and headers[0].number == 1 and self.genesis_root != self.parent.state_root:
                return Failure(0, "state-root",
                               f"the genesis alloc gives state root 0x{self.genesis_root.hex()}, the "
                               f"genesis block has 0x{self.parent.state_root.hex()}")
            with_txs = [h.number for h in headers if h.transactions_root != EMPTY_TRIE_ROOT]
            fetched = dict(zip(with_txs, self.source.block_transactions(with_txs), strict=True)
                           ) if with_txs else {}
            for header, block in zip(headers, sealed, strict=True):
                if header.number != self.parent.number + 1:
                    raise ValueError(f"block {header.number} replayed after block {self.parent.number}")
                failure = self._block(header, fetched.get(header.number, []))
                if failure is not None:
                    return failure
                self.hashes.appendleft(block.hash)
            return None
        finally:
            self.seconds += time.perf_counter() - started

    def _block(self, header: BlockHeader, txs: list[RpcTransaction] | None) -> Failure | None:
        n, name = header.number, self.source.name
        parent = self.parent
        env = block_env(self.genesis, self.schedule, parent, header.timestamp, header.coinbase)
        try:
            check_fields(header, () if header.withdrawals_root is not None else None, env)
        except FieldError as exc:
            return Failure(n, "fork-rules", f"{exc}: the validators sealed a header the "
                           f"{env.fork.name} rules of this genesis do not allow")
        raws = served_transactions(header, txs, name, "whose transactionsRoot says it has some")
        if isinstance(raws, Failure):
            return raws
        runner = BlockRunner(env, self.state, parent.state_root, tuple(self.hashes))
        for i, raw in enumerate(raws):
            try:
                runner.apply(decode(raw, env.fork, env.chain_id))
            except (TxRejected, ValidationError) as exc:
                return Failure(n, "execution",
                               f"transaction {i} (0x{keccak(raw).hex()}) cannot be included on the "
                               f"state after block {n - 1}: {exc}; the validators who sealed this "
                               "block accepted a transaction the rules refuse")
        execution = runner.finish()
        found = mismatches(header, execution)
        if found:
            return self._mismatch(header, execution, found[0])
        self.nodes.write(execution.nodes)
        self.state.keep(execution.tries, len(execution.nodes))
        if self.nodes.due():
            self.nodes.prune(execution.state_root)
            self.state.forget()
            self.prunes += 1
        self.parent = header
        self.blocks += 1
        self.transactions += len(raws)
        self.gas += execution.gas_used
        return None

    def _mismatch(self, header: BlockHeader, execution: Execution, mismatch: Mismatch) -> Failure:
        n = header.number
        text = f"{mismatch}"
        if mismatch.field == "stateRoot":
            text += (": the validators who sealed this block committed to a state its transactions "
                     "do not produce")
        elif mismatch.field in ("receiptsRoot", "logsBloom", "gasUsed"):
            detail = self._receipt_difference(header, execution)
            text += f": {detail}" if detail else ""
        return Failure(n, _CHECKS[mismatch.field], text)

    def _receipt_difference(self, header: BlockHeader, execution: Execution) -> str | None:
        """The first transaction whose sealed receipt differs from its execution, named with
        the field; None when the node's receipts do not match the header (nothing to hold the
        execution against)."""
        [served] = self.source.receipts([header.number])
        if served is None:
            return None
        try:
            receipts = [proofs.Receipt.from_rpc(r) for r in served]
        except proofs.ProofError:
            return None
        if proofs.trie_root([r.encode() for r in receipts]) != header.receipts_root:
            return None
        for i, outcome in enumerate(execution.outcomes):
            tx = f"transaction {i} (0x{outcome.tx.hash.hex()})"
            if i >= len(receipts):
                return f"{tx} has no receipt in the sealed block"
            r = receipts[i]
            logs = tuple((g.address, g.topics, g.data) for g in r.logs)
            for what, sealed_value, executed in (
                    ("status", r.status, outcome.status),
                    ("cumulativeGasUsed", r.cumulative_gas_used, outcome.cumulative_gas),
                    ("logs", logs, outcome.logs)):
                if sealed_value != executed:
                    if what == "logs":
                        return (f"{tx}: the sealed receipt has {len(logs)} logs, executing gives "
                                f"{len(outcome.logs)}" if len(logs) != len(outcome.logs) else
                                f"{tx}: a log of the sealed receipt differs from the executed one")
                    return f"{tx}: the sealed receipt has {what} {sealed_value}, executing gives {executed}"
        if len(receipts) > len(execution.outcomes):
            return f"the sealed block has {len(receipts)} receipts for {len(execution.outcomes)} transactions"
        return None
