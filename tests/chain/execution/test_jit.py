"""Translated code (chain.execution.jit) behaves exactly as py-evm's interpreter.

Random programs mixing every translated instruction with instructions left to py-evm (storage
writes, GAS, EXP, SAR, ADDRESS), jumps to good and bad targets, memory at small and huge
offsets, hashing, storage reads, stack underflow and overflow, and gas budgets that run out
anywhere, run three ways: under stock py-evm, under our interpreter and translated; the output,
gas used, gas needed and error text (what eth_call shows) must agree. Whole blocks of
CeFiEventLedger appends, batches and refused records end in the same roots, receipts and gas
translated or interpreted; our ecrecover precompile answers as py-evm's does.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from coincurve import PrivateKey
from eth.precompiles.ecrecover import ecrecover as pyevm_ecrecover
from eth.vm.forks.cancun.computation import CancunComputation
from eth.vm.message import Message
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import fastrlp
from chain.abc import AttestedEvent, CallRequest, LedgerDomain
from chain.attest import Eip712Scheme
from chain.attest.keys import LocalSigner
from chain.execution.calls import Simulator
from chain.execution.executor import BlockEnv, BlockRunner
from chain.execution.forks import ForkSchedule
from chain.execution.jit import Programs, basic_blocks
from chain.execution.precompiles import SECP256K1_N, ecrecover
from chain.execution.statedb import StateDB, StateSource
from chain.execution.txs import decode
from chain.ledger import canonical_delta, data_hash, onchain
from chain.qbft.genesis import Genesis, QbftSettings, build_genesis

ROOT = Path(__file__).resolve().parents[3]

OPS = {"ADD": 0x01, "MUL": 0x02, "SUB": 0x03, "DIV": 0x04, "MOD": 0x06, "EXP": 0x0A,
       "LT": 0x10, "GT": 0x11, "SLT": 0x12, "SGT": 0x13, "EQ": 0x14, "ISZERO": 0x15,
       "AND": 0x16, "OR": 0x17, "XOR": 0x18, "NOT": 0x19, "BYTE": 0x1A, "SHL": 0x1B,
       "SHR": 0x1C, "SAR": 0x1D, "SHA3": 0x20, "ADDRESS": 0x30, "ORIGIN": 0x32, "CALLER": 0x33,
       "CALLVALUE": 0x34, "CALLDATALOAD": 0x35, "CALLDATASIZE": 0x36, "CALLDATACOPY": 0x37,
       "CODESIZE": 0x38, "GASPRICE": 0x3A, "RETURNDATASIZE": 0x3D, "COINBASE": 0x41,
       "TIMESTAMP": 0x42, "NUMBER": 0x43, "CHAINID": 0x46, "SELFBALANCE": 0x47, "BASEFEE": 0x48,
       "POP": 0x50, "MLOAD": 0x51, "MSTORE": 0x52,
       "MSTORE8": 0x53, "SLOAD": 0x54, "SSTORE": 0x55, "JUMP": 0x56, "JUMPI": 0x57, "PC": 0x58,
       "MSIZE": 0x59, "GAS": 0x5A, "JUMPDEST": 0x5B}
PLAIN = sorted(OPS)

words = st.one_of(st.integers(0, 300), st.integers(0, 2**256 - 1),
                  st.sampled_from([2**255, 2**256 - 1, 2**32, 31, 32, 33, 255, 256]))
small = st.integers(0, 200)
step = st.one_of(
    st.tuples(st.just("PUSH"), st.integers(0, 32), words),
    st.tuples(st.just("DUP"), st.integers(1, 16)),
    st.tuples(st.just("SWAP"), st.integers(1, 16)),
    st.tuples(st.sampled_from(PLAIN)),
    # memory, hashing and storage at offsets that mostly stay small
    st.tuples(st.sampled_from(["MLOAD", "MSTORE", "MSTORE8", "SHA3", "SLOAD", "SSTORE",
                               "CALLDATALOAD", "CALLDATACOPY"]), small, small),
    st.tuples(st.sampled_from(["JUMP", "JUMPI"]), st.integers(0, 120)),
    # an instruction left to py-evm right before a jump destination: the block falls through
    st.tuples(st.just("FALL"), st.sampled_from(["SSTORE", "EXP", "SAR", "SELFBALANCE", "MSIZE"])),
)


def assemble(steps: list[tuple[Any, ...]]) -> bytes:
    code = bytearray()
    for s in steps:
        kind = s[0]
        if kind == "PUSH":
            size = s[1]
            value = s[2] % (1 << (8 * size)) if size else 0
            code += bytes([0x5F + size]) + value.to_bytes(size, "big")
        elif kind == "DUP":
            code.append(0x7F + s[1])
        elif kind == "SWAP":
            code.append(0x8F + s[1])
        elif kind == "FALL":
            code += bytes([0x60, 0x02, 0x60, 0x03, OPS[s[1]], 0x5B])
        elif kind in ("JUMP", "JUMPI") and len(s) == 2:
            code += bytes([0x60, s[1], OPS[kind]])
        elif len(s) == 3:  # small operands pushed, then the instruction
            if kind == "CALLDATACOPY":  # size, calldata offset, memory offset
                code += bytes([0x60, s[2] % 70, 0x60, s[2], 0x60, s[1]])
            else:
                code += bytes([0x60, s[2], 0x60, s[1]])
            code.append(OPS[kind])
        else:
            code.append(OPS[kind])
    # return the top of the stack, so a wrong value shows in the output
    code += bytes([0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xF3])  # MSTORE(0); RETURN(0, 32)
    return bytes(code)


GENESIS = Genesis(build_genesis(chain_id=2026, validators=[b"\x70" * 20], qbft=QbftSettings(),
                                fork="cancun"))
FORK = ForkSchedule(GENESIS).at(10**10)
OURS = FORK.state_class
STOCK = type("StockCancunState", (OURS,), {"computation_class": CancunComputation})
TRANSLATED = type("TranslatedCancunState", (OURS,), {"computation_class": type(
    "TranslatedComputation", (OURS.computation_class,), {"programs": Programs(runs_before=0)})})
INTERPRETED = type("InterpretedCancunState", (OURS,), {"computation_class": type(
    "InterpretedComputation", (OURS.computation_class,), {"programs": Programs(runs_before=10**9)})})
TARGET = b"\x0c" * 20


def run(state_class: type, code: bytes, gas: int, data: bytes = b"") -> tuple[Any, int]:
    db = StateDB(StateSource(lambda h: None))
    db.set_code(TARGET, code)
    db.touch_account(TARGET)
    db.set_storage(TARGET, 7, 123)
    root = db.make_state_root()
    store = dict(db.nodes)
    env = BlockEnv(dataclasses.replace(FORK, state_class=state_class), 1, 10**10, b"\x00" * 20,
                   30_000_000, 0, 0, GENESIS.chain_id, b"\x00" * 20)
    sim = Simulator(env, StateSource(store.get), root, lambda: iter(()))
    return sim.run(CallRequest(to=TARGET, gas=gas, data=data), gas)


def agree(code: bytes, gas: int, data: bytes = b"") -> tuple[Any, int]:
    want = run(STOCK, code, gas, data)
    assert run(INTERPRETED, code, gas, data) == want
    assert run(TRANSLATED, code, gas, data) == want
    return want


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=50), st.integers(21_000, 23_000), st.binary(max_size=80))
def test_translated_programs_match_py_evm(steps, gas, data):
    code = assemble(steps)
    agree(code, gas + 16 * len(data), data)  # often short of gas somewhere
    agree(code, 200_000, data)


ARITHMETIC = ["ADD", "MUL", "SUB", "DIV", "MOD", "LT", "GT", "SLT", "SGT", "EQ", "AND", "OR",
              "XOR", "BYTE", "SHL", "SHR", "ISZERO", "NOT"]


@settings(max_examples=250, deadline=None)
@given(st.sampled_from(ARITHMETIC), words, words)
def test_each_translated_operation_computes_what_py_evm_computes(name, a, b):
    ret = bytes([0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xF3])
    # operands read from calldata (translated as expressions) and pushed (folded when translated)
    loaded = bytes([0x60, 0x20, 0x35, 0x60, 0x00, 0x35, OPS[name]]) + ret
    pushed = b"\x7f" + b.to_bytes(32) + b"\x7f" + a.to_bytes(32) + bytes([OPS[name]]) + ret
    agree(loaded, 100_000, a.to_bytes(32) + b.to_bytes(32))
    agree(pushed, 100_000)


def test_a_block_ending_in_a_py_evm_instruction_falls_through_to_the_next():
    # PUSH1 1 PUSH1 0 SSTORE JUMPDEST PUSH1 7: SSTORE is py-evm's, the JUMPDEST starts a block
    code = bytes([0x60, 0x01, 0x60, 0x00, 0x55, 0x5B, 0x60, 0x07, 0x60, 0x00, 0x52, 0x60, 0x20,
                  0x60, 0x00, 0xF3])
    result, _ = agree(code, 100_000)
    assert result.error is None and int.from_bytes(result.output) == 7


def test_stack_overflow_fails_where_py_evm_fails():
    # JUMPDEST PUSH1 1 PUSH1 0 JUMP: pushes forever, until the 1025th item
    result, _ = agree(bytes([0x5B, 0x60, 0x01, 0x60, 0x00, 0x56]), 1_000_000)
    assert result.error == "Stack limit reached"


def test_stack_underflow_fails_where_py_evm_fails():
    result, _ = agree(bytes([0x60, 0x01, 0x01]), 100_000)  # PUSH1 1 ADD
    assert result.error is not None and "stack" in result.error.lower()


def test_jump_into_push_data_is_an_invalid_instruction():
    # PUSH1 3 JUMP PUSH1 0x5b: byte 3 is a JUMPDEST byte inside PUSH data
    result, _ = agree(bytes([0x60, 0x04, 0x56, 0x60, 0x5B, 0x00]), 100_000)
    assert result.error == "invalid opcode"


def test_memory_at_a_huge_offset_runs_out_of_gas():
    code = bytes([0x60, 0x01, 0x7F]) + b"\xff" * 32 + bytes([0x52, 0x00])  # MSTORE(2**256-1, 1)
    result, _ = agree(code, 100_000)
    assert result.error == "out of gas"


def test_gas_seen_by_gas_instruction_is_exact():
    # PUSH1 1 PUSH1 2 ADD POP GAS: GAS reads what is left after the fixed costs before it
    code = bytes([0x60, 0x01, 0x60, 0x02, 0x01, 0x50, 0x5A, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60,
                  0x00, 0xF3])
    result, _ = agree(code, 50_000)
    assert int.from_bytes(result.output) == 50_000 - 21_000 - 3 - 3 - 3 - 2 - 2


def test_every_gas_budget_of_a_memory_and_hashing_program_agrees():
    # memory growth, a hash of 100 bytes and a storage read: each budget runs out somewhere else
    code = bytes([0x60, 0x2A, 0x60, 0x40, 0x52,  # MSTORE(0x40, 42)
                  0x60, 0x64, 0x60, 0x00, 0x20,  # SHA3(0, 100)
                  0x60, 0x07, 0x54, 0x01,  # + SLOAD(7)
                  0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xF3])
    for gas in range(21_000, 23_400, 7):
        agree(code, gas)


def test_blocks_split_at_jump_destinations_and_ends():
    opcodes = CancunComputation.opcodes
    # PUSH1 4 JUMP JUMPDEST(3) JUMPDEST(4) STOP
    blocks, dests = basic_blocks(bytes([0x60, 0x04, 0x56, 0x5B, 0x5B, 0x00]), opcodes)
    assert [[op.pc for op in b] for b in blocks] == [[0, 2], [3], [4, 5]]
    assert dests == {3, 4}


# ---- whole blocks of ledger transactions -------------------------------------------------


def ledger_code() -> bytes:
    """CeFiEventLedger's creation code as ``ape compile`` builds it (compiled if missing)."""
    manifest = ROOT / ".build" / "__local__.json"
    if not manifest.exists():
        done = subprocess.run([str(Path(sys.executable).parent / "ape"), "compile"], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    ct = json.loads(manifest.read_text())["contractTypes"]["CeFiEventLedger"]
    return bytes.fromhex(ct["deploymentBytecode"]["bytecode"][2:])


class _Key:
    def __init__(self, label: bytes) -> None:
        self.secret = keccak(label)
        self.address = bytes(keccak(PrivateKey(self.secret).public_key.format(False)[1:]))[12:]
        self.nonce = 0

    def tx(self, to: bytes | None, data: bytes, gas: int) -> bytes:
        fields: list[Any] = [GENESIS.chain_id, self.nonce, 0, 0, gas, to or b"", 0, data, []]
        self.nonce += 1
        sig = PrivateKey(self.secret).sign_recoverable(keccak(b"\x02" + fastrlp.encode(fields)),
                                                       hasher=None)
        return b"\x02" + fastrlp.encode([*fields, sig[64], int.from_bytes(sig[:32]),
                                         int.from_bytes(sig[32:64])])


def _ledger_blocks() -> list[list[bytes]]:
    admin, writers, outsider = _Key(b"admin"), [_Key(b"w%d" % i) for i in range(3)], _Key(b"x")
    ledger = bytes(keccak(fastrlp.encode([admin.address, 0])))[12:]
    domain, scheme, nonces = LedgerDomain(GENESIS.chain_id, ledger), Eip712Scheme(), {}

    def entry(actor: _Key, signer: _Key | None = None) -> onchain.Entry:
        n = nonces[actor.address] = nonces.get(actor.address, 0) + 1
        delta = canonical_delta("ORDER_PLACED", {
            "investor": "inv_" + actor.address.hex()[:16], "isin": "US0378331005",
            "side": "subscription", "amount": "10000", "units": "98.7805", "currency": "EUR",
            "dealing_date": "2026-11-25", "channel": "rest", "order": f"O{n:08d}"})
        event = AttestedEvent(actor.address, "ORDER_PLACED", data_hash(delta), n)
        proof = scheme.attest(AttestedEvent((signer or actor).address, "ORDER_PLACED",
                                            data_hash(delta), n), domain,
                              [LocalSigner((signer or actor).secret)])
        assert event.actor == actor.address
        return onchain.Entry(actor.address, "ORDER_PLACED", n, delta, proof)

    deploy = admin.tx(None, ledger_code() + abi_encode(["address"], [admin.address]), 8_000_000)
    grant = keccak(b"grantRole(bytes32,address)")[:4]
    grants = [admin.tx(ledger, grant + abi_encode(["bytes32", "address"], [role, k.address]),
                       200_000)
              for k in [admin, *writers] for role in (onchain.WRITER_ROLE, onchain.ATTESTER_ROLE)]
    appends = [w.tx(ledger, onchain.encode_append(entry(w)), 300_000) for w in writers for _ in range(3)]
    refused = [
        writers[0].tx(ledger, onchain.encode_append(entry(writers[0], signer=writers[1])), 300_000),
        outsider.tx(ledger, onchain.encode_append(entry(writers[1])), 300_000),
        writers[2].tx(ledger, onchain.encode_append(entry(writers[2])), 60_000),  # out of gas
    ]
    batches = [admin.tx(ledger, onchain.encode_batch([entry(admin) for _ in range(20)]), 2_000_000)
               for _ in range(2)]
    again = [w.tx(ledger, onchain.encode_append(entry(w)), 300_000) for w in writers]
    return [[deploy], grants, appends + refused + batches, again]


def _execute(state_class: type, blocks: list[list[bytes]]) -> list[tuple[Any, ...]]:
    fork = dataclasses.replace(FORK, state_class=state_class)
    store: dict[bytes, bytes] = {}
    root = StateDB(StateSource(store.get)).make_state_root()
    out = []
    for number, raws in enumerate(blocks, 1):
        env = BlockEnv(fork, number, 10**10 + number, b"\x00" * 20, 30_000_000, 0, 0,
                       GENESIS.chain_id, b"\x00" * 20)
        runner = BlockRunner(env, StateSource(store.get), root, [])
        outcomes = [runner.apply(decode(raw, fork, GENESIS.chain_id)) for raw in raws]
        ex = runner.finish()
        store.update(ex.nodes)
        root = ex.state_root
        out.append((ex.state_root, ex.receipts_root, ex.logs_bloom, ex.gas_used,
                    [(o.status, o.gas_used, o.logs, o.output) for o in outcomes]))
    return out


def test_ledger_blocks_end_in_the_same_state_translated_or_not():
    blocks = _ledger_blocks()
    stock = _execute(STOCK, blocks)
    assert [o[0] for o in stock[2][4]] == [1] * 9 + [0, 0, 0, 1, 1]  # the refused ones fail
    assert _execute(INTERPRETED, blocks) == stock
    assert _execute(TRANSLATED, blocks) == stock


# ---- ecrecover -----------------------------------------------------------------------------


class _Call:
    """Just what a precompile reads and writes."""

    def __init__(self, data: bytes) -> None:
        self.msg = Message(gas=10_000, to=b"\x00" * 19 + b"\x01", sender=b"\x11" * 20, value=0,
                           data=data, code=b"")
        self.gas = 10_000
        self.output = b""

    def consume_gas(self, amount: int, reason: str) -> None:
        self.gas -= amount


def _signed(secret: int, digest: bytes) -> tuple[int, int, int]:
    sig = PrivateKey(secret.to_bytes(32, "big")).sign_recoverable(digest, hasher=None)
    return sig[64] + 27, int.from_bytes(sig[:32]), int.from_bytes(sig[32:64])


inputs = st.one_of(
    st.binary(max_size=140),
    st.builds(lambda k, d, tweak: (lambda v, r, s: d + (v + tweak[0]).to_bytes(32) + (
        (r + tweak[1]) % 2**256).to_bytes(32) + ((s + tweak[2]) % 2**256).to_bytes(32))(
        *_signed(k, d)),
        st.integers(1, SECP256K1_N - 1), st.binary(min_size=32, max_size=32),
        st.tuples(st.sampled_from([0, 0, 1, -27, 2]), st.sampled_from([0, 0, 1, SECP256K1_N]),
                  st.sampled_from([0, 0, 1, SECP256K1_N, -1]))),
)


@settings(max_examples=300, deadline=None)
@given(inputs)
def test_ecrecover_answers_as_py_evm(data):
    ours, theirs = _Call(data), _Call(data)
    ecrecover(ours)
    pyevm_ecrecover(theirs)
    assert (ours.output, ours.gas) == (theirs.output, theirs.gas)
