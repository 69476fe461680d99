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

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "observer"))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

from coincurve import PublicKey
from devchain import ChainBuilder
from eth_hash.auto import keccak
from hostile import HostileNode
from ledgerchain import DOMAIN, ledger_chain
from results import write_section

from chain.qbft import extra_data as xd
from chain.qbft.hashing import commit_seal_hash
from observer.abc import ChainSource
from observer.records import LedgerWalk
from observer.rpc import RpcSource
from observer.verify import Verifier

BLOCKS = 3000
RECORD_BLOCKS = 24
RECORDS_PER_CALL = 500


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
    with HostileNode(served) as node:
        conn.send(node.url)
        conn.recv()  # until told to stop


@contextmanager
def node_process(served: Any) -> Iterator[str]:
    """The chain served over HTTP by another process, as a real node would be."""
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


def timed(genesis: Any, source: ChainSource, cores: int, ledger: bool) -> tuple[float, Any]:
    walk = LedgerWalk(source, DOMAIN) if ledger else None
    verifier = Verifier(genesis, [source], jobs=cores, records=walk)
    verifier._pool()  # workers started before the clock, as a long run amortises them
    start = time.perf_counter()
    report = verifier.advance()
    elapsed = time.perf_counter() - start
    verifier.close()
    assert report.failure is None, report.failure
    return elapsed, report


def main() -> None:
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


if __name__ == "__main__":
    main()
