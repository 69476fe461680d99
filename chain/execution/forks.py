"""The forks a QBFT genesis schedules, as py-evm state classes adjusted to Besu's QBFT rules.

Besu runs a QBFT network's forks with these differences from mainnet, all applied here:

- no block reward unless ``qbft.blockreward`` is set, paid to ``qbft.miningbeneficiary`` (else
  the coinbase) and skipped when zero (``skipZeroBlockRewards``); priority fees go to the same
  beneficiary and an account is not touched for a zero fee;
- ``zeroBaseFee``: the base fee is 0 in every block;
- ``contractSizeLimit`` replaces the EIP-170 limit of deployed code (the EIP-3860 initcode limit
  stays at the fork's default, as Besu only overrides the code size);
- Cancun and Prague on a proof-of-authority chain skip the EIP-4788 beacon-root and EIP-2935
  block-hash system calls and the EIP-7685 request contracts (Besu ``MainnetProtocolSpecs``,
  ``isPoAConsensus``, since 26.1); parentBeaconBlockRoot is zero and requestsHash is the hash
  of no requests;
- Shanghai and later run the Paris EVM, so PREVRANDAO reads the header's mixHash, which in a
  QBFT block is the BFT constant (what Besu's validators see when they import the block).

Transactions are also checked as Besu's ``MainnetTransactionValidator`` does: the upfront cost
``gas * maxFeePerGas + value`` must be covered, and a sender must not be a contract (EIP-3607).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from eth._utils.address import generate_contract_address
from eth.abc import ComputationAPI, MessageAPI, SignedTransactionAPI, StateAPI
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.exceptions import (
    FullStack,
    Halt,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfGas,
)
from eth.vm.execution_context import ExecutionContext
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.cancun.computation import CancunComputation
from eth.vm.forks.cancun.state import CancunState, CancunTransactionExecutor
from eth.vm.forks.london import LondonVM
from eth.vm.forks.london.computation import LondonComputation
from eth.vm.forks.london.state import LondonState, LondonTransactionExecutor
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.forks.prague.state import PragueState, PragueTransactionExecutor
from eth.vm.forks.shanghai import ShanghaiVM
from eth.vm.forks.shanghai.computation import ShanghaiComputation
from eth.vm.forks.shanghai.state import ShanghaiState, ShanghaiTransactionExecutor
from eth.vm.logic.invalid import InvalidOpcode
from eth.vm.message import Message
from eth.vm.opcode import _FastOpcode
from eth_utils.exceptions import ValidationError

from chain.execution.jit import Programs
from chain.execution.precompiles import ECRECOVER_ADDRESS, ecrecover
from chain.execution.statedb import EMPTY_CODE_HASH, StateDB
from chain.qbft.genesis import Genesis, GenesisError

EIP170_LIMIT = 24576
DELEGATION_PREFIX = b"\xef\x01\x00"


class TxInvalid(ValidationError):
    """A transaction that cannot go into a block on this state; ``reason`` is Besu's wording."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class QbftContext(ExecutionContext):
    """py-evm's block context plus where fees and rewards go (``qbft.miningbeneficiary``)."""

    def __init__(self, *, fee_recipient: bytes, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fee_recipient = fee_recipient


_JUMPDESTS: dict[bytes, tuple[set[int], set[int]]] = {}


class _Computation:
    """py-evm computation with the genesis code-size limit and shared jump-destination analysis
    (py-evm analyses a contract's code again in every call; the result depends only on the
    code, so it is kept per code)."""

    contract_size_limit = EIP170_LIMIT
    pyevm_opcodes: dict[int, Any] = {}
    """py-evm's own opcode table of the fork: names and fixed gas for the translator."""
    programs = Programs()
    """Translated code, shared by every fork's computations (kept per opcode table)."""

    def __init__(self, state: Any, message: Any, transaction_context: Any) -> None:
        super().__init__(state, message, transaction_context)  # type: ignore[call-arg]
        code = message.code
        sets = _JUMPDESTS.get(code)
        if sets is None:
            if len(_JUMPDESTS) > 4096:
                _JUMPDESTS.clear()
            sets = _JUMPDESTS[code] = (set(), set())
        stream = self.code  # type: ignore[attr-defined]
        stream.valid_positions, stream.invalid_positions = sets

    @classmethod
    def apply_computation(cls, state: Any, message: Any, transaction_context: Any,
                          parent_computation: Any = None) -> Any:
        """py-evm's ``BaseComputation.apply_computation`` (the same bookkeeping of created
        contracts, initcode gas and precompiles) running code that ran before as translated
        Python (``chain.execution.jit``), and other code with an instruction loop that reads
        the code bytes by program counter instead of through a generator, without py-evm's
        per-opcode debug-logging check."""
        with cast(Any, cls(state, message, transaction_context)) as computation:
            if computation.is_origin_computation:
                computation.contracts_created = []
                if message.is_create:
                    cls.consume_initcode_gas_cost(computation)  # type: ignore[attr-defined]
            if parent_computation is not None:
                computation.contracts_created = parent_computation.contracts_created
            if message.is_create:
                computation.contracts_created.append(message.storage_address)
            precompile = computation.precompiles.get(message.code_address)
            if precompile is not None:
                if not message.is_delegation:
                    precompile(computation)
                return computation
            stream = computation.code
            code = stream._raw_code_bytes
            table = computation.opcodes
            program = cls.programs.get(code, table, cls.pyevm_opcodes) if code else None
            try:
                if program is not None:
                    program.run(computation)
                else:
                    size = len(code)
                    while True:
                        pc = stream.program_counter
                        op = code[pc] if pc < size else 0x00  # past the end is STOP
                        stream.program_counter = pc + 1
                        fn = table.get(op)
                        if fn is None:
                            fn = InvalidOpcode(op)
                        fn(computation)
            except Halt:
                pass
        return computation

    @classmethod
    def validate_contract_code(cls, contract_code: bytes) -> None:
        if len(contract_code) > cls.contract_size_limit:
            raise OutOfGas(f"contract code is {len(contract_code)} bytes, the network's "
                           f"contractSizeLimit is {cls.contract_size_limit}")


class _Executor:
    """py-evm's transaction executor without its second signature recovery (the sender was
    recovered once when the transaction was decoded), without debug strings it formats for
    every transaction, and with Besu's fee payment and sender checks."""

    vm_state: Any

    def validate_transaction(self, tx: SignedTransactionAPI) -> None:
        st = self.vm_state
        sender = tx.sender
        base_fee = st.execution_context.base_fee_per_gas or 0
        max_fee = tx.max_fee_per_gas
        if max_fee < base_fee:
            raise TxInvalid("Gas price below current base fee",
                            f"max fee per gas {max_fee} is below the block's base fee {base_fee}")
        nonce = st.get_nonce(sender)
        if tx.nonce != nonce:
            raise TxInvalid("Nonce too low" if tx.nonce < nonce else "Nonce too high",
                            f"sender 0x{sender.hex()} is at nonce {nonce}, transaction has {tx.nonce}")
        balance = st.get_balance(sender)
        upfront = tx.gas * max_fee + tx.value
        if upfront > balance:
            raise TxInvalid("Upfront cost exceeds account balance",
                            f"transaction costs up to {upfront} wei, 0x{sender.hex()} has {balance}")
        code_hash = st.get_code_hash(sender)
        if code_hash != EMPTY_CODE_HASH and not st.get_code(sender).startswith(DELEGATION_PREFIX):
            raise TxInvalid("Sender account not authorized to send transactions",
                            f"0x{sender.hex()} has code; only externally owned accounts send "
                            "transactions (EIP-3607)")

    def build_evm_message(self, tx: SignedTransactionAPI) -> MessageAPI:
        st = self.vm_state
        sender = tx.sender
        st.delta_balance(sender, -(tx.gas * st.get_gas_price(tx)))
        st.increment_nonce(sender)
        refund_hook = getattr(self, "calc_message_refund", None)
        refund = refund_hook(tx) if refund_hook is not None else 0
        is_delegation = False
        if tx.to == CREATE_CONTRACT_ADDRESS:
            create_address = generate_contract_address(sender, st.get_nonce(sender) - 1)
            data, code = b"", tx.data
        else:
            create_address = None
            data = tx.data
            code_hook = getattr(self, "get_code_at_address", None)
            if code_hook is not None:
                code, delegated = code_hook(tx.to)
                is_delegation = delegated is not None
            else:
                code = st.get_code(tx.to)
        return Message(gas=tx.gas - tx.intrinsic_gas, to=tx.to, sender=sender, value=tx.value,
                       data=data, code=code, create_address=create_address,  # type: ignore[arg-type]
                       refund=refund,
                       is_delegation=is_delegation)

    def finalize_computation(self, tx: SignedTransactionAPI,
                             computation: ComputationAPI) -> ComputationAPI:
        st = self.vm_state
        gas_remaining = computation.get_gas_remaining()
        gas_used = tx.gas - gas_remaining
        gas_refund = self.calculate_gas_refund(computation, gas_used)  # type: ignore[attr-defined]
        floor = self.calc_data_floor_gas(tx, gas_used, gas_refund)  # type: ignore[attr-defined]
        computation.data_floor_gas = floor
        price = st.get_gas_price(tx)
        back = (gas_refund + gas_remaining - floor) * price
        if back:
            st.delta_balance(computation.msg.sender, back)
        charged = gas_used - gas_refund + floor
        st.last_gas_used = charged
        fee = charged * st.get_tip(tx)
        if fee:
            st.delta_balance(st.execution_context.fee_recipient, fee)
        for account in computation.get_accounts_for_deletion():
            st.delete_account(account)
        for touched in set(_touched(computation)):
            if st.account_exists(touched) and st.account_is_empty(touched):
                st.delete_account(touched)
        return computation


_RIPEMD160 = b"\x00" * 19 + b"\x03"


def _touched(c: ComputationAPI, ancestor_error: bool = False) -> Iterator[bytes]:
    """Accounts a transaction touched, for EIP-161 clearing: py-evm's rule (with the RIPEMD-160
    exception of EIP-716) but without the coinbase, which py-evm always counts and Besu does
    not touch for a zero fee."""
    error = c.is_error or ancestor_error
    for beneficiary in c.get_self_destruct_beneficiaries():
        if not error or beneficiary == _RIPEMD160:
            yield beneficiary
    if c.msg.to != CREATE_CONTRACT_ADDRESS and (not error or c.msg.to == _RIPEMD160):
        yield c.msg.to
    for child in c.children:
        yield from _touched(child, error)


class _State:
    """py-evm state over ``StateDB``; ``last_gas_used`` is the gas the last transaction paid."""

    account_db_class = StateDB
    last_gas_used = 0

    def set_system_contracts(self) -> None:
        """QBFT has no system contracts (see the module docstring)."""


@dataclass(frozen=True)
class Fork:
    name: str
    block: int | None
    time: int | None
    vm: type[Any]
    state_class: type[StateAPI]

    @property
    def transaction_builder(self) -> Any:
        return self.vm.get_transaction_builder()

    @property
    def shanghai(self) -> bool:
        return self.name in ("shanghai", "cancun", "prague")

    @property
    def cancun(self) -> bool:
        return self.name in ("cancun", "prague")

    @property
    def prague(self) -> bool:
        return self.name == "prague"

    @property
    def tx_types(self) -> tuple[int, ...]:
        """Transaction types this fork accepts on a QBFT network (no blobs)."""
        return (0, 1, 2, 4) if self.prague else (0, 1, 2)


_PYEVM: dict[str, tuple[type[Any], type[Any], type[Any], type[Any]]] = {
    "london": (LondonVM, LondonState, LondonTransactionExecutor, LondonComputation),
    "shanghai": (ShanghaiVM, ShanghaiState, ShanghaiTransactionExecutor, ShanghaiComputation),
    "cancun": (CancunVM, CancunState, CancunTransactionExecutor, CancunComputation),
    "prague": (PragueVM, PragueState, PragueTransactionExecutor, PragueComputation),
}


def _metered(logic: Callable[..., Any], cost: int, mnemonic: str) -> Callable[..., Any]:
    """A fixed-cost opcode that charges its gas in place: py-evm goes through three calls
    (the opcode, the computation, the gas meter) for every instruction; this is one."""

    def run(computation: Any) -> Any:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            raise OutOfGas(f"Out of gas: Needed {cost} - Remaining {meter.gas_remaining} "
                           f"- Reason: {mnemonic}")
        meter.gas_remaining -= cost
        return logic(computation)

    run.mnemonic = mnemonic  # type: ignore[attr-defined]
    return run


def _charge(computation: Any, cost: int, mnemonic: str) -> None:
    meter = computation._gas_meter
    if cost > meter.gas_remaining:
        raise OutOfGas(f"Out of gas: Needed {cost} - Remaining {meter.gas_remaining} "
                       f"- Reason: {mnemonic}")
    meter.gas_remaining -= cost


def _push(size: int, cost: int, mnemonic: str) -> Callable[..., Any]:
    """PUSHn on py-evm's own stack and code stream, without its three layers of calls (the
    stack holds the pushed bytes, zero-padded on the right at the end of the code, as
    ``eth.vm.logic.stack.push_XX`` leaves them)."""

    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            _charge(computation, cost, mnemonic)
        meter.gas_remaining -= cost
        code = computation.code
        pc = code.program_counter
        raw = code._raw_code_bytes[pc:pc + size]
        code.program_counter = pc + size
        if len(raw) != size:
            raw = raw.ljust(size, b"\x00")
        values = computation._stack.values
        if len(values) > 1023:
            raise FullStack("Stack limit reached")
        values.append(raw)

    return run


def _dup(position: int, cost: int, mnemonic: str) -> Callable[..., Any]:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            _charge(computation, cost, mnemonic)
        meter.gas_remaining -= cost
        values = computation._stack.values
        if len(values) > 1023:
            raise FullStack("Stack limit reached")
        try:
            values.append(values[-position])
        except IndexError:
            raise InsufficientStack(f"Insufficient stack items for DUP{position}") from None

    return run


def _swap(position: int, cost: int, mnemonic: str) -> Callable[..., Any]:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            _charge(computation, cost, mnemonic)
        meter.gas_remaining -= cost
        values = computation._stack.values
        try:
            values[-1], values[-position - 1] = values[-position - 1], values[-1]
        except IndexError:
            raise InsufficientStack(f"Insufficient stack items for SWAP{position}") from None

    return run


def _pop(cost: int, mnemonic: str) -> Callable[..., Any]:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            _charge(computation, cost, mnemonic)
        meter.gas_remaining -= cost
        try:
            computation._stack.values.pop()
        except IndexError:
            raise InsufficientStack("Wanted 1 stack item, had none") from None

    return run


_M = 2**256 - 1
_BINARY: dict[str, Callable[[int, int], int]] = {
    # a is the top of the stack, b the item below it (py-evm's ``stack_pop_ints(2)`` order)
    "ADD": lambda a, b: (a + b) & _M,
    "SUB": lambda a, b: (a - b) & _M,
    "MUL": lambda a, b: (a * b) & _M,
    "DIV": lambda a, b: a // b if b else 0,
    "MOD": lambda a, b: a % b if b else 0,
    "LT": lambda a, b: 1 if a < b else 0,
    "GT": lambda a, b: 1 if a > b else 0,
    "EQ": lambda a, b: 1 if a == b else 0,
    "AND": lambda a, b: a & b,
    "OR": lambda a, b: a | b,
    "XOR": lambda a, b: a ^ b,
    "SHL": lambda a, b: (b << a) & _M if a < 256 else 0,
    "SHR": lambda a, b: b >> a if a < 256 else 0,
}
_UNARY: dict[str, Callable[[int], int]] = {
    "ISZERO": lambda a: 0 if a else 1,
    "NOT": lambda a: _M - a,
}


def _int(x: Any) -> int:
    return x if type(x) is int else int.from_bytes(x, "big")


def _binary(op: Callable[[int, int], int], cost: int, mnemonic: str) -> Callable[..., Any]:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            _charge(computation, cost, mnemonic)
        meter.gas_remaining -= cost
        values = computation._stack.values
        if len(values) < 2:
            raise InsufficientStack(f"Wanted 2 stack items, only had {len(values)}")
        a = values.pop()
        b = values.pop()
        values.append(op(a if type(a) is int else int.from_bytes(a, "big"),
                         b if type(b) is int else int.from_bytes(b, "big")))

    return run


def _unary(op: Callable[[int], int], cost: int, mnemonic: str) -> Callable[..., Any]:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            _charge(computation, cost, mnemonic)
        meter.gas_remaining -= cost
        values = computation._stack.values
        if not values:
            raise InsufficientStack("Wanted 1 stack item, had none")
        a = values.pop()
        values.append(op(a if type(a) is int else int.from_bytes(a, "big")))

    return run


def _jump(conditional: bool, cost: int, mnemonic: str) -> Callable[..., Any]:
    """JUMP and JUMPI with py-evm's checks: the target must be a JUMPDEST that is not PUSH
    data (the analysis is shared per code, see ``_Computation``)."""
    need = 2 if conditional else 1

    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            _charge(computation, cost, mnemonic)
        meter.gas_remaining -= cost
        values = computation._stack.values
        if len(values) < need:
            raise InsufficientStack(f"Wanted 2 stack items, only had {len(values)}" if conditional
                                    else "Wanted 1 stack item, had none")  # py-evm's wording
        dest = _int(values.pop())
        if conditional and not _int(values.pop()):
            return
        code = computation.code
        code.program_counter = dest
        if code.peek() != 0x5B:
            raise InvalidJumpDestination("Invalid Jump Destination")
        if not code.is_valid_opcode(dest):
            raise InvalidInstruction("Jump resulted in invalid instruction")

    return run


def _jumpdest(cost: int, mnemonic: str) -> Callable[..., Any]:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            _charge(computation, cost, mnemonic)
        meter.gas_remaining -= cost

    return run


def _mstore(cost: int, mnemonic: str) -> Callable[..., Any]:
    """MSTORE; memory growth (and its gas) still goes through py-evm's ``extend_memory``."""

    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            _charge(computation, cost, mnemonic)
        meter.gas_remaining -= cost
        values = computation._stack.values
        if len(values) < 2:
            raise InsufficientStack("Wanted 1 stack item, had none")  # py-evm pops one at a time
        start = _int(values.pop())
        value = values.pop()
        word = value.to_bytes(32, "big") if type(value) is int else value.rjust(32, b"\x00")
        memory = computation._memory
        if start + 32 > len(memory._bytes):
            computation.extend_memory(start, 32)
        memory._bytes[start:start + 32] = word

    return run


def _mload(cost: int, mnemonic: str) -> Callable[..., Any]:
    def run(computation: Any) -> None:
        meter = computation._gas_meter
        if cost > meter.gas_remaining:
            _charge(computation, cost, mnemonic)
        meter.gas_remaining -= cost
        values = computation._stack.values
        if not values:
            raise InsufficientStack("Wanted 1 stack item, had none")
        start = _int(values.pop())
        memory = computation._memory
        if start + 32 > len(memory._bytes):
            computation.extend_memory(start, 32)
        values.append(bytes(memory._bytes[start:start + 32]))

    return run


def _fast_opcodes(opcodes: dict[int, Any]) -> dict[int, Any]:
    """py-evm's opcode table with the fixed-cost opcodes charged in place, and the stack
    shuffling, arithmetic, comparison, jump and word memory ones (most of what contracts
    execute) done
    directly on py-evm's stack.
    Checked against stock py-evm by tests/node/execution/test_against_pyevm.py."""
    out: dict[int, Any] = {}
    for code, op in opcodes.items():
        if type(op) is not _FastOpcode:
            out[code] = op
            continue
        name, cost = op.mnemonic, op.gas_cost
        fn: Callable[..., Any]
        if 0x5F <= code <= 0x7F and name == f"PUSH{code - 0x5F}":
            fn = _push(code - 0x5F, cost, name)
        elif 0x80 <= code <= 0x8F and name == f"DUP{code - 0x7F}":
            fn = _dup(code - 0x7F, cost, name)
        elif 0x90 <= code <= 0x9F and name == f"SWAP{code - 0x8F}":
            fn = _swap(code - 0x8F, cost, name)
        elif code == 0x50 and name == "POP":
            fn = _pop(cost, name)
        elif name in _BINARY:
            fn = _binary(_BINARY[name], cost, name)
        elif name in _UNARY:
            fn = _unary(_UNARY[name], cost, name)
        elif name in ("JUMP", "JUMPI"):
            fn = _jump(name == "JUMPI", cost, name)
        elif code == 0x5B and name == "JUMPDEST":
            fn = _jumpdest(cost, name)
        elif code == 0x52 and name == "MSTORE":
            fn = _mstore(cost, name)
        elif code == 0x51 and name == "MLOAD":
            fn = _mload(cost, name)
        else:
            fn = _metered(op.logic_fn, cost, name)
        fn.mnemonic = name  # type: ignore[attr-defined]
        out[code] = fn
    return out


def _state_class(name: str, contract_size_limit: int) -> type[StateAPI]:
    _vm, state, executor, computation = _PYEVM[name]
    title = name.capitalize()
    comp = type(f"Qbft{title}Computation", (_Computation, computation),
                {"contract_size_limit": contract_size_limit,
                 "opcodes": _fast_opcodes(computation.opcodes),
                 "pyevm_opcodes": computation.opcodes,
                 "_precompiles": {**computation.get_precompiles(), ECRECOVER_ADDRESS: ecrecover}})
    exe = type(f"Qbft{title}Executor", (_Executor, executor), {})
    return cast(type[StateAPI], type(f"Qbft{title}State", (_State, state), {
        "computation_class": comp, "transaction_executor_class": exe}))


class ForkSchedule:
    """Which fork rules a block follows, from the genesis config alone."""

    def __init__(self, genesis: Genesis) -> None:
        if genesis.contract_mode:
            raise GenesisError(
                "validator selection by contract (qbft.validatorcontractaddress) is not supported "
                "by this node; use block-header validator selection (list the validators in "
                "extraData and vote with qbft_proposeValidatorVote)")
        if genesis.fork_block("londonBlock") != 0:
            raise GenesisError("this node runs London and later forks only: set config.londonBlock "
                               "to 0 (and every earlier fork block to 0)")
        limit = genesis.contract_size_limit
        if limit is not None and limit <= 0:
            raise GenesisError("config.contractSizeLimit must be a positive number of bytes")
        self.contract_size_limit = limit if limit is not None else EIP170_LIMIT
        forks = [Fork("london", 0, None, LondonVM, _state_class("london", self.contract_size_limit))]
        last_time = 0
        for name in ("shanghai", "cancun", "prague"):
            t = genesis.fork_block(f"{name}Time")
            if t is None:
                continue
            if t < last_time:
                raise GenesisError(f"config.{name}Time {t} is before the previous fork's time "
                                   f"{last_time}; forks must activate in order")
            last_time = t
            forks.append(Fork(name, None, t, _PYEVM[name][0],
                              _state_class(name, self.contract_size_limit)))
        for unsupported in ("osakaTime", "bpo1Time", "amsterdamTime"):
            if genesis.fork_block(unsupported) is not None:
                raise GenesisError(f"config.{unsupported} schedules a fork after Prague, which "
                                   "py-evm 0.12 does not implement; remove it from the genesis")
        self.forks = tuple(forks)

    def at(self, timestamp: int) -> Fork:
        """The fork of a block with this timestamp (London is active from block 0)."""
        current = self.forks[0]
        for fork in self.forks[1:]:
            if fork.time is not None and timestamp >= fork.time:
                current = fork
        return current

