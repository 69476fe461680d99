"""Execution throughput of node.execution: transactions per second applied by ``create_block``
(the proposer) and by ``validate_block`` + ``import_block`` (every other validator), for a
ledger-style contract call that emits one log, and events per second with batched appends.

Workload: 10,000 transactions from 1,000 senders with no balance (free gas, as the devnet runs),
each calling ``append(bytes32)`` on a stand-in of the event ledger (a hash chain in storage and
one event per record; compiled at set-up with the npm solc, see ``LEDGER_SOURCE``), then 200
``appendBatch`` calls of 50 records each. A 4-validator genesis at Cancun; blocks are sealed by
3 validators. The proposer's pool receives every transaction first (timed: decoding, sender
recovery, checks). A second node then validates and imports each block twice over: once cold
(it never saw the transactions, so it decodes them and recovers their senders inside
validation) and once warm (its pool received them first, as gossip would deliver them).
Stock py-evm (its own AccountDB, VM and transaction decoding) applies the first 2,000 of the
same transactions for comparison.

Run: ``.venv/bin/python benchmarks/execution_throughput.py [--quick]``; writes its section of
benchmarks/RESULTS.md (``--quick`` runs a tenth of the workload and writes nothing).
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from coincurve import PrivateKey
from eth_hash.auto import keccak

sys.path.insert(0, str(Path(__file__).parent))

from results import write_section

from chain.attest.keys import LocalSigner
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.genesis import Genesis, QbftSettings, build_genesis
from chain.qbft.hashing import commit_seal_hash
from chain.qbft.quorum import quorum
from node.execution.chain import Chain
from node.execution.hashing import use_fast_keccak
from node.store.chaindb import ChainStore

ROOT = Path(__file__).resolve().parents[1]
CHAIN_ID = 2026
LEDGER_SOURCE = """
// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
contract LedgerStandIn {
    bytes32 public head;
    uint256 public count;
    event Recorded(uint256 indexed seq, address indexed actor, bytes32 dataHash, bytes32 previousHash);
    function append(bytes32 dataHash) external {
        bytes32 prev = head;
        head = keccak256(abi.encode(prev, dataHash));
        uint256 seq = ++count;
        emit Recorded(seq, msg.sender, dataHash, prev);
    }
    function appendBatch(bytes32[] calldata hashes) external {
        bytes32 prev = head;
        uint256 seq = count;
        for (uint256 i = 0; i < hashes.length; i++) {
            bytes32 h = keccak256(abi.encode(prev, hashes[i]));
            emit Recorded(++seq, msg.sender, hashes[i], prev);
            prev = h;
        }
        head = prev;
        count = seq;
    }
}
"""
COMPILE_JS = """
const solc = require(process.argv[1] + '/node_modules/solc');
const src = require('fs').readFileSync(0, 'utf8');
const input = {language: 'Solidity', sources: {'l.sol': {content: src}}, settings: {
  optimizer: {enabled: true, runs: 200}, evmVersion: 'cancun',
  outputSelection: {'*': {'*': ['evm.bytecode.object']}}}};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
for (const e of (out.errors || []))
  if (e.severity === 'error') { console.error(e.formattedMessage); process.exit(1); }
console.log(out.contracts['l.sol'].LedgerStandIn.evm.bytecode.object);
"""


def compile_ledger() -> bytes:
    out = subprocess.run(["node", "-e", COMPILE_JS, str(ROOT)], input=LEDGER_SOURCE,
                         capture_output=True, text=True, check=True)
    return bytes.fromhex(out.stdout.strip())


class Key:
    """A sender key that signs EIP-1559 transactions directly with coincurve (set-up speed)."""

    def __init__(self, seed: bytes) -> None:
        self.secret = bytes(keccak(seed))
        self.key = PrivateKey(self.secret)
        self.address = bytes(keccak(self.key.public_key.format(compressed=False)[1:])[12:])

    def sign(self, nonce: int, to: bytes | None, data: bytes, gas: int) -> bytes:
        from chain import fastrlp
        fields: list[Any] = [CHAIN_ID, nonce, 0, 0, gas, to or b"", 0, data, []]
        payload = b"\x02" + fastrlp.encode(fields)
        sig = self.key.sign_recoverable(bytes(keccak(payload)), hasher=None)
        r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
        return b"\x02" + fastrlp.encode([*fields, v, r, s])


def seal(block: Block, keys: Sequence[LocalSigner]) -> Block:
    extra = xd.decode(block.header.extra_data)
    digest = commit_seal_hash(block.header, extra=extra)
    sealed = extra.with_seals(tuple(k.sign_digest(digest) for k in keys))
    return Block(block.header.with_extra_data(xd.encode(sealed)), block.transactions,
                 block.withdrawals)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Result and CPU seconds of this process: the machine is shared, so wall time would
    measure the neighbours too; one thread's CPU time is what an otherwise idle core needs."""
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


def run(scale: float) -> dict[str, Any]:
    use_fast_keccak()
    code = compile_ledger()
    validators = sorted((LocalSigner(bytes(keccak(b"validator" + bytes([i])))) for i in range(4)),
                        key=lambda s: s.address)
    sealers = validators[:quorum(4)]
    genesis = Genesis(build_genesis(chain_id=CHAIN_ID, validators=[v.address for v in validators],
                                    qbft=QbftSettings(block_period_seconds=1), fork="cancun"))
    n_senders, per_sender = int(1000 * scale), 10
    batches, batch_size = int(200 * scale), 50
    senders = [Key(b"sender" + i.to_bytes(4, "big")) for i in range(n_senders)]
    deployer = Key(b"deployer")
    work = Path(tempfile.mkdtemp(prefix="execution-bench-"))
    try:
        proposer = Chain(genesis, ChainStore(work / "proposer"), clock=None)
        proposer.pool.add(deployer.sign(0, None, code, 3_000_000))
        first = proposer.create_block(proposer.head, 0, proposer.head.timestamp + 1,
                                      validators[0].address, None)
        proposer.import_block(seal(first, sealers))
        ledger = proposer.receipts(1)[0].contract_address
        assert ledger is not None

        def appends() -> list[bytes]:
            sel = keccak(b"append(bytes32)")[:4]
            return [k.sign(n, ledger, sel + keccak(k.address + bytes([n])), 100_000)
                    for n in range(per_sender) for k in senders]

        def batched() -> list[bytes]:
            sel = keccak(b"appendBatch(bytes32[])")[:4]
            head = (32).to_bytes(32, "big") + batch_size.to_bytes(32, "big")
            return [deployer.sign(1 + i, ledger, sel + head + b"".join(
                keccak(i.to_bytes(4, "big") + j.to_bytes(4, "big")) for j in range(batch_size)),
                3_000_000) for i in range(batches)]

        results: dict[str, Any] = {"senders": n_senders, "txs": n_senders * per_sender,
                                   "batches": batches, "batch_size": batch_size}
        for name, raws in (("single", appends()), ("batched", batched())):
            _, add_s = timed(lambda raws=raws: [proposer.pool.add(r) for r in raws])
            blocks: list[Block] = []
            create_s = import_s = 0.0
            start = proposer.head.number
            while len(proposer.pool):
                head = proposer.head
                coinbase = validators[len(blocks) % 4].address
                block, dt = timed(lambda head=head, coinbase=coinbase: proposer.create_block(
                    head, 0, head.timestamp + 1, coinbase, None))
                create_s += dt
                sealed = seal(block, sealers)
                _, dt = timed(lambda sealed=sealed: proposer.import_block(sealed))
                import_s += dt
                blocks.append(sealed)
            n_tx = sum(len(b.transactions) for b in blocks)
            results[name] = {"pool_add_per_s": len(raws) / add_s, "blocks": len(blocks),
                             "block_sizes": [len(b.transactions) for b in blocks],
                             "create_per_s": n_tx / create_s,
                             "own_import_ms": 1000 * import_s / len(blocks)}
            for mode in ("cold", "warm"):
                other = Chain(genesis, ChainStore(work / f"{name}-{mode}"), clock=None)
                for n in range(1, start + 1):
                    other.import_block(proposer.block(n))
                if mode == "warm":
                    for raw in raws:
                        other.pool.add(raw)
                _, dt = timed(lambda other=other, blocks=blocks: [
                    (other.validate_block(b), other.import_block(b)) for b in blocks])
                assert other.head_hash == proposer.head_hash
                results[name][f"validate_import_{mode}_per_s"] = n_tx / dt
                other.close()
        results["pyevm_per_s"] = stock_pyevm(genesis, code, deployer, senders, ledger,
                                             min(2000, n_senders * per_sender))
        proposer.close()
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stock_pyevm(genesis: Genesis, code: bytes, deployer: Key, senders: list[Key], ledger: bytes,
                count: int) -> float:
    """Stock py-evm applying the same calls: its AccountDB and VM, its own decoding."""
    from eth.chains.base import MiningChain
    from eth.db.atomic import AtomicDB
    from eth.db.trie import make_trie_root_and_nodes
    from eth.vm.forks.cancun import CancunVM

    h = genesis.header()
    params = dict(coinbase=h.coinbase, difficulty=0, gas_limit=h.gas_limit, timestamp=h.timestamp,
                  extra_data=h.extra_data, mix_hash=h.mix_hash, nonce=h.nonce,
                  base_fee_per_gas=h.base_fee)
    chain = MiningChain.configure(__name__="Stock", vm_configuration=((0, CancunVM),),
                                  chain_id=CHAIN_ID).from_genesis(AtomicDB(), params, {})
    builder = chain.get_vm().get_transaction_builder()
    chain.apply_transaction(builder.decode(deployer.sign(0, None, code, 3_000_000)))
    chain.mine_block()
    sel = keccak(b"append(bytes32)")[:4]
    raws = [k.sign(0, ledger, sel + keccak(k.address + b"\x00"), 100_000) for k in senders][:count]
    vm = chain.get_vm()
    start = time.process_time()
    # one block, applied the way py-evm's VM imports blocks (MiningChain.apply_transaction
    # rebuilds the block's tries after every transaction, which would be unfair to it)
    txs = [builder.decode(raw) for raw in raws]
    _header, receipts, _ = vm.apply_all_transactions(txs, vm.get_header())
    vm.state.persist()
    make_trie_root_and_nodes(txs)
    make_trie_root_and_nodes(receipts)
    return len(raws) / (time.process_time() - start)


def report(r: dict[str, Any]) -> str:
    s, b = r["single"], r["batched"]
    events = b["create_per_s"] * r["batch_size"]
    rows = [
        ("pool admission (decode, recover sender, checks), tx/s", s["pool_add_per_s"], None),
        ("`create_block` (proposer), tx/s", s["create_per_s"], events),
        ("`validate_block` + `import_block`, transactions seen before (warm), tx/s",
         s["validate_import_warm_per_s"], b["validate_import_warm_per_s"] * r["batch_size"]),
        ("`validate_block` + `import_block`, transactions never seen (cold), tx/s",
         s["validate_import_cold_per_s"], b["validate_import_cold_per_s"] * r["batch_size"]),
        ("stock py-evm 0.12.1b1 applying the same calls (its AccountDB, VM, decoding), tx/s",
         r["pyevm_per_s"], None),
    ]
    lines = [
        f"{r['txs']:,} `append(bytes32)` calls (one event each) from {r['senders']:,} zero-balance "
        f"senders, then {r['batches']} `appendBatch` calls of {r['batch_size']} records; 4-validator "
        "Cancun genesis, blocks sealed by 3, block period 1 s (create_block fills a block for at "
        "most 0.75 s, as Besu's PoA block-creation limit). Rates are per CPU-second of the one "
        "process (the machine is shared; wall time would count other processes' load).",
        "",
        "| measure | single-event calls | batched: events/s |",
        "|---|---:|---:|",
    ]
    for label, value, ev in rows:
        lines.append(f"| {label} | {value:,.0f} | {'' if ev is None else f'{ev:,.0f}'} |")
    lines += [
        "",
        f"Blocks of {statistics.median(s['block_sizes']):,.0f} transactions (median) for single "
        f"calls, {statistics.median(b['block_sizes']):,.0f} for batches; the proposer imports its "
        f"own block in {s['own_import_ms']:.0f} ms (no second execution: seals, then one LMDB "
        "write of the block, receipts, logs, indexes and state nodes).",
        "",
        "Every validator executes every block once: the proposer in `create_block`, the others in "
        "`validate_block` (the result is kept, so `import_block` only stores it). With four "
        "validators on two cores, the network's ceiling from execution alone is about "
        "2 x (one node's tx/s) / 4; the pool's admission cost is paid once per node per "
        "transaction either way (in the pool, or in validation when the transaction was never "
        "seen).",
    ]
    return "\n".join(lines)


def main() -> int:
    quick = "--quick" in sys.argv
    results = run(0.1 if quick else 1.0)
    text = report(results)
    print(text)
    print(json.dumps({k: v for k, v in results.items() if k not in ("single", "batched")}))
    if not quick:
        write_section("execution", "Execution throughput (`execution_throughput.py`)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
