"""The opcodes chain.execution runs on py-evm's stack directly behave exactly as py-evm's own.

Random programs (pushes of random words, stack shuffles, arithmetic, comparisons, shifts,
jumps to good and bad targets, memory words at small and huge offsets, stack underflow,
running out of gas) run as contract code under
our opcode table and under stock py-evm's; the output (the top of the stack at the end), the
error and the gas must match.
"""

from __future__ import annotations

import dataclasses

from eth.vm.forks.cancun.computation import CancunComputation
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.abc import CallRequest
from chain.execution.calls import Simulator
from chain.execution.executor import BlockEnv
from chain.execution.forks import ForkSchedule
from chain.execution.statedb import StateDB, StateSource
from chain.qbft.genesis import Genesis, QbftSettings, build_genesis

SIMPLE = ["ADD", "SUB", "MUL", "DIV", "MOD", "LT", "GT", "EQ", "AND", "OR", "XOR", "SHL", "SHR",
          "ISZERO", "NOT", "POP", "JUMPDEST", "MLOAD", "MSTORE"]
CODES = {"ADD": 0x01, "MUL": 0x02, "SUB": 0x03, "DIV": 0x04, "MOD": 0x06, "LT": 0x10, "GT": 0x11,
         "EQ": 0x14, "ISZERO": 0x15, "AND": 0x16, "OR": 0x17, "XOR": 0x18, "NOT": 0x19,
         "SHL": 0x1B, "SHR": 0x1C, "POP": 0x50, "MLOAD": 0x51, "MSTORE": 0x52, "JUMP": 0x56,
         "JUMPI": 0x57, "JUMPDEST": 0x5B}

words = st.one_of(st.integers(0, 300), st.integers(0, 2**256 - 1),
                  st.sampled_from([2**255, 2**256 - 1, 2**32]))
step = st.one_of(
    st.tuples(st.just("PUSH"), st.integers(0, 32), words),
    st.tuples(st.just("DUP"), st.integers(1, 16)),
    st.tuples(st.just("SWAP"), st.integers(1, 16)),
    st.tuples(st.sampled_from(SIMPLE)),
    st.tuples(st.sampled_from(["JUMP", "JUMPI"]), st.integers(0, 80)),
)


def assemble(steps: list[tuple]) -> bytes:
    code = bytearray()
    for s in steps:
        kind = s[0]
        if kind == "PUSH":
            size, value = s[1], s[2] % (1 << (8 * s[1])) if s[1] else 0
            code += bytes([0x5F + size]) + value.to_bytes(size, "big")
        elif kind == "DUP":
            code.append(0x7F + s[1])
        elif kind == "SWAP":
            code.append(0x8F + s[1])
        elif kind in ("JUMP", "JUMPI"):
            code += bytes([0x60, s[1], CODES[kind]])
        else:
            code.append(CODES[kind])
    # return the top of the stack, so a wrong value shows in the output
    code += bytes([0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xF3])  # MSTORE(0); RETURN(0, 32)
    return bytes(code)


GENESIS = Genesis(build_genesis(chain_id=2026, validators=[b"\x70" * 20], qbft=QbftSettings(),
                                fork="cancun"))
FORK = ForkSchedule(GENESIS).at(10**10)


def _run(state_class: type, code: bytes, gas: int):
    source = StateSource(lambda h: None)
    db = StateDB(source)
    target = b"\x0c" * 20
    db.set_code(target, code)
    db.touch_account(target)
    root = db.make_state_root()
    store = dict(db.nodes)
    source = StateSource(store.get)
    env = BlockEnv(dataclasses.replace(FORK, state_class=state_class), 1, 10**10, b"\x00" * 20,
                   30_000_000, 0, 0, GENESIS.chain_id, b"\x00" * 20)
    sim = Simulator(env, source, root, lambda: iter(()))
    return sim.run(CallRequest(to=target, gas=gas), gas)



@settings(max_examples=80, deadline=None)
@given(st.lists(step, max_size=40), st.integers(21_050, 21_600))
def test_fast_opcodes_match_py_evm(steps, gas):
    ours = FORK.state_class
    stock = type("StockCancunState", (ours,), {"computation_class": CancunComputation})
    assert ours.computation_class.opcodes is not CancunComputation.opcodes
    code = assemble(steps)
    for budget in (gas, 150_000):  # a loop burns whatever it gets; keep that short
        a, a_needed = _run(ours, code, budget)
        b, b_needed = _run(stock, code, budget)
        assert (a.output, a.gas_used, a_needed) == (b.output, b.gas_used, b_needed)
        assert (a.error is None) == (b.error is None)
