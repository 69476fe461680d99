"""Contract code translated to Python, one function per basic block, for py-evm computations.

Interpreting EVM code one instruction at a time costs about a microsecond of Python per
instruction (fetch, dispatch, stack list, gas meter), and a CeFiEventLedger ``append`` runs
about 2,400 of them; most are stack shuffles, arithmetic and jumps. A basic block (straight
code between jump destinations and jumps) is translated once per code into a Python function in
which the stack lives in local variables, pushed constants are folded, and fixed gas is charged
in one subtraction. The result is exactly py-evm's:

- gas: the fixed costs of translated instructions are charged together before anything that
  reads the gas left or charges gas of its own (memory growth, SHA3's words, SLOAD, and every
  instruction left to py-evm), and at the end of the block; whatever depends on gas sees the
  amount py-evm's interpreter would show it. A frame short of gas among the translated
  instructions in between fails with OutOfGas at that charge rather than a few stack operations
  later: those operations have no effect outside the frame, and an exceptional halt discards
  the frame and all its gas either way.
- stack: each run of translated instructions first checks that the stack holds the items it
  takes and has room for what it pushes; if not, the run goes through py-evm's interpreter
  instruction by instruction, so underflow and overflow fail where and as py-evm fails.
- everything else (storage writes, logs, calls, creation, return, revert, the other
  environment reads) runs py-evm's own opcode function on py-evm's stack, after the
  translated part of the stack has been written back to it.

Checked against py-evm's interpreter by tests/chain/execution/test_jit.py (random programs,
every translated opcode, jumps, memory, gas exhaustion, stack limits) and by whole blocks of
ledger transactions giving the same state, receipts and gas.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from eth._utils.numeric import ceil32
from eth.exceptions import InvalidInstruction, InvalidJumpDestination, OutOfGas
from eth.vm.forks.berlin.logic import _mark_storage_warm, sload_eip2929
from eth.vm.logic import block, context, flow
from eth.vm.logic.invalid import InvalidOpcode
from eth.vm.logic.sha3 import sha3
from eth.vm.opcode import _FastOpcode
from eth_hash.auto import keccak

M = 2**256 - 1
S = 2**255
STACK_LIMIT = 1024

# a: the top of the stack, b: the item below it (py-evm's pop order)
_BINARY: dict[str, tuple[str, Callable[[int, int], int]]] = {
    "ADD": ("({a} + {b}) & M", lambda a, b: (a + b) & M),
    "SUB": ("({a} - {b}) & M", lambda a, b: (a - b) & M),
    "MUL": ("({a} * {b}) & M", lambda a, b: (a * b) & M),
    "DIV": ("{a} // {b} if {b} else 0", lambda a, b: a // b if b else 0),
    "MOD": ("{a} % {b} if {b} else 0", lambda a, b: a % b if b else 0),
    "LT": ("1 if {a} < {b} else 0", lambda a, b: 1 if a < b else 0),
    "GT": ("1 if {a} > {b} else 0", lambda a, b: 1 if a > b else 0),
    # two's complement order is unsigned order with the sign bit flipped
    "SLT": ("1 if ({a} ^ S) < ({b} ^ S) else 0", lambda a, b: 1 if (a ^ S) < (b ^ S) else 0),
    "SGT": ("1 if ({a} ^ S) > ({b} ^ S) else 0", lambda a, b: 1 if (a ^ S) > (b ^ S) else 0),
    "EQ": ("1 if {a} == {b} else 0", lambda a, b: 1 if a == b else 0),
    "AND": ("{a} & {b}", lambda a, b: a & b),
    "OR": ("{a} | {b}", lambda a, b: a | b),
    "XOR": ("{a} ^ {b}", lambda a, b: a ^ b),
    "BYTE": ("({b} >> (248 - 8 * {a})) & 255 if {a} < 32 else 0",
             lambda a, b: (b >> (248 - 8 * a)) & 255 if a < 32 else 0),
    "SHL": ("({b} << {a}) & M if {a} < 256 else 0", lambda a, b: (b << a) & M if a < 256 else 0),
    "SHR": ("{b} >> {a} if {a} < 256 else 0", lambda a, b: b >> a if a < 256 else 0),
}
_UNARY: dict[str, tuple[str, Callable[[int], int]]] = {
    "ISZERO": ("0 if {a} else 1", lambda a: 0 if a else 1),
    "NOT": ("M ^ {a}", lambda a: M ^ a),
}
_CONTEXT = {
    # what py-evm's opcode pushes (addresses as numbers: the stack holds words either way)
    "ADDRESS": "I(c.msg.storage_address)", "ORIGIN": "I(c.transaction_context.origin)",
    "CALLER": "I(c.msg.sender)", "CALLVALUE": "c.msg.value", "CALLDATASIZE": "len(c.msg.data)",
    "CODESIZE": "len(c.code)", "GASPRICE": "c.transaction_context.gas_price",
    "RETURNDATASIZE": "len(c.return_data)", "COINBASE": "I(c.state.coinbase)",
    "TIMESTAMP": "c.state.timestamp", "NUMBER": "c.state.block_number",
    "BASEFEE": "c.state.base_fee", "CHAINID": "c.state.execution_context.chain_id",
}
_EFFECTS: dict[str, tuple[int, int]] = {
    **{name: (2, 1) for name in _BINARY}, **{name: (1, 1) for name in _UNARY},
    **{name: (0, 1) for name in _CONTEXT},
    "PC": (0, 1), "POP": (1, 0), "JUMPDEST": (0, 0), "JUMP": (1, 0), "JUMPI": (2, 0),
    "MLOAD": (1, 1), "MSTORE": (2, 0), "MSTORE8": (2, 0), "CALLDATALOAD": (1, 1),
    "SHA3": (2, 1), "SLOAD": (1, 1), "GAS": (0, 1), "CALLDATACOPY": (3, 0),
}
"""(items taken, items pushed) of the instructions translated here; PUSH, DUP and SWAP aside."""
_END_BYTES = frozenset({0x00, 0x56, 0x57, 0xF3, 0xFD, 0xFE, 0xFF})
_UNDEFINED = "UNDEFINED"


_LOGIC = {
    "SHA3": sha3, "SLOAD": sload_eip2929, "GAS": flow.gas, "CALLDATACOPY": context.calldatacopy,
    "CALLDATALOAD": context.calldataload, "ADDRESS": context.address, "ORIGIN": context.origin,
    "CALLER": context.caller, "CALLVALUE": context.callvalue,
    "CALLDATASIZE": context.calldatasize, "CODESIZE": context.codesize,
    "GASPRICE": context.gasprice, "RETURNDATASIZE": context.returndatasize,
    "COINBASE": block.coinbase, "TIMESTAMP": block.timestamp, "NUMBER": block.number,
    "BASEFEE": block.basefee, "CHAINID": context.chain_id,
}
"""Instructions that read the environment or charge gas of their own are translated only when
the fork runs exactly this py-evm logic for them."""


def _translatable(op: Any, name: str) -> bool:
    if type(op) is not _FastOpcode:  # py-evm's own classes (calls, creates...) stay py-evm's
        return False
    if name in _LOGIC:
        return op.logic_fn is _LOGIC[name]
    return name in _EFFECTS or name.startswith(("PUSH", "DUP", "SWAP"))


class _Op:
    __slots__ = ("arg", "byte", "cost", "name", "pc", "translated", "width")

    def __init__(self, pc: int, byte: int, name: str, cost: int, arg: int | None, width: int,
                 translated: bool = False) -> None:
        self.pc, self.byte, self.name, self.cost, self.arg, self.width = pc, byte, name, cost, arg, width
        self.translated = translated


def basic_blocks(code: bytes, opcodes: dict[int, Any]) -> tuple[list[list[_Op]], set[int]]:
    """The code's basic blocks and its valid jump destinations (JUMPDEST bytes that are not
    PUSH data). ``opcodes`` is the fork's py-evm table: it names each byte and its fixed gas."""
    ops: list[_Op] = []
    jumpdests: set[int] = set()
    pc, size = 0, len(code)
    while pc < size:
        byte = code[pc]
        op = opcodes.get(byte)
        if op is None:
            ops.append(_Op(pc, byte, _UNDEFINED, 0, None, 1))
            pc += 1
            continue
        name = getattr(op, "mnemonic", None) or f"0x{byte:02x}"
        arg, width = None, 1
        if 0x60 <= byte <= 0x7F:  # PUSHn data past the end of the code reads as zeros
            n = byte - 0x5F
            arg, width = int.from_bytes(code[pc + 1:pc + 1 + n].ljust(n, b"\x00"), "big"), 1 + n
        elif byte == 0x5F:
            arg = 0
        if name == "JUMPDEST":
            jumpdests.add(pc)
        ops.append(_Op(pc, byte, name, int(getattr(op, "gas_cost", 0) or 0), arg, width,
                       _translatable(op, name)))
        pc += width
    blocks: list[list[_Op]] = []
    current: list[_Op] = []
    for op in ops:
        if op.name == "JUMPDEST" and current:
            blocks.append(current)
            current = []
        current.append(op)
        if op.byte in _END_BYTES or op.name == _UNDEFINED:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks, jumpdests


def _bounds(run: list[_Op]) -> tuple[int, int, int]:
    """(entry items taken or swapped, entry items read, most items added) by a run of
    translated instructions, counted from the stack as the run finds it."""
    h = taken = read = grow = 0
    for op in run:
        name = op.name
        if name.startswith("DUP"):
            k = int(name[3:])
            read = max(read, k - h)
            h += 1
        elif name.startswith("SWAP"):
            k = int(name[4:])
            taken = max(taken, k + 1 - h)
            read = max(read, k + 1 - h)
        elif name.startswith("PUSH"):
            h += 1
        else:
            pops, pushes = _EFFECTS[name]
            h -= pops
            taken = max(taken, -h)
            read = max(read, -h)
            h += pushes
        grow = max(grow, h)
    return taken, read, grow


class _Writer:
    """Python source for one code's blocks."""

    def __init__(self, code_size: int, jumpdests: set[int], starts: set[int]) -> None:
        self.code_size = code_size
        self.jumpdests = jumpdests
        self.starts = starts
        self.lines: list[str] = []
        self.names = 0

    def var(self) -> str:
        self.names += 1
        return f"v{self.names}"

    def emit(self, line: str) -> None:
        self.lines.append("    " + line)

    def block_at(self, pc: int) -> str:
        if pc >= self.code_size:
            return "STOP"
        return f"B{pc}" if pc in self.starts else f"at({pc})"

    def jump(self, dest: tuple[str, Any]) -> str:
        if dest[0] == "k":
            return f"B{dest[1]}" if dest[1] in self.jumpdests else f"bad({dest[1]})"
        return f"(J.get({dest[1]}) or bad({dest[1]}))"

    def block(self, ops: list[_Op]) -> None:
        self.lines.append(f"def B{ops[0].pc}(c, s, m):")
        runs: list[tuple[list[_Op], _Op | None]] = []
        run: list[_Op] = []
        for op in ops:
            if op.translated:
                run.append(op)
            else:
                runs.append((run, op))
                run = []
        if run or not runs:
            runs.append((run, None))
        left = len(ops)
        end = ops[-1].pc + ops[-1].width
        for run, call in runs:
            _Run(self, run, call, left, end).write()
            left -= len(run) + (call is not None)


class _Run:
    """A run of translated instructions and the py-evm instruction after it, if any."""

    def __init__(self, w: _Writer, ops: list[_Op], call: _Op | None, left: int, end: int) -> None:
        self.w, self.ops, self.call, self.left, self.end = w, ops, call, left, end
        self.stack: list[tuple[str, Any]] = []  # ("k", constant) or ("v", local name)
        self.pending = 0  # fixed gas of translated instructions not yet charged
        self.deep: dict[int, str] = {}  # stack index read in place -> local name

    def value(self, item: tuple[str, Any]) -> str:
        return str(item[1])

    def pop(self) -> tuple[str, Any]:
        return self.stack.pop()

    def push_var(self, expression: str) -> None:
        name = self.w.var()
        self.w.emit(f"{name} = {expression}")
        self.stack.append(("v", name))

    def charge(self) -> None:
        if self.pending:
            self.w.emit(f"g = m.gas_remaining - {self.pending}")
            self.w.emit(f"if g < 0: oog({self.pending})")
            self.w.emit("m.gas_remaining = g")
            self.pending = 0

    def spill(self) -> None:
        """Write the translated part of the stack back onto py-evm's stack."""
        if len(self.stack) == 1:
            self.w.emit(f"s.append({self.value(self.stack[0])})")
        elif self.stack:
            self.w.emit(f"s.extend(({', '.join(self.value(x) for x in self.stack)}))")
        self.stack.clear()

    def memory(self, offset: str, size: int | str) -> None:
        """``mb``: the memory, grown (and its growth charged, with the meter as the interpreter
        would have it) to cover ``size`` bytes at ``offset``."""
        w = self.w
        w.emit("mb = c._memory._bytes")
        w.emit(f"if {offset} + {size} > len(mb): mb = grow(c, m, {offset}, {size}, {self.pending})")

    def write(self) -> None:
        w = self.w
        taken, read, grow = _bounds(self.ops)
        first = self.ops[0].pc if self.ops else (self.call.pc if self.call else self.end)
        checks = ([f"len(s) < {read}"] if read else []) + (
            [f"len(s) > {STACK_LIMIT - grow}"] if grow else [])
        if checks:
            w.emit(f"if {' or '.join(checks)}: return slow(c, {first}, {self.left})")
        if taken:
            names = [w.var() for _ in range(taken)]
            w.emit(f"{', '.join(names)}{',' if taken == 1 else ''} = s[-{taken}:]")
            w.emit(f"del s[-{taken}:]")
            for name in names:
                w.emit(f"if {name}.__class__ is not int: {name} = I({name})")
            self.stack = [("v", name) for name in names]
        for op in self.ops:
            if self.translate(op):
                return
        self.charge()
        self.spill()
        call = self.call
        if call is None:
            w.emit(f"return {w.block_at(self.end)}")
            return
        if call.name == _UNDEFINED:
            w.emit(f"undefined(c, {call.byte})")
        elif call.byte in (0x56, 0x57):  # py-evm's own jump: it moves the program counter
            w.emit(f"c.code.program_counter = {call.pc + 1}")
            w.emit(f"T[{call.byte}](c)")
            w.emit("return at(c.code.program_counter)")
        else:
            w.emit(f"T[{call.byte}](c)")
            if call.byte in _END_BYTES or self.left == len(self.ops) + 1:
                # the block ends here: at an instruction that ends blocks, or (the next one is a
                # jump destination) at one that falls through to the next block
                w.emit(f"return {w.block_at(call.pc + 1)}")

    def translate(self, op: _Op) -> bool:
        """Write ``op``; True if it ended the block."""
        w = self.w
        self.pending += op.cost
        name = op.name
        stack = self.stack
        if name.startswith("PUSH"):
            stack.append(("k", op.arg))
        elif name == "PC":
            stack.append(("k", op.pc))
        elif name.startswith("DUP"):
            k = int(name[3:])
            if k <= len(stack):
                stack.append(stack[-k])
            else:
                index = k - len(stack)  # below the translated part: py-evm's stack, in place
                local = self.deep.get(index)
                if local is None:
                    local = self.deep[index] = w.var()
                    w.emit(f"{local} = s[-{index}]")
                    w.emit(f"if {local}.__class__ is not int: {local} = I({local})")
                stack.append(("v", local))
        elif name.startswith("SWAP"):
            k = int(name[4:])
            stack[-1], stack[-k - 1] = stack[-k - 1], stack[-1]
        elif name == "POP":
            stack.pop()
        elif name == "JUMPDEST":
            pass
        elif name in _BINARY:
            a, b = self.pop(), self.pop()
            if a[0] == "k" and b[0] == "k":
                stack.append(("k", _BINARY[name][1](a[1], b[1])))
            else:
                self.push_var(_BINARY[name][0].format(a=self.value(a), b=self.value(b)))
        elif name in _UNARY:
            a = self.pop()
            if a[0] == "k":
                stack.append(("k", _UNARY[name][1](a[1])))
            else:
                self.push_var(_UNARY[name][0].format(a=self.value(a)))
        elif name in _CONTEXT:
            self.push_var(_CONTEXT[name])
        elif name == "CALLDATALOAD":
            at = self.value(self.pop())
            self.push_var(f"I(bytes(c.msg.data[{at}:{at} + 32]).ljust(32, ZERO))")
        elif name == "MLOAD":
            at = self.value(self.pop())
            self.memory(at, 32)
            self.push_var(f"I(mb[{at}:{at} + 32])")
        elif name == "MSTORE":
            at, word = self.value(self.pop()), self.pop()
            self.memory(at, 32)
            data = repr(word[1].to_bytes(32)) if word[0] == "k" else f"{word[1]}.to_bytes(32)"
            w.emit(f"mb[{at}:{at} + 32] = {data}")
        elif name == "MSTORE8":
            at, byte = self.value(self.pop()), self.value(self.pop())
            self.memory(at, 1)
            w.emit(f"mb[{at}] = {byte} & 255")
        elif name == "SHA3":
            at, size = self.value(self.pop()), self.value(self.pop())
            self.charge()
            self.push_var(f"sha3(c, m, {at}, {size})")
        elif name == "SLOAD":
            slot = self.value(self.pop())
            self.charge()
            self.push_var(f"sload(c, m, {slot})")
        elif name == "GAS":
            self.charge()
            self.push_var("m.gas_remaining")
        elif name == "CALLDATACOPY":
            at, start, size = self.value(self.pop()), self.value(self.pop()), self.value(self.pop())
            self.charge()
            w.emit(f"calldatacopy(c, m, {at}, {start}, {size})")
        elif name == "JUMP":
            dest = self.pop()
            self.charge()
            self.spill()
            w.emit(f"return {w.jump(dest)}")
            return True
        elif name == "JUMPI":
            dest, cond = self.pop(), self.pop()
            self.charge()
            self.spill()
            fall = w.block_at(op.pc + 1)
            if cond[0] == "k":
                w.emit(f"return {w.jump(dest) if cond[1] else fall}")
            else:
                w.emit(f"if {cond[1]}: return {w.jump(dest)}")
                w.emit(f"return {fall}")
            return True
        else:
            raise AssertionError(f"{name} is not translated")
        return False


def _grow(c: Any, m: Any, offset: int, size: int, pending: int) -> bytearray:
    """``BaseComputation.extend_memory`` for a meter still owing ``pending`` fixed gas."""
    before = ceil32(len(c._memory._bytes))
    after = ceil32(offset + size)
    words_before, words_after = before // 32, after // 32
    fee = (3 * words_after + words_after * words_after // 512) - (
        3 * words_before + words_before * words_before // 512)
    if fee > 0:
        if fee > m.gas_remaining - pending:
            raise OutOfGas(f"Out of gas: Needed {fee} - Remaining {m.gas_remaining - pending} - "
                           f"Reason: Expanding memory {before} -> {after}")
        m.gas_remaining -= fee
    c._memory.extend(offset, size)
    memory: bytearray = c._memory._bytes
    return memory


def _sha3(c: Any, m: Any, offset: int, size: int) -> int:
    """``eth.vm.logic.sha3.sha3`` (its fixed cost already charged)."""
    if size:
        memory = c._memory._bytes
        if offset + size > len(memory):
            memory = _grow(c, m, offset, size, 0)
        data = bytes(memory[offset:offset + size])
    else:
        data = b""
    fee = 6 * (ceil32(size) // 32)
    if fee > m.gas_remaining:
        raise OutOfGas(f"Out of gas: Needed {fee} - Remaining {m.gas_remaining} - Reason: SHA3: "
                       "word gas cost")
    m.gas_remaining -= fee
    return int.from_bytes(keccak(data))


def _calldatacopy(c: Any, m: Any, at: int, start: int, size: int) -> None:
    """``eth.vm.logic.context.calldatacopy`` (its fixed cost already charged)."""
    memory = c._memory._bytes
    if size and at + size > len(memory):
        memory = _grow(c, m, at, size, 0)
    fee = 3 * (ceil32(size) // 32)
    if fee > m.gas_remaining:
        raise OutOfGas(f"Out of gas: Needed {fee} - Remaining {m.gas_remaining} - Reason: "
                       "CALLDATACOPY fee")
    m.gas_remaining -= fee
    if size:
        memory[at:at + size] = bytes(c.msg.data[start:start + size]).ljust(size, b"\x00")


def _sload(c: Any, m: Any, slot: int) -> int:
    """``eth.vm.forks.berlin.logic.sload_eip2929``."""
    fee = 2100 if _mark_storage_warm(c, slot) else 100
    if fee > m.gas_remaining:
        raise OutOfGas(f"Out of gas: Needed {fee} - Remaining {m.gas_remaining} - Reason: SLOAD")
    m.gas_remaining -= fee
    value: int = c.state.get_storage(address=c.msg.storage_address, slot=slot)
    return value


def _oog(amount: int) -> None:
    raise OutOfGas(f"Out of gas: Needed {amount} for a run of stack and arithmetic instructions")


def _undefined(c: Any, byte: int) -> None:
    InvalidOpcode(byte)(c)


class Program:
    """One code's blocks as Python functions, for one fork's opcode table.

    ``table`` is the opcode table the computation runs (py-evm's, or one with the same
    semantics); ``opcodes`` is py-evm's own table of that fork, which names the instructions
    and gives their fixed gas.
    """

    def __init__(self, code: bytes, table: dict[int, Any], opcodes: dict[int, Any]) -> None:
        blocks, jumpdests = basic_blocks(code, opcodes)
        starts = {b[0].pc for b in blocks}
        writer = _Writer(len(code), jumpdests, starts)
        for ops in blocks:
            writer.block(ops)
        self.source = "\n".join(writer.lines)
        by_pc: dict[int, Callable[..., Any]] = {}

        def stop(c: Any, s: Any, m: Any) -> Any:
            table[0x00](c)
            raise AssertionError("STOP did not halt")

        def at(pc: int) -> Callable[..., Any]:
            fn = by_pc.get(pc)
            if fn is not None:
                return fn
            if pc >= len(code):
                return stop
            raise AssertionError(f"no block starts at {pc}")

        def bad(dest: int) -> Any:
            if dest < len(code) and code[dest] == 0x5B:
                raise InvalidInstruction("Jump resulted in invalid instruction")
            raise InvalidJumpDestination("Invalid Jump Destination")

        def slow(c: Any, pc: int, count: int) -> Callable[..., Any]:
            """Run ``count`` instructions from ``pc`` through the interpreter's table."""
            stream = c.code
            stream.program_counter = pc
            raw = stream._raw_code_bytes
            size = len(raw)
            for _ in range(count):
                p = stream.program_counter
                byte = raw[p] if p < size else 0x00
                stream.program_counter = p + 1
                fn = table.get(byte)
                if fn is None:
                    fn = InvalidOpcode(byte)
                fn(c)
            return at(stream.program_counter)

        names: dict[str, Any] = {
            "M": M, "S": S, "I": int.from_bytes, "ZERO": b"\x00", "T": table, "STOP": stop,
            "at": at, "bad": bad, "slow": slow, "oog": _oog, "grow": _grow, "sha3": _sha3,
            "sload": _sload, "calldatacopy": _calldatacopy, "undefined": _undefined,
        }
        exec(compile(self.source, f"<EVM code, {len(code)} bytes>", "exec"), names)
        for pc in starts:
            by_pc[pc] = names[f"B{pc}"]
        names["J"] = {pc: by_pc[pc] for pc in jumpdests}
        self.entry: Callable[..., Any] = by_pc.get(0, stop)

    def run(self, c: Any) -> None:
        """Run the computation's code from the start until it halts (py-evm's Halt, or an
        error, propagates to the caller as from the interpreter)."""
        block = self.entry
        s = c._stack.values
        m = c._gas_meter
        while True:
            block = block(c, s, m)


class Programs:
    """Translated code by (opcode table, code). Code is interpreted the first ``runs_before``
    times it runs and translated after: a constructor that runs once is not worth translating."""

    def __init__(self, runs_before: int = 1, size: int = 256) -> None:
        self._programs: OrderedDict[tuple[int, bytes], Program] = OrderedDict()
        self._seen: dict[tuple[int, bytes], int] = {}
        self._runs_before = runs_before
        self._size = size

    def get(self, code: bytes, table: dict[int, Any], opcodes: dict[int, Any]) -> Program | None:
        key = (id(table), code)
        program = self._programs.get(key)
        if program is not None:
            self._programs.move_to_end(key)
            return program
        runs = self._seen.get(key, 0)
        if runs < self._runs_before:
            if len(self._seen) > 4 * self._size:
                self._seen.clear()
            self._seen[key] = runs + 1
            return None
        program = self._programs[key] = Program(code, table, opcodes)
        self._seen.pop(key, None)
        if len(self._programs) > self._size:
            self._programs.popitem(last=False)
        return program
