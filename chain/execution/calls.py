"""eth_call and eth_estimateGas on the state after a block, in that block's context (as Besu's
``TransactionSimulator``): nothing is stored, the nonce is the sender's own, and without a gas
price the sender needs no balance."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from eth.exceptions import InvalidInstruction, OutOfGas, Revert, StackDepthLimit
from eth.vm.spoof import SpoofTransaction
from eth_typing import Address

from chain.abc import CallRequest, CallResult, TxRejected
from chain.execution.executor import BlockEnv, BlockRunner
from chain.execution.statedb import StateSource

ZERO_ADDRESS = bytes(20)
CALL_GAS_CAP = 50_000_000
"""Gas for a call that names none (geth's RPCGasCap): a runaway loop stops within seconds."""


def _error_text(error: Exception) -> str:
    if isinstance(error, OutOfGas):
        return "out of gas"
    if isinstance(error, InvalidInstruction):
        return "invalid opcode"
    if isinstance(error, StackDepthLimit):
        return "max call depth exceeded"
    return str(error) or type(error).__name__


class Simulator:
    """Runs one call at a time on the state after ``state_root``."""

    def __init__(self, env: BlockEnv, source: StateSource, state_root: bytes,
                 ancestors: Callable[[], Iterable[bytes]]) -> None:
        self.env = env
        self.source = source
        self.state_root = state_root
        self.ancestors = ancestors

    def cap(self, request: CallRequest) -> int:
        cap = min(self.env.gas_limit, CALL_GAS_CAP)
        return cap if request.gas is None else request.gas

    def run(self, request: CallRequest, gas: int) -> tuple[CallResult, int]:
        """The call's result and the gas it needed before refunds."""
        runner = BlockRunner(self.env, self.source, self.state_root, self.ancestors())
        state = runner.state
        sender = request.sender or ZERO_ADDRESS
        price = request.gas_price
        max_fee = request.max_fee_per_gas
        if price is not None:
            max_fee = prio = price
        else:
            max_fee = max_fee or 0
            prio = request.max_priority_fee_per_gas or 0
            if max_fee and prio > max_fee:
                raise TxRejected("Max priority fee per gas exceeds max fee per gas",
                                 f"maxPriorityFeePerGas {prio} > maxFeePerGas {max_fee}")
        if max_fee and max_fee < self.env.base_fee:
            raise TxRejected("Gas price below current base fee",
                             f"max fee per gas {max_fee} < base fee {self.env.base_fee}")
        builder = self.env.fork.transaction_builder
        unsigned = builder.new_unsigned_dynamic_fee_transaction(
            chain_id=self.env.chain_id,
            nonce=state.get_nonce(Address(sender)),
            max_priority_fee_per_gas=prio,
            max_fee_per_gas=max_fee,
            gas=gas,
            to=request.to or b"",
            value=request.value,
            data=request.data,
            access_list=[(a, list(slots)) for a, slots in request.access_list],
        )
        tx: Any = SpoofTransaction(unsigned, from_=sender)
        if unsigned.intrinsic_gas > gas:
            raise TxRejected("Intrinsic gas exceeds gas limit",
                             f"the call needs at least {unsigned.intrinsic_gas} gas, {gas} given")
        upfront = gas * max_fee + request.value
        balance = state.get_balance(Address(sender))
        if upfront > balance:
            raise TxRejected("Upfront cost exceeds account balance",
                             f"the call costs up to {upfront} wei, 0x{sender.hex()} has {balance}")
        executor = state.get_transaction_executor()
        message = executor.build_evm_message(tx)
        computation = executor.build_computation(message, tx)
        needed = gas - computation.get_gas_remaining()
        executor.finalize_computation(tx, computation)
        used = state.last_gas_used  # type: ignore[attr-defined]
        if computation.is_success:
            return CallResult(bytes(computation.output), used), needed
        error = computation.error
        if isinstance(error, Revert):
            return CallResult(bytes(computation.output), used, "execution reverted"), needed
        return CallResult(b"", used, _error_text(error)), needed

    def call(self, request: CallRequest) -> CallResult:
        return self.run(request, self.cap(request))[0]

    def estimate(self, request: CallRequest) -> int:
        """The least gas with which the call succeeds (binary search, as geth and Besu)."""
        hi = self.cap(request)
        result, needed = self.run(request, hi)
        if result.error is not None:
            raise ValueError(result.error if result.error != "execution reverted"
                             else "execution reverted")

        def ok(gas: int) -> bool:
            try:
                return self.run(request, gas)[0].error is None
            except TxRejected:
                return False

        lo = max(needed, 21_000) - 1
        optimistic = (needed + 2_300) * 64 // 63
        if optimistic < hi:
            if ok(optimistic):
                hi = optimistic
            else:
                lo = optimistic
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        return hi
