"""Finalized ledger transactions per second on the 4-validator devnet, and submit-to-final latency.

The workload is the real one: ``contracts/CeFiEventLedger.sol`` (as ``ape compile`` builds it),
each record an ORDER_PLACED delta attested with EIP-712 by its actor and checked on chain
(ecrecover), sent by many writers, each writer its own actor. Two shapes:

- ``single``: one record per transaction (``append``), the issue's "single-event ledger
  transaction";
- ``batch``: ``appendBatch`` calls of ``--batch-size`` records, events counted per record.

It builds a throwaway seeded network with ``smartta network init`` in a temporary folder, starts
its four validators as OS processes on this machine (``smartta network up``), deploys the ledger,
grants the writers their roles, and then submits pre-signed transactions over keep-alive HTTP
connections spread over the validators' RPC endpoints (each writer's transactions go to one
endpoint, in nonce order), one transaction per request, as a Caliper worker does:

- ``--rate max``: as fast as the network admits them (at most ``--window`` submitted and not yet
  final), which measures the peak finalized rate;
- ``--rate R``: open loop at R transactions per second; latency is counted from the moment a
  transaction was due, so a client held up by a slow node does not hide the delay.

A transaction is final when the block that carries it is announced by ``eth_subscribe
newHeads`` on the first validator (QBFT finality is immediate: a committed block is never
reverted). Throughput counts finalized transactions from the first submission to the last
finalization; the steady rate leaves out the first and last 10% of finalizations. Each validator's
CPU seconds during the run come from /proc, so the report says where the two cores went.

Run: ``.venv/bin/python benchmarks/bench_throughput.py`` (peak single, then half of that rate for
latency, then peak batched, and writes its section of benchmarks/RESULTS.md), or one run with
``--shape single|batch --rate max|R --txs N [--no-write] [--profile DIR]`` (``--profile`` records
each validator with py-spy, which must be installed, as collapsed stacks in DIR).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from coincurve import PrivateKey
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

sys.path.insert(0, str(Path(__file__).parent))

from results import write_section

from chain import fastrlp
from chain.abc import AttestedEvent, LedgerDomain
from chain.attest import Eip712Scheme
from chain.attest.keys import LocalSigner
from chain.ledger import canonical_delta, data_hash, onchain

ROOT = Path(__file__).resolve().parents[1]
SMARTTA = str(Path(sys.executable).with_name("smartta"))
CONNECTIONS = 16
POOL_PER_SENDER = 150
"""Admin transactions sent at once during set-up (the pool keeps at most 200 per sender)."""
BASE_PORT = 7700


def contract_code() -> bytes:
    manifest = ROOT / ".build" / "__local__.json"
    if not manifest.exists():
        subprocess.run([str(ROOT / ".venv" / "bin" / "ape"), "compile"], cwd=ROOT, check=True,
                       capture_output=True)
    ct = json.loads(manifest.read_text())["contractTypes"]["CeFiEventLedger"]
    return bytes.fromhex(ct["deploymentBytecode"]["bytecode"][2:])


class Key:
    """A sender key signing EIP-1559 transactions with coincurve directly (set-up speed)."""

    def __init__(self, seed: bytes, chain_id: int) -> None:
        self.secret = bytes(keccak(seed))
        self.key = PrivateKey(self.secret)
        self.address = bytes(keccak(self.key.public_key.format(compressed=False)[1:])[12:])
        self.chain_id = chain_id

    def sign(self, nonce: int, to: bytes | None, data: bytes, gas: int) -> bytes:
        fields: list[Any] = [self.chain_id, nonce, 0, 0, gas, to or b"", 0, data, []]
        payload = b"\x02" + fastrlp.encode(fields)
        sig = self.key.sign_recoverable(bytes(keccak(payload)), hasher=None)
        r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
        return b"\x02" + fastrlp.encode([*fields, v, r, s])


def create_address(sender: bytes, nonce: int) -> bytes:
    return bytes(keccak(fastrlp.encode([sender, nonce])))[12:]


@dataclass
class Workload:
    """Set-up transactions (deployment, role grants) and the measured ones, all pre-signed."""

    ledger: bytes
    setup: list[list[bytes]]
    """Rounds of admin transactions; each round is final before the next is sent."""
    lanes: list[list[bytes]]
    """Per writer, its transactions in nonce order."""
    events_per_tx: int


def build(chain_id: int, writers: int, txs: int, batch_size: int) -> Workload:
    """``txs`` transactions from ``writers`` writers; each carries ``batch_size`` records
    (1: ``append``; more: ``appendBatch``)."""
    admin = Key(b"bench_throughput admin", chain_id)
    keys = [Key(b"bench_throughput writer" + i.to_bytes(4, "big"), chain_id) for i in range(writers)]
    ledger = create_address(admin.address, 0)
    grant = bytes(keccak(b"grantRole(bytes32,address)"))[:4]
    grants = [admin.sign(1 + i, ledger, grant + abi_encode(["bytes32", "address"], [role, k.address]),
                         200_000)
              for i, (role, k) in enumerate((role, k) for k in keys
                                            for role in (onchain.WRITER_ROLE, onchain.ATTESTER_ROLE))]
    setup = [[admin.sign(0, None, contract_code() + abi_encode(["address"], [admin.address]),
                         8_000_000)]]
    setup += [grants[i:i + POOL_PER_SENDER] for i in range(0, len(grants), POOL_PER_SENDER)]
    domain = LedgerDomain(chain_id, ledger)
    scheme = Eip712Scheme()
    record_nonce: dict[bytes, int] = {}

    def entry(actor: Key) -> onchain.Entry:
        n = record_nonce[actor.address] = record_nonce.get(actor.address, 0) + 1
        delta = canonical_delta("ORDER_PLACED", {
            "investor": "inv_" + actor.address.hex()[:16], "isin": "US0378331005",
            "side": "subscription", "amount": "10000", "units": "98.7805", "currency": "EUR",
            "dealing_date": "2026-11-25", "channel": "rest", "order": f"O{n:08d}"})
        event = AttestedEvent(actor.address, "ORDER_PLACED", data_hash(delta), n)
        return onchain.Entry(actor.address, "ORDER_PLACED", n, delta,
                             scheme.attest(event, domain, [LocalSigner(actor.secret)]))

    lanes: list[list[bytes]] = [[] for _ in keys]
    for i in range(txs):
        w = i % writers
        k = keys[w]
        if batch_size == 1:
            data, gas = onchain.encode_append(entry(k)), 300_000
        else:
            data = onchain.encode_batch([entry(k) for _ in range(batch_size)])
            gas = 100_000 + 40_000 * batch_size
        lanes[w].append(k.sign(len(lanes[w]), ledger, data, gas))
    return Workload(ledger, setup, lanes, batch_size)


# ---- the network --------------------------------------------------------------------------


def smartta(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([SMARTTA, *args], env=env, check=True, capture_output=True, text=True,
                          timeout=300).stdout


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Finality:
    """When each transaction became final, as the first validator announces its blocks."""

    at: dict[bytes, float] = field(default_factory=dict)
    blocks: list[tuple[int, float, int]] = field(default_factory=list)
    """(number, time seen, transactions)."""
    waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    def seen(self, hashes: list[bytes], number: int, when: float) -> None:
        for h in hashes:
            self.at[h] = when
        self.blocks.append((number, when, len(hashes)))
        for target, fut in list(self.waiters):
            if len(self.at) >= target and not fut.done():
                fut.set_result(None)

    async def reach(self, count: int, timeout: float) -> None:
        if len(self.at) >= count:
            return
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append((count, fut))
        await asyncio.wait_for(fut, timeout)


async def rpc(session: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
        out = await r.json()
    if "error" in out:
        raise RuntimeError(f"{method}: {out['error'].get('message')}")
    return out["result"]


async def follow(session: aiohttp.ClientSession, ws_url: str, http_url: str,
                 finality: Finality, ready: asyncio.Event) -> None:
    async with session.ws_connect(ws_url, max_msg_size=0) as ws:
        await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                            "params": ["newHeads"]})
        async for msg in ws:
            data = json.loads(msg.data)
            if data.get("id") == 1:
                ready.set()
                continue
            header = data["params"]["result"]
            when = time.perf_counter()
            number = int(header["number"], 16)
            block = await rpc(session, http_url, "eth_getBlockByNumber", hex(number), False)
            finality.seen([bytes.fromhex(h[2:]) for h in block["transactions"]], number, when)


@dataclass
class RunResult:
    txs: int
    events_per_tx: int
    rate: float | None
    seconds: float
    finalized: int
    tps: float
    steady_tps: float
    latencies: list[float]
    blocks: list[tuple[int, float, int]]
    cpu: dict[str, float]
    round_changes: int
    """Rounds the validators moved past during the load (each one re-executes a block)."""
    rejected: int
    errors: list[str]
    load_average: float

    def pct(self, p: float) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))]


async def send_all(session: aiohttp.ClientSession, urls: Sequence[str], lanes: list[list[bytes]],
                   rate: float | None, window: int, finality: Finality,
                   sent: dict[bytes, float]) -> tuple[int, list[str]]:
    """Submit every lane's transactions; returns (rejected, first errors)."""
    order: list[tuple[int, bytes]] = []  # round-robin over writers keeps each in nonce order
    depth = max(len(lane) for lane in lanes)
    for n in range(depth):
        order.extend((w, lane[n]) for w, lane in enumerate(lanes) if n < len(lane))
    queues: list[asyncio.Queue[tuple[float, bytes] | None]] = [asyncio.Queue() for _ in range(CONNECTIONS)]
    rejected = 0
    errors: list[str] = []
    start = time.perf_counter()

    async def worker(q: asyncio.Queue[tuple[float, bytes] | None], url: str) -> None:
        nonlocal rejected
        while (item := await q.get()) is not None:
            due, raw = item
            h = bytes(keccak(raw))
            sent[h] = due if rate is not None else time.perf_counter()
            body = ('{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x'
                    + raw.hex() + '"]}')
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                out = await r.json()
            if "error" in out:
                rejected += 1
                if len(errors) < 5:
                    errors.append(out["error"].get("message", ""))

    tasks = [asyncio.create_task(worker(q, urls[i % len(urls)])) for i, q in enumerate(queues)]
    for i, (w, raw) in enumerate(order):
        if rate is not None:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            due = time.perf_counter()
            if i - len(finality.at) >= window:
                await finality.reach(i - window + 1, 600)
        # a writer always uses the same connection (hence endpoint): its nonces arrive in order
        queues[w % CONNECTIONS].put_nowait((due, raw))
    for q in queues:
        q.put_nowait(None)
    await asyncio.gather(*tasks)
    return rejected, errors


def round_changes(folder: Path, env: dict[str, str]) -> int:
    info = json.loads(smartta("network", "status", "--dir", str(folder), "--json", env=env))
    return sum(int(n.get("round_changes") or 0) for n in info["nodes"])


async def measure(info: dict[str, Any], work: Workload, rate: float | None, window: int,
                  pids: dict[str, int], profile: Path | None,
                  rounds: Callable[[], int]) -> RunResult:
    urls = [n["rpc_http"] for n in info["nodes"]]
    finality = Finality()
    connector = aiohttp.TCPConnector(limit=CONNECTIONS + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        ready = asyncio.Event()
        follower = asyncio.create_task(follow(session, info["nodes"][0]["rpc_ws"], urls[0],
                                              finality, ready))
        await asyncio.wait_for(ready.wait(), 30)
        sent: dict[bytes, float] = {}
        for round_ in work.setup:
            before = len(finality.at)
            for raw in round_:
                await rpc(session, urls[0], "eth_sendRawTransaction", "0x" + raw.hex())
            await finality.reach(before + len(round_), 120)
        receipt = await rpc(session, urls[0], "eth_getTransactionReceipt",
                            "0x" + keccak(work.setup[0][0]).hex())
        assert receipt and int(receipt["status"], 16) == 1, "the ledger did not deploy"
        await asyncio.sleep(2)  # let the set-up blocks settle on every node
        base = len(finality.at)
        total = sum(len(lane) for lane in work.lanes)
        spies = [subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-p",
                                   str(pid), "-r", "50", "--gil", "-f", "raw", "-o",
                                   str(profile / f"{name}.txt")], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
                 for name, pid in pids.items()] if profile is not None else []
        load_average = os.getloadavg()[0]
        rounds0 = await asyncio.to_thread(rounds)
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        me0 = time.process_time()
        t0 = time.perf_counter()
        rejected, errors = await send_all(session, urls, work.lanes, rate, window, finality, sent)
        try:
            await finality.reach(base + total - rejected, 120 + total / 50)
        except TimeoutError:
            errors.append(f"only {len(finality.at) - base} of {total - rejected} final in time")
        t1 = time.perf_counter()
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        cpu["client"] = time.process_time() - me0
        rounds1 = await asyncio.to_thread(rounds)
        for spy in spies:
            spy.send_signal(2)
        for spy in spies:
            spy.wait(30)
        follower.cancel()
    final = {h: finality.at[h] for h in sent if h in finality.at}
    latencies = [final[h] - sent[h] for h in final]
    last = max(final.values()) if final else t1
    times = sorted(final.values())
    lo, hi = (times[len(times) // 10], times[len(times) * 9 // 10]) if times else (t0, t1)
    steady = sum(1 for t in times if lo < t <= hi) / (hi - lo) if hi > lo else 0.0
    blocks = [b for b in finality.blocks if b[1] >= t0]
    return RunResult(total, work.events_per_tx, rate, last - t0, len(final), len(final) / (last - t0),
                     steady, latencies, blocks, cpu, rounds1 - rounds0, rejected, errors, load_average)


def run(shape: str, txs: int, writers: int, batch_size: int, rate: float | None, window: int,
        profile: Path | None = None) -> RunResult:
    folder = Path(tempfile.mkdtemp(prefix="bench-throughput-")) / "net"
    env = {**os.environ, "SMARTTA_KEYSTORE_PASSWORD": "benchmark-only"}
    smartta("network", "init", "--dir", str(folder), "--validators", "4", "--seeded",
            "--base-port", str(BASE_PORT), env=env)
    chain_id = int(json.loads((folder / "genesis.json").read_text())["config"]["chainId"])
    t = time.perf_counter()
    work = build(chain_id, writers, txs, batch_size if shape == "batch" else 1)
    print(f"signed {txs:,} {shape} transactions in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    smartta("network", "up", "--dir", str(folder), env=env)
    try:
        info = json.loads(smartta("network", "status", "--dir", str(folder), "--json", env=env))
        pids = {n["name"]: int(n["pid"]) for n in info["nodes"]}
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
        return asyncio.run(measure(info, work, rate, window, pids, profile,
                                   lambda: round_changes(folder, env)))
    finally:
        smartta("network", "down", "--dir", str(folder), env=env)


def describe(r: RunResult, label: str) -> str:
    ev = r.events_per_tx
    sizes = [n for _, _, n in r.blocks if n]
    node_cpu = sum(v for k, v in r.cpu.items() if k != "client")
    per_tx_ms = 1000 * node_cpu / max(1, r.finalized)
    lines = [
        f"**{label}** — {r.txs:,} transactions"
        + (f" of {ev} records" if ev > 1 else "")
        + (f", open loop at {r.rate:,.0f}/s" if r.rate else ", as fast as admitted")
        + f"; load average {r.load_average:.1f} when it started.",
        "",
        "| measure | value |", "|---|---:|",
        f"| finalized transactions per second (first submission to last final) | {r.tps:,.0f} |",
        f"| … steady (middle 80% of finalizations) | {r.steady_tps:,.0f} |",
    ]
    if ev > 1:
        lines.append(f"| finalized events per second (steady) | {r.steady_tps * ev:,.0f} |")
    lines += [
        f"| finalized | {r.finalized:,} of {r.txs:,} ({r.rejected} rejected) |",
        f"| submit-to-final latency p50 / p95 / p99, s | {r.pct(50):.2f} / {r.pct(95):.2f} / "
        f"{r.pct(99):.2f} |",
        f"| blocks, median transactions per block | {len(r.blocks)}, "
        f"{statistics.median(sizes) if sizes else 0:,.0f} |",
        f"| round changes (summed over the validators) | {r.round_changes} |",
        f"| CPU of the 4 validators per finalized transaction, ms | {per_tx_ms:.1f} |",
        "| CPU seconds per validator (" + ", ".join(sorted(k for k in r.cpu if k != "client"))
        + f") | {', '.join(f'{r.cpu[k]:.1f}' for k in sorted(r.cpu) if k != 'client')} |",
        f"| CPU seconds of the load generator | {r.cpu['client']:.1f} |",
    ]
    if r.errors:
        lines += ["", "First errors: " + "; ".join(r.errors)]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=("single", "batch"))
    ap.add_argument("--rate", default="max", help="'max' or transactions per second")
    ap.add_argument("--txs", type=int, default=10_000)
    ap.add_argument("--writers", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--window", type=int, default=4_000,
                    help="most transactions submitted and not yet final (--rate max)")
    ap.add_argument("--profile", type=Path, help="py-spy each validator into this folder")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.shape is not None:
        rate = None if args.rate == "max" else float(args.rate)
        r = run(args.shape, args.txs, args.writers, args.batch_size, rate, args.window, args.profile)
        print(describe(r, f"{args.shape}, rate {args.rate}"))
        return 0
    peak = run("single", args.txs, args.writers, 1, None, args.window)
    half = run("single", args.txs, args.writers, 1, peak.steady_tps / 2, args.window)
    batch_txs = max(1, args.txs // args.batch_size)
    batched = run("batch", batch_txs, min(args.writers, batch_txs), args.batch_size, None, args.window)
    body = "\n\n".join([
        "Four validator processes (`smartta network up`, block period 1 s) and the load generator "
        "share the machine's cores. CeFiEventLedger (via-IR, as `ape compile` builds it); every "
        "record an ORDER_PLACED delta attested with EIP-712 by its actor and checked on chain; "
        f"{args.writers} writers, one eth_sendRawTransaction per HTTP request over {CONNECTIONS} "
        "keep-alive connections spread over the 4 validators. A transaction is final when the first "
        "validator announces its block (newHeads).",
        describe(peak, "Single appends, peak"),
        describe(half, "Single appends at half the peak rate (latency)"),
        describe(batched, f"appendBatch of {args.batch_size}, peak"),
        "Targets (issue 3): >= 300 single-event transactions per second finalized; >= 5,000 events "
        "per second with batched appends; p99 submit-to-final under 2 block periods (2 s) at half "
        "the peak rate.",
    ])
    print(body)
    if not args.no_write:
        write_section("throughput", "Finalized ledger throughput on the 4-validator devnet "
                      "(`bench_throughput.py`)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
