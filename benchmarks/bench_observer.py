"""smartta-observer verification speed against the limit set by raw signature recovery.

Two chains built with chain/ and real keys (tests/observer/devchain.py, ledgerchain.py):
blocks sealed by all 4 validators, and blocks carrying ledger records (500 per appendBatch
call, each with an EIP-712 attestation). Each is verified by ``observer.verify.Verifier``
with one process per core:

- from memory (a ChainSource answering from the built chain): the verifier's own cost;
- over HTTP from a local JSON-RPC node (the tests' node, in a process of its own): adds the
  node serving JSON and the client parsing it, on the same cores.

The limit is raw coincurve public-key recovery plus the keccak that makes the address, for
the same seals (and one signature per record), on all cores: nothing verifies a signature
faster in Python. The target is at least 50% of it.

``verify --replay`` (its own section, ``observer_replay``; ``--replay-only`` runs just that):
three chains executed by our node (tests/observer/execchain.py: real py-evm execution, sealed
by a quorum of 4 keys) are replayed from the genesis: empty blocks (the cost per block),
blocks of plain transfers, and blocks of CeFi Event Ledger ``appendBatch`` calls. The
reference is our node importing the same blocks into a fresh store (the same execution, plus
its LMDB writes): replay cannot be faster than execution itself.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import chain  # noqa: F401 - first: with tests/ on the path, tests/chain would shadow chain/
import node.execution.chain as _node  # noqa: F401 - likewise tests/node would shadow node/

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "observer"))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from coincurve import PublicKey
from devchain import ChainBuilder
from eth_abi.abi import encode as encode_abi
from eth_account import Account
from eth_hash.auto import keccak
from hostile import HostileNode
from ledgerchain import DOMAIN, ledger_chain
from results import write_section

from chain.qbft import extra_data as xd
from chain.qbft.hashing import commit_seal_hash
from observer.abc import ChainSource
from observer.records import LedgerWalk
from observer.replay import Replay
from observer.rpc import RpcSource
from observer.verify import Verifier

BLOCKS = 12_000
RECORD_BLOCKS = 96
RECORDS_PER_CALL = 500
REPLAY_EMPTY = 2000
REPLAY_TRANSFER_BLOCKS, TRANSFERS_PER_BLOCK = 100, 50
REPLAY_LEDGER_BLOCKS, REPLAY_RECORDS_PER_CALL = 20, 100


class MemorySource(ChainSource):
    """A node's answers without the network: what the verifier itself costs."""

    def __init__(self, node: HostileNode) -> None:
        self.node = node
        self.name = "memory"

    def chain_id(self) -> int:
        return self.node.chain_id

    def head(self) -> int:
        return len(self.node.blocks) - 1

    def blocks(self, numbers: Sequence[int]) -> list[Any]:
        return [copy.copy(self.node.blocks[n]) for n in numbers]

    def receipts(self, numbers: Sequence[int]) -> list[Any]:
        return [copy.deepcopy(self.node.receipts[n]) for n in numbers]

    def transactions(self, hashes: Sequence[bytes]) -> list[Any]:
        return [copy.copy(self.node.transactions.get("0x" + h.hex())) for h in hashes]

    def block_transactions(self, numbers: Sequence[int]) -> list[Any]:
        return [self.node.answer("eth_getBlockByNumber", [hex(n), True])["transactions"]
                for n in numbers]

    def logs(self, address: bytes, topic0: bytes, from_block: int, to_block: int) -> list[Any]:
        return list(self.node.answer("eth_getLogs", [{
            "address": "0x" + address.hex(), "topics": ["0x" + topic0.hex()],
            "fromBlock": hex(from_block), "toBlock": hex(to_block)}]))


def _serve(served: Any, conn: Any) -> None:
    node = served if isinstance(served, HostileNode) else HostileNode(served)
    with node:
        conn.send(node.url)
        conn.recv()  # until told to stop


@contextmanager
def node_process(served: Any) -> Iterator[str]:
    """The chain (or a HostileNode's view of one, not started) served over HTTP by another
    process, as a real node would be."""
    ours, theirs = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=_serve, args=(served, theirs))
    proc.start()
    try:
        yield ours.recv()
    finally:
        ours.send("stop")
        proc.join(10)


_PAIRS: list[tuple[bytes, bytes]] = []


def _raw(seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for sig, digest in _PAIRS:
            keccak(PublicKey.from_signature_and_message(sig, digest, hasher=None)
                   .format(compressed=False)[1:])
        done += len(_PAIRS)
    return done / (time.perf_counter() - start)


def limit(pairs: list[tuple[bytes, bytes]], cores: int) -> float:
    """Signatures per second all cores recover, raw."""
    global _PAIRS
    _PAIRS = pairs[:2000]
    with ProcessPoolExecutor(cores) as pool:  # forked: the workers see _PAIRS
        return sum(pool.map(_raw, [3.0] * cores))


def timed(genesis: Any, source: ChainSource, cores: int, ledger: bool = False,
          replay: bool = False) -> tuple[float, Any]:
    """Seconds ``verify`` takes over ``source`` (with the record walk or the replay), and its
    report."""
    walk = LedgerWalk(source, DOMAIN) if ledger else None
    verifier = Verifier(genesis, [source], jobs=cores, records=walk,
                        replay=Replay(genesis, source) if replay else None)
    verifier._pool()  # workers started before the clock, as a long run amortises them
    start = time.perf_counter()
    report = verifier.advance()
    elapsed = time.perf_counter() - start
    verifier.close()
    assert report.failure is None, report.failure
    return elapsed, report


def main() -> None:
    if "--replay-only" not in sys.argv[1:]:
        seals_and_records()
    replay()


def seals_and_records() -> None:
    cores = os.cpu_count() or 1
    build = time.perf_counter()
    b = ChainBuilder(signers=lambda n, v: list(v))
    b.extend(BLOCKS)
    blocks_chain = b.chain()
    records_chain, ledger = ledger_chain(calls_per_block=1, records_per_call=RECORDS_PER_CALL,
                                         blocks=RECORD_BLOCKS,
                                         builder=ChainBuilder(signers=lambda n, v: list(v)))
    print(f"built in {time.perf_counter() - build:.0f} s", flush=True)

    seal_pairs = []
    for blk in blocks_chain.blocks[1:]:
        digest = commit_seal_hash(blk.header)
        seal_pairs += [(s, digest) for s in xd.decode(blk.header.extra_data).seals]
    sig_pairs = []
    from chain.attest.eip712 import digest as eip712_digest

    for r in ledger.records:
        assert r.attestation is not None
        proof = r.attestation.proof
        sig_pairs.append((proof[:64] + bytes([proof[64] - 27]), eip712_digest(r.event(), DOMAIN)))
    # The cores are shared: measure the limit before and after the runs, and use the mean.
    seal_limit = limit(seal_pairs, cores)
    sig_limit = limit(sig_pairs, cores)
    load_before = os.getloadavg()[0]

    rows = []
    with node_process(blocks_chain) as url_b, node_process(records_chain) as url_r:
        memory = (MemorySource(HostileNode(blocks_chain)), MemorySource(HostileNode(records_chain)))
        for how, src_b, src_r in (("memory", *memory),
                                  ("HTTP", RpcSource(url_b), RpcSource(url_r))):
            t_b, rep_b = timed(blocks_chain.genesis, src_b, cores, ledger=False)
            t_r, rep_r = timed(records_chain.genesis, src_r, cores, ledger=True)
            rows.append((how, rep_b.blocks / t_b, rep_b.seals / t_b, rep_r.records / t_r))
            print(rows[-1], flush=True)

    seal_limit = (seal_limit + limit(seal_pairs, cores)) / 2
    sig_limit = (sig_limit + limit(sig_pairs, cores)) / 2
    load = (load_before + os.getloadavg()[0]) / 2
    seals_per_block = len(seal_pairs) / BLOCKS
    lines = [
        f"{BLOCKS:,} blocks sealed by all 4 validators ({seals_per_block:.0f} seals each); "
        f"{len(ledger.records):,} ledger records in {RECORD_BLOCKS} blocks ({RECORDS_PER_CALL} "
        f"per appendBatch call, EIP-712 attested). {cores} worker processes; load average "
        f"{load:.1f} during the run (the machine is shared: compare ratios, not rates).",
        "",
        "| source | blocks/s | seals/s | seals vs limit | records/s | records vs limit |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {how} | {bps:,.0f} | {sps:,.0f} | {sps / seal_limit:.0%} | {rps:,.0f} | "
          f"{rps / sig_limit:.0%} |" for how, bps, sps, rps in rows],
        "",
        f"Limit (raw coincurve recovery + keccak, {cores} processes, mean of before and after "
        f"the runs): {seal_limit:,.0f} seals/s, "
        f"{sig_limit:,.0f} record signatures/s. A record costs more than its signature: the "
        "canonical-JSON and schema check of its delta, four keccaks and two ABI encodings "
        "(data hash, record hash, EIP-712 struct and digest), and decoding it from the log "
        "and the calldata.",
    ]
    print("\n".join(lines))
    write_section("observer", "Observer verification (`bench_observer.py`)", "\n".join(lines))



# --- verify --replay ---------------------------------------------------------------------------


def executed_chains(work: Path) -> dict[str, Any]:
    """Three chains our node executed and sealed: empty blocks, transfers, ledger calls."""
    from execchain import ACTOR, USERS, WRITER, Builder, call_data, compiled_ledger

    from chain.abc import AttestedEvent, LedgerDomain
    from chain.attest import Eip712Scheme
    from chain.ledger import canonical_delta, data_hash, onchain

    chains: dict[str, Any] = {}
    b = Builder(work / "empty")
    for _ in range(REPLAY_EMPTY):
        b.seal()
    chains["empty blocks"] = b.chain

    b = Builder(work / "transfers")
    senders = [bytes(keccak(b"bench sender %d" % i)) for i in range(TRANSFERS_PER_BLOCK)]
    for key in senders:  # funded by the genesis users, then each sends one transfer a block
        b.send(bytes(USERS[0].key), to=bytes.fromhex(Account.from_key(key).address[2:]),
               value=10**21, gas=21_000)
    b.seal()
    for n in range(REPLAY_TRANSFER_BLOCKS):
        for i, key in enumerate(senders):
            b.send(key, to=bytes(keccak(b"bench payee %d %d" % (n, i)))[:20], value=n + 1,
                   gas=21_000, kind=(0, 1, 2)[i % 3])
        b.seal()
    chains["transfers"] = b.chain

    b = Builder(work / "ledger")
    writer = Account.from_key(WRITER).address
    code = bytes.fromhex(compiled_ledger()["deploymentBytecode"]["bytecode"][2:])
    deploy = b.send(WRITER, data=code + encode_abi(["address"], [writer]), gas=8_000_000)
    b.seal()
    ledger = b.receipt(deploy).contract_address
    grant = "grantRole(bytes32,address)"
    b.send(WRITER, to=ledger, data=call_data(grant, onchain.WRITER_ROLE, bytes.fromhex(writer[2:])))
    b.send(WRITER, to=ledger, data=call_data(grant, onchain.ATTESTER_ROLE, ACTOR.address))
    b.seal()
    domain = LedgerDomain(b.genesis.chain_id, ledger)
    seq = 0
    for _ in range(REPLAY_LEDGER_BLOCKS):
        entries = []
        for _ in range(REPLAY_RECORDS_PER_CALL):
            seq += 1
            delta = canonical_delta("ORDER_PLACED", {
                "order": f"ORD-{seq}", "investor": f"inv_{seq:016x}", "isin": "LU0000000009",
                "side": "subscription", "amount": str(100 + seq), "currency": "EUR",
                "dealing_date": "2026-11-25", "channel": "rest"})
            event = AttestedEvent(ACTOR.address, "ORDER_PLACED", data_hash(delta), seq)
            entries.append(onchain.Entry(ACTOR.address, "ORDER_PLACED", seq, delta,
                                         Eip712Scheme().attest(event, domain, [ACTOR])))
        appended = b.send(WRITER, to=ledger, data=onchain.encode_batch(entries), gas=20_000_000)
        b.seal()
        assert b.receipt(appended).status == 1
    chains["ledger appendBatch"] = b.chain
    return chains


def node_import(executed: Any, directory: Path) -> float:
    """Seconds our node takes to import (execute, verify, store) the chain into a new store."""
    from node.execution.chain import Chain
    from node.store.chaindb import ChainStore

    other = Chain(executed.genesis, ChainStore(directory), clock=None)
    start = time.perf_counter()
    for n in range(1, executed.head.number + 1):
        other.import_block(executed.block(n))
    elapsed = time.perf_counter() - start
    other.close()
    return elapsed


def replay() -> None:
    import tempfile

    from execchain import serve

    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    build = time.perf_counter()
    chains = executed_chains(work)
    print(f"built in {time.perf_counter() - build:.0f} s", flush=True)
    load_before = os.getloadavg()[0]
    rows = []
    for name, executed in chains.items():
        blocks = executed.head.number
        txs = sum(len(executed.block(n).transactions) for n in range(1, blocks + 1))
        # best of two everywhere: the cores are shared, and the first run in a process warms
        # caches (jump tables, compiled code) the second finds ready
        reference = min(node_import(executed, work / f"import-{len(rows)}-{i}") for i in range(2))
        served = serve(executed)
        with node_process(served) as url:
            measured = {}
            for how, source in (("memory", MemorySource(served)), ("HTTP", RpcSource(url))):
                runs = [timed(executed.genesis, source, cores, replay=True) for _ in range(2)]
                measured[how] = min((elapsed, report.replay["seconds"]) for elapsed, report in runs)
        rows.append((name, blocks, txs, reference, measured))
        print(rows[-1], flush=True)
    load = (load_before + os.getloadavg()[0]) / 2
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip() or "unknown"
    lines = [
        f"Working tree at commit {commit}. Chains executed and sealed by our node "
        f"(tests/observer/execchain.py: 4 validators, base "
        f"fee and block reward on, Cancun then Prague): {REPLAY_EMPTY:,} empty blocks; "
        f"{REPLAY_TRANSFER_BLOCKS} blocks of {TRANSFERS_PER_BLOCK} value transfers (types 0, 1, "
        f"2); {REPLAY_LEDGER_BLOCKS} blocks of one CeFi Event Ledger appendBatch of "
        f"{REPLAY_RECORDS_PER_CALL} EIP-712-attested records. `verify --replay` from the "
        f"genesis with {cores} seal workers; 'replay' is the part spent fetching transactions "
        f"and executing, 'run' the whole verification; every figure is the best of two runs. "
        f"Load average {load:.1f} during the run "
        "(the machine is shared: compare ratios, not rates).",
        "",
        "| chain | source | run: blocks/s | replay: blocks/s | replay: transactions/s | "
        "node import: blocks/s | replay speed vs node import |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, blocks, txs, reference, measured in rows:
        for how, (run, replayed) in measured.items():
            lines.append(
                f"| {name} | {how} | {blocks / run:,.0f} | {blocks / replayed:,.0f} | "
                f"{txs / replayed:,.0f} | {blocks / reference:,.0f} | {reference / replayed:.0%} |")
    records = REPLAY_LEDGER_BLOCKS * REPLAY_RECORDS_PER_CALL
    ledger_replay = rows[-1][4]["memory"][1]
    lines += ["", f"Ledger records executed again: {records / ledger_replay:,.0f} records/s (from "
              "memory). Node import executes the same blocks, verifies their seals and writes "
              "them to LMDB; replay executes them with the state in memory (its seals are "
              "verified beside it, by the workers). Per transaction both are py-evm execution "
              "with chain/execution's rules, which bounds replay."]
    print("\n".join(lines))
    write_section("observer_replay", "Observer replay (`bench_observer.py`, `verify --replay`)",
                  "\n".join(lines))


if __name__ == "__main__":
    main()
