"""One block's execution: transactions in, receipts, logs, roots and new state nodes out.

``BlockRunner`` applies transactions one at a time on the parent's state (the block builder
tries pool transactions and skips the ones that turn out invalid; validation applies a
proposal's list and fails on the first invalid one), then ``finish`` pays the block reward,
commits the state in one batch and computes every root. No storage is written here: the
``Execution`` carries the new trie nodes for the caller to store with the block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from eth._utils.address import generate_contract_address
from eth.exceptions import Revert
from eth_typing import Address, BlockNumber, Hash32

from chain.execution import mpt
from chain.execution.forks import Fork, QbftContext, TxInvalid
from chain.execution.receipts import LogEntry, bloom_bytes, encode_receipt, logs_bloom
from chain.execution.statedb import StateSource
from chain.execution.txs import Tx
from chain.qbft.header import BFT_MIX_HASH


@dataclass(frozen=True, slots=True)
class BlockEnv:
    """What a block's execution depends on besides its transactions and parent state."""

    fork: Fork
    number: int
    timestamp: int
    coinbase: bytes
    gas_limit: int
    base_fee: int
    excess_blob_gas: int | None
    chain_id: int
    fee_recipient: bytes
    block_reward: int = 0


@dataclass(slots=True)
class TxOutcome:
    tx: Tx
    status: int
    gas_used: int
    cumulative_gas: int
    logs: tuple[LogEntry, ...]
    bloom: int
    contract_address: bytes | None
    output: bytes | None
    """Revert data of a reverted transaction, else None."""
    effective_gas_price: int


@dataclass(slots=True)
class Execution:
    env: BlockEnv
    parent_state_root: bytes
    outcomes: list[TxOutcome]
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    logs_bloom: bytes
    gas_used: int
    nodes: dict[bytes, bytes] = field(default_factory=dict)
    tries: dict[bytes, mpt.Node] = field(default_factory=dict)


class BlockRunner:
    def __init__(self, env: BlockEnv, source: StateSource, parent_state_root: bytes,
                 ancestors: Iterable[bytes]) -> None:
        self.env = env
        self.parent_state_root = parent_state_root
        context = QbftContext(
            fee_recipient=env.fee_recipient,
            coinbase=Address(env.coinbase),
            timestamp=env.timestamp,
            block_number=BlockNumber(env.number),
            difficulty=1,
            mix_hash=Hash32(BFT_MIX_HASH),
            gas_limit=env.gas_limit,
            prev_hashes=ancestors,
            chain_id=env.chain_id,
            base_fee_per_gas=env.base_fee,
            excess_blob_gas=env.excess_blob_gas,
        )
        self.state = env.fork.state_class(source, context, parent_state_root)  # type: ignore[arg-type]
        self.outcomes: list[TxOutcome] = []
        self.gas_used = 0

    @property
    def gas_left(self) -> int:
        return self.env.gas_limit - self.gas_used

    def apply(self, tx: Tx) -> TxOutcome:
        """Execute ``tx`` at the end of the block; TxInvalid (state unchanged) if it cannot be
        included here."""
        if tx.gas > self.gas_left:
            raise TxInvalid("Transaction gas limit exceeds block gas limit",
                            f"gas limit {tx.gas}, {self.gas_left} gas left in block {self.env.number}")
        if tx.fork != self.env.fork.name:
            raise TxInvalid("Invalid transaction type",
                            f"decoded for {tx.fork}, block {self.env.number} runs {self.env.fork.name}")
        state = self.state
        state.lock_changes()
        computation = state.apply_transaction(tx.tx)
        gas = state.last_gas_used  # type: ignore[attr-defined]
        self.gas_used += gas
        error = computation.is_error
        logs = tuple((bytes(address), tuple(t.to_bytes(32, "big") for t in topics), bytes(data))
                     for address, topics, data in computation.get_log_entries())
        output = None
        if error and isinstance(computation.error, Revert):
            output = bytes(computation.output)
        outcome = TxOutcome(
            tx=tx,
            status=0 if error else 1,
            gas_used=gas,
            cumulative_gas=self.gas_used,
            logs=logs,
            bloom=logs_bloom(logs),
            contract_address=(bytes(generate_contract_address(Address(tx.sender), tx.nonce))
                              if tx.to is None else None),
            output=output,
            effective_gas_price=int(state.get_gas_price(tx.tx)),
        )
        self.outcomes.append(outcome)
        return outcome

    def finish(self) -> Execution:
        state = self.state
        state.lock_changes()
        if self.env.block_reward:
            state.delta_balance(Address(self.env.fee_recipient), self.env.block_reward)
        db = state._account_db  # type: ignore[attr-defined]
        state_root = bytes(db.make_state_root())
        outcomes = self.outcomes
        bloom = 0
        encoded = []
        for o in outcomes:
            bloom |= o.bloom
            encoded.append(encode_receipt(o.tx.type, o.status, o.cumulative_gas,
                                          bloom_bytes(o.bloom), o.logs))
        return Execution(
            env=self.env,
            parent_state_root=self.parent_state_root,
            outcomes=outcomes,
            state_root=state_root,
            transactions_root=mpt.ordered_root([o.tx.raw for o in outcomes]),
            receipts_root=mpt.ordered_root(encoded),
            logs_bloom=bloom_bytes(bloom),
            gas_used=self.gas_used,
            nodes=db.nodes,
            tries=db.tries,
        )
