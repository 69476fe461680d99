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
from chain.execution.hashing import use_fast_keccak
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.genesis import Genesis, QbftSettings, build_genesis
from chain.qbft.hashing import commit_seal_hash
from chain.qbft.quorum import quorum
from node.execution.chain import Chain
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


class Net:
    """A 4-validator Cancun network: a proposer that builds and imports blocks."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.validators = sorted(
            (LocalSigner(bytes(keccak(b"validator" + bytes([i])))) for i in range(4)),
            key=lambda s: s.address)
        self.sealers = self.validators[:quorum(4)]
        self.genesis = Genesis(build_genesis(
            chain_id=CHAIN_ID, validators=[v.address for v in self.validators],
            qbft=QbftSettings(block_period_seconds=1), fork="cancun"))
        self.proposer = Chain(self.genesis, ChainStore(work / "proposer"), clock=None)
        self.blocks: list[Block] = []

    def mine(self, raws: Sequence[bytes]) -> list[Block]:
        """Pool ``raws`` (at most 200 per sender at a time) and mine until the pool is empty."""
        made: list[Block] = []
        pending = list(raws)
        while pending or len(self.proposer.pool):
            while pending:
                try:
                    self.proposer.pool.add(pending[0])
                except Exception:
                    break  # the sender's queue is full: mine first
                pending.pop(0)
            made.append(self.step()[0])
        return made

    def step(self) -> tuple[Block, float, float]:
        """One block: (sealed block, create CPU seconds, import CPU seconds)."""
        head = self.proposer.head
        coinbase = self.validators[len(self.blocks) % 4].address
        block, create = timed(lambda: self.proposer.create_block(
            head, 0, head.timestamp + 1, coinbase, None))
        sealed = seal(block, self.sealers)
        _, imported = timed(lambda: self.proposer.import_block(sealed))
        self.blocks.append(sealed)
        return sealed, create, imported

    def measure(self, name: str, raws: list[bytes]) -> dict[str, Any]:
        setup = len(self.blocks)
        _, add_s = timed(lambda: [self.proposer.pool.add(r) for r in raws])
        made: list[Block] = []
        create_s = import_s = 0.0
        while len(self.proposer.pool):
            block, c, i = self.step()
            made.append(block)
            create_s += c
            import_s += i
        n_tx = sum(len(b.transactions) for b in made)
        assert n_tx == len(raws), "every transaction must be included"
        out: dict[str, Any] = {"pool_add_per_s": len(raws) / add_s, "blocks": len(made),
                               "block_sizes": [len(b.transactions) for b in made],
                               "create_per_s": n_tx / create_s,
                               "own_import_ms": 1000 * import_s / len(made)}
        for mode in ("cold", "warm"):
            other = Chain(self.genesis, ChainStore(self.work / f"{name}-{mode}"), clock=None)
            for b in self.blocks[:setup]:
                other.import_block(b)
            if mode == "warm":
                for raw in raws:
                    other.pool.add(raw)

            def follow(other: Chain = other) -> None:
                for b in made:
                    other.validate_block(b)
                    other.import_block(b)

            _, dt = timed(follow)
            assert other.head_hash == self.proposer.head_hash
            out[f"validate_import_{mode}_per_s"] = n_tx / dt
            other.close()
        return out


def standin(scale: float, work: Path) -> dict[str, Any]:
    code = compile_ledger()
    net = Net(work)
    n_senders, per_sender = int(1000 * scale), 10
    batches, batch_size = int(200 * scale), 50
    senders = [Key(b"sender" + i.to_bytes(4, "big")) for i in range(n_senders)]
    deployer = Key(b"deployer")
    net.mine([deployer.sign(0, None, code, 3_000_000)])
    ledger = net.proposer.receipts(1)[0].contract_address
    assert ledger is not None
    sel = keccak(b"append(bytes32)")[:4]
    single = [k.sign(n, ledger, sel + keccak(k.address + bytes([n])), 100_000)
              for n in range(per_sender) for k in senders]
    sel = keccak(b"appendBatch(bytes32[])")[:4]
    head = (32).to_bytes(32, "big") + batch_size.to_bytes(32, "big")
    batched = [deployer.sign(1 + i, ledger, sel + head + b"".join(
        keccak(i.to_bytes(4, "big") + j.to_bytes(4, "big")) for j in range(batch_size)),
        3_000_000) for i in range(batches)]
    out = {"senders": n_senders, "txs": len(single), "batches": batches,
           "batch_size": batch_size, "single": net.measure("single", single),
           "batched": net.measure("batched", batched)}
    out["pyevm_per_s"] = stock_pyevm(net.genesis, code, deployer, senders, ledger,
                                     min(2000, len(single)))
    net.proposer.close()
    return out


def cefi_ledger(scale: float, work: Path) -> dict[str, Any] | None:
    """The real contracts/CeFiEventLedger.sol (as ``ape compile`` built it into .build/):
    every record attested with EIP-712 by its actor and checked on chain."""
    manifest = ROOT / ".build" / "__local__.json"
    if not manifest.exists():
        return None
    ct = json.loads(manifest.read_text())["contractTypes"].get("CeFiEventLedger")
    if ct is None:
        return None
    from eth_abi import encode as abi_encode

    from chain.abc import AttestedEvent, LedgerDomain
    from chain.attest import Eip712Scheme
    from chain.ledger import canonical_delta, data_hash, onchain

    code = bytes.fromhex(ct["deploymentBytecode"]["bytecode"][2:])
    net = Net(work)
    admin = Key(b"ledger admin")
    writers = [Key(b"writer" + i.to_bytes(4, "big")) for i in range(int(300 * scale))]
    per_writer, batches, batch_size = 4, int(40 * scale), 50
    net.mine([admin.sign(0, None, code + abi_encode(["address"], [admin.address]), 8_000_000)])
    ledger = net.proposer.receipts(1)[0].contract_address
    assert ledger is not None
    grant = keccak(b"grantRole(bytes32,address)")[:4]
    nonce = 1
    grants = []
    for who in [admin, *writers]:
        for role in (onchain.WRITER_ROLE, onchain.ATTESTER_ROLE):
            grants.append(admin.sign(nonce, ledger, grant + abi_encode(["bytes32", "address"],
                                                                        [role, who.address]),
                                     200_000))
            nonce += 1
    net.mine(grants)
    domain = LedgerDomain(CHAIN_ID, ledger)
    scheme = Eip712Scheme()
    actor_nonce: dict[bytes, int] = {}

    def entry(actor: Key) -> onchain.Entry:
        n = actor_nonce.get(actor.address, 0) + 1
        actor_nonce[actor.address] = n
        delta = canonical_delta("ORDER_PLACED", {
            "investor": "inv_" + actor.address.hex()[:16], "isin": "US0378331005",
            "side": "subscription", "amount": "10000", "units": "98.7805", "currency": "EUR",
            "dealing_date": "2026-11-25", "channel": "rest", "order": f"O{n:08d}"})
        event = AttestedEvent(actor.address, "ORDER_PLACED", data_hash(delta), n)
        return onchain.Entry(actor.address, "ORDER_PLACED", n, delta,
                             scheme.attest(event, domain, [LocalSigner(actor.secret)]))

    single = [w.sign(n, ledger, onchain.encode_append(entry(w)), 300_000)
              for n in range(per_writer) for w in writers]
    batched = [admin.sign(nonce + i, ledger,
                          onchain.encode_batch([entry(admin) for _ in range(batch_size)]),
                          5_000_000) for i in range(batches)]
    out = {"senders": len(writers), "txs": len(single), "batches": batches,
           "batch_size": batch_size, "single": net.measure("single", single),
           "batched": net.measure("batched", batched)}
    net.proposer.close()
    return out


def log_backfill(scale: float, work: Path) -> dict[str, Any]:
    """eth_getLogs as an indexer backfills: blocks of ledger events (one contract, a record
    topic, an indexed sequence number) written straight into a store, then read back through
    ``Chain.logs`` by address in ranges of 10,000 blocks."""
    import dataclasses

    from chain.qbft.votes import ValidatorHistory
    from node.abc import LogFilter
    from node.store.chaindb import BlockRecord, StoredReceipt

    net = Net(work)
    genesis, header = net.genesis, net.genesis.header()
    net.proposer.close()
    store = ChainStore(work / "proposer")
    history = ValidatorHistory(genesis.qbft.epoch, genesis.validator_overrides)
    history.apply(0, header.coinbase, genesis.extra)
    snapshot = history.to_json()
    blocks, per_block = int(2_000 * scale), 500
    ledger, topic = b"\x1e" * 20, bytes(keccak(b"Recorded(uint256,address,bytes32,bytes32)"))
    for n in range(1, blocks + 1):
        h = dataclasses.replace(header, number=n, timestamp=header.timestamp + n)
        tx_hash = bytes(keccak(n.to_bytes(8, "big")))
        receipts = [StoredReceipt(tx_hash, 2, 1, 50_000, 50_000, 0, b"\x01" * 20, ledger, None,
                                  None, 0, per_block)]
        logs = [(ledger, (topic, (n * per_block + i).to_bytes(32, "big")), bytes(64), 0, tx_hash)
                for i in range(per_block)]
        snapshot["head"] = n
        store.write_block(BlockRecord(h, bytes(keccak(b"block" + n.to_bytes(8, "big"))), [b"\x02"],
                                      (), receipts, logs, {}, json.dumps(snapshot).encode()))
    store.close()
    chain = Chain(genesis, ChainStore(work / "proposer"), clock=None)
    step = 10_000
    found, cpu = 0, 0.0
    for first in range(1, blocks + 1, step):
        out, dt = timed(lambda first=first: chain.logs(LogFilter(first, first + step - 1, (ledger,))))
        found += len(out)
        cpu += dt
    assert found == blocks * per_block
    chain.close()
    return {"logs": found, "blocks": blocks, "logs_per_s": found / cpu}


def run(scale: float) -> dict[str, Any]:
    use_fast_keccak()
    work = Path(tempfile.mkdtemp(prefix="execution-bench-"))
    try:
        results: dict[str, Any] = {"standin": standin(scale, work / "standin")}
        results["cefi"] = cefi_ledger(scale, work / "cefi")
        results["logs"] = log_backfill(scale, work / "logs")
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


def _rows(r: dict[str, Any]) -> list[tuple[str, float, float | None]]:
    s, b = r["single"], r["batched"]
    n = r["batch_size"]
    return [
        ("pool admission (decode, recover sender, checks), tx/s", s["pool_add_per_s"],
         b["pool_add_per_s"] * n),
        ("`create_block` (proposer), tx/s", s["create_per_s"], b["create_per_s"] * n),
        ("`validate_block` + `import_block`, transactions seen before (warm), tx/s",
         s["validate_import_warm_per_s"], b["validate_import_warm_per_s"] * n),
        ("`validate_block` + `import_block`, transactions never seen (cold), tx/s",
         s["validate_import_cold_per_s"], b["validate_import_cold_per_s"] * n),
    ]


def _table(r: dict[str, Any], extra: list[tuple[str, float, float | None]]) -> list[str]:
    lines = ["| measure | single-record calls | batched: records/s |", "|---|---:|---:|"]
    for label, value, ev in _rows(r) + extra:
        lines.append(f"| {label} | {value:,.0f} | {'' if ev is None else f'{ev:,.0f}'} |")
    s, b = r["single"], r["batched"]
    lines += ["", f"Blocks of {statistics.median(s['block_sizes']):,.0f} transactions (median) "
              f"for single calls, {statistics.median(b['block_sizes']):,.0f} for batches; the "
              f"proposer imports its own block in {s['own_import_ms']:.0f} ms (no second "
              "execution: seals, then one LMDB write of the block, receipts, logs, indexes and "
              "state nodes)."]
    return lines


def report(results: dict[str, Any]) -> str:
    r = results["standin"]
    lines = [
        "Rates are per CPU-second of one process (the machine is shared, and wall time would "
        "count other processes' load). 4-validator Cancun genesis, blocks sealed by 3, block "
        "period 1 s (`create_block` fills a block for at most 0.75 s, as Besu's PoA "
        "block-creation limit). A second node validates and imports every block: cold (it never "
        "saw the transactions, so validation decodes them and recovers their senders) and warm "
        "(its pool received them first, as gossip delivers them).",
        "",
        f"**Stand-in ledger** (a storage hash chain and one event per record): {r['txs']:,} "
        f"`append(bytes32)` calls from {r['senders']:,} zero-balance senders, then "
        f"{r['batches']} `appendBatch` calls of {r['batch_size']} records.",
        "",
        *_table(r, [("stock py-evm 0.12.1b1 applying the same calls (its AccountDB, VM, "
                     "decoding), tx/s", r["pyevm_per_s"], None)]),
    ]
    c = results.get("cefi")
    if c is not None:
        lines += [
            "",
            f"**CeFiEventLedger** (contracts/, via-IR, as `ape compile` builds it): {c['txs']:,} "
            f"`append` calls from {c['senders']} writers, each record an ORDER_PLACED delta "
            "attested with EIP-712 by its actor and checked on chain (ecrecover), then "
            f"{c['batches']} `appendBatch` calls of {c['batch_size']} records.",
            "",
            *_table(c, []),
        ]
    logs = results["logs"]
    lines += [
        "",
        f"**eth_getLogs backfill**: {logs['logs']:,} ledger events in {logs['blocks']:,} blocks, "
        "read through `Chain.logs` by contract address in ranges of 10,000 blocks (the address "
        f"index names the blocks, the logs table holds each log once): "
        f"{logs['logs_per_s']:,.0f} logs/s.",
    ]
    lines += [
        "",
        "Every validator executes every block once: the proposer in `create_block`, the others "
        "in `validate_block` (the result is kept, so `import_block` only stores it), and each "
        "node admits each transaction once (into its pool, or inside validation when it never "
        "saw it). With four validators on two cores the network's ceiling from execution alone "
        "is about 2 / (create + 3 x validate-warm + 4 x admission) transactions per second of "
        "CPU; consensus, gossip and RPC come on top.",
    ]
    return "\n".join(lines)


def ceiling(r: dict[str, Any]) -> float:
    s = r["single"]
    per_tx = (1 / s["create_per_s"] + 3 / s["validate_import_warm_per_s"]
              + 4 / s["pool_add_per_s"])
    return 2 / per_tx


def main() -> int:
    quick = "--quick" in sys.argv
    results = run(0.1 if quick else 1.0)
    text = report(results)
    print(text)
    for name, r in results.items():
        if r is not None and "single" in r:
            print(f"{name}: execution ceiling for 4 validators on 2 cores ~{ceiling(r):,.0f} tx/s")
    if not quick:
        write_section("execution", "Execution throughput (`execution_throughput.py`)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
