"""Ledger transactions per second and submit-to-final latency: the 4-validator devnet side by side
with anvil and ape's default local network, with `smartta network bench`'s load generator.

Workload (node/network/loadgen.py): CeFiEventLedger as `ape compile` builds it, deployed fresh;
many throwaway senders, each its own actor with writer and attester roles; every record an
ORDER_PLACED delta attested with EIP-712 and checked on chain. Pre-signed transactions go one per
eth_sendRawTransaction request over keep-alive connections. Rounds (Caliper's rate controllers):

1. warm-up (not reported);
2. single appends, peak: fixed-load (closed loop: at most ``--load`` submitted and not final);
3. single appends at half the peak throughput: fixed-rate (open loop), for latency;
4. appendBatch of ``--batch`` records, peak: fixed-load; events/s = transactions/s x batch.

Targets (issue 3, the 4 validators and the load generator on this 2-core machine): >= 300 single
appends/s finalized and >= 2x ape's local network; >= 5,000 events/s batched; p99 submit-to-final
under 2 block periods at half the peak rate.

- devnet: `smartta network init --seeded` + `up` in a temporary folder (block period 1 s);
  transactions spread over the 4 validators' RPC; final = announced by validator-1's newHeads.
  During the peak round each validator is sampled with py-spy (if installed) and its CPU seconds
  read from /proc, to say where the time goes.
- anvil (npm @foundry-rs/anvil-linux-amd64) mining a block every second with the devnet's gas
  limit (automine, a block per transaction, stalled under this load: see run_anvil),
  same generator over HTTP + WebSocket, senders funded from anvil's first dev account.
- ape's default local network (`ethereum:local:test`: eth-tester on py-evm, in this process,
  automine): the same pre-signed transactions sent one after the other through ape's provider
  (an in-process chain takes one at a time); latency is the time send_raw_transaction takes to
  return with the block mined.

Run: `.venv/bin/python benchmarks/bench_network.py` (writes its section of RESULTS.md), or
`--only devnet|anvil|ape`, `--txs N`, `--no-write`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from results import write_section  # noqa: E402

from node.network import local  # noqa: E402
from node.network.init import free_base_port, port_free  # noqa: E402
from node.network.loadgen import (  # noqa: E402
    Bench,
    LedgerWorkload,
    Round,
    RoundReport,
    Sender,
    Target,
    contract_address,
    cpu_seconds,
    ledger_code,
    summarise,
    tx_hash,
)
from node.network.spec import NetworkSpec  # noqa: E402

ARTIFACT = ROOT / ".build" / "__local__.json"
SMARTTA = str(Path(sys.executable).with_name("smartta"))
PY_SPY = Path(sys.executable).with_name("py-spy")
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
# anvil's first dev account: a published test key, funded only on anvil.
ANVIL_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
PASSWORD = "benchmark-only"


def base_port(nodes: int) -> int:
    """A --base-port in 5000-5900 whose ports are all free (other networks share the machine)."""
    return free_base_port(nodes, range(5000, 5900, 20))


def compiled() -> Path:
    if not ARTIFACT.exists():
        subprocess.run([str(Path(sys.executable).with_name("ape")), "compile"], cwd=ROOT, check=True,
                       capture_output=True, timeout=900)
    return ARTIFACT


# ---- where the time goes ------------------------------------------------------------------------

PHASES = (  # (label, marker in a frame), innermost match wins
    ("block building (proposer: execute + seal)", "create_block ("),
    ("block validation (re-execution by the others)", "validate_block ("),
    ("block import (store, receipts, indexes)", "import_block ("),
    ("transaction pool admission", "pool.py"),
    ("logging (aiohttp's access log line per request)", "logging/"),
    ("JSON-RPC server (aiohttp, JSON, sendRawTransaction)", ("node/rpc/", "aiohttp/")),
    ("consensus messages", "node/consensus/"),
    ("p2p transport and gossip", "node/p2p/"),
    ("thread hand-offs (executor results, call_soon_threadsafe)", ("_write_to_self",
                                                                    "concurrent/futures")),
)
KINDS = (  # what the innermost recognisable frame is doing
    ("EVM interpreter", ("/eth/vm/", "chain/execution/executor", "chain/execution/forks")),
    ("keccak, RLP, tries", ("eth_hash", "/rlp/", "fastrlp", "/trie/", "chain/execution/mpt",
                            "chain/execution/hashing")),
    ("secp256k1 recovery and signing", ("coincurve", "eth_keys", "seals.py")),
    ("LMDB", ("lmdb", "node/store/")),
    ("HMAC of p2p frames", ("hmac.py",)),
    ("JSON", ("json/",)),
)
LOOP = ("asyncio/", "selectors.py", "socket", "aiohttp/", "concurrent/futures")
IDLE = ("EpollSelector.select (", "_worker (concurrent/futures/thread.py", "Condition.wait (",
        "Event.wait (")
"""Leaves of threads waiting for work: py-spy --nonblocking cannot always tell them idle."""


def classify(stack: str, table: tuple[tuple[str, object], ...]) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for label, markers in table:
            if any(m in frame for m in (markers if isinstance(markers, tuple) else (markers,))):
                return label
    if table is KINDS and any(m in frames[-1] for m in LOOP):
        return "event loop, sockets, HTTP"
    return "other"


def profile_summary(folder: Path) -> str:
    phases: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for path in folder.glob("*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit() or any(m in stack.rsplit(";", 1)[-1] for m in IDLE):
                continue
            phases[classify(stack, PHASES)] += int(count)  # type: ignore[arg-type]
            kinds[classify(stack, KINDS)] += int(count)  # type: ignore[arg-type]
    total = sum(phases.values())
    if not total:
        return "(no py-spy samples)"
    lines = ["| where (innermost phase on the stack) | share of busy samples |", "|---|---:|"]
    lines[0] = lines[0].replace("busy samples", f"busy samples ({total:,})")
    lines += [f"| {k} | {100 * v / total:.0f}% |" for k, v in phases.most_common()]
    lines += ["", "| what (innermost recognisable frame) | share |", "|---|---:|"]
    lines += [f"| {k} | {100 * v / total:.0f}% |" for k, v in kinds.most_common()]
    return "\n".join(lines)


class Spies:
    """py-spy on each process, non-blocking (it does not stop the node to sample)."""

    def __init__(self, pids: dict[str, int], folder: Path) -> None:
        self.procs = []
        if not PY_SPY.exists():
            return
        folder.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            self.procs.append(subprocess.Popen(
                [str(PY_SPY), "record", "--nonblocking", "-r", "50", "-f", "raw", "-p", str(pid),
                 "-o", str(folder / f"{name}.txt")], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(60)


# ---- the three chains ---------------------------------------------------------------------------


@contextlib.contextmanager
def devnet() -> Iterator[tuple[Path, NetworkSpec]]:
    folder = Path(tempfile.mkdtemp(prefix="bench-network-")) / "net"
    env = {**os.environ, "SMARTTA_KEYSTORE_PASSWORD": PASSWORD}

    def smartta(*args: str) -> None:
        subprocess.run([SMARTTA, *args], env=env, check=True, capture_output=True, timeout=300)

    smartta("network", "init", "--dir", str(folder), "--validators", "4", "--seeded",
            "--block-period", "1", "--base-port", str(base_port(4)))
    try:
        smartta("network", "up", "--dir", str(folder))
        yield folder, NetworkSpec.load(folder)
    finally:
        smartta("network", "down", "--dir", str(folder))
        shutil.rmtree(folder.parent, ignore_errors=True)


async def measure(bench: Bench, args: argparse.Namespace, pids: dict[str, int] | None,
                  profile: Path | None) -> tuple[list[RoundReport], dict[str, float]]:
    async with bench.connected():
        await bench.setup()
        await bench.run_round(Round("warm-up", args.warmup, "fixed-load", 200))
        spies = Spies(pids, profile) if pids and profile is not None else None
        cpu0 = {k: cpu_seconds(p) or 0.0 for k, p in (pids or {}).items()}
        me0 = time.process_time()
        peak = await bench.run_round(Round("single appends, peak", args.txs, "fixed-load", args.load))
        cpu = {k: (cpu_seconds(p) or 0.0) - cpu0[k] for k, p in (pids or {}).items()}
        cpu["load generator"] = time.process_time() - me0
        if spies is not None:
            spies.stop()
        rate = max(1.0, peak.throughput / 2)
        half = await bench.run_round(Round("single appends, half the peak rate",
                                           max(100, int(rate * args.half_seconds)), "fixed-rate", rate))
        batch = await bench.run_round(Round(f"appendBatch of {args.batch}, peak",
                                            max(10, args.batch_events // args.batch), "fixed-load",
                                            args.batch_load, args.batch))
    return [peak, half, batch], cpu


def run_devnet(args: argparse.Namespace, profile: Path) -> tuple[list[RoundReport], dict[str, float], str]:
    with devnet() as (folder, spec):
        target = Target([local.url_of(n) for n in spec.validators], local.url_of(spec.validators[0]),
                        f"ws://{spec.validators[0].host}:{spec.validators[0].rpc_ws_port}")
        pids = {n.name: pid for n in spec.validators if (pid := local.running_pid(folder, n))}
        bench = Bench(target, senders=args.senders, connections=args.connections,
                      artifact=compiled(), say=print)
        reports, cpu = asyncio.run(measure(bench, args, pids, profile))
    return reports, cpu, profile_summary(profile)


DEVNET_GAS_LIMIT = 250_000_000  # node.network.spec's default block gas limit


def run_anvil(args: argparse.Namespace) -> list[RoundReport]:
    if not ANVIL.exists():
        raise SystemExit(f"{ANVIL} is missing: `npm ci` installs it (optional dependency)")
    port = next(p for p in range(5900, 5999) if port_free("127.0.0.1", p))
    # Interval mining at the devnet's block period and gas limit: in automine mode (a block per
    # transaction) anvil 1.7.1 stopped mining here with 1,500 transactions pending, at 100% CPU
    # and growing past 18 GB. --prune-history: no past states kept (nothing here reads them).
    proc = subprocess.Popen([str(ANVIL), "--port", str(port), "--hardfork", "cancun", "--silent",
                             "--block-time", "1", "--gas-limit", str(DEVNET_GAS_LIMIT),
                             "--prune-history"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not _answers(url):
            if time.monotonic() > deadline:
                raise SystemExit("anvil did not start")
            time.sleep(0.2)
        bench = Bench(Target([url], url, f"ws://127.0.0.1:{port}"), senders=args.senders,
                      connections=args.connections, artifact=compiled(), funder=ANVIL_KEY, say=print)
        reports, _ = asyncio.run(measure(bench, args, None, None))
        return reports
    finally:
        proc.terminate()
        proc.wait(30)


def _answers(url: str) -> bool:
    try:
        local.rpc(url, "eth_blockNumber", timeout=1)
        return True
    except local.LiveError:
        return False


def run_ape(args: argparse.Namespace) -> list[RoundReport]:
    """The same workload through ape's in-process local network, one transaction at a time."""
    from ape import accounts, networks

    with networks.parse_network_choice("ethereum:local:test") as provider:
        w3 = provider.web3
        chain_id = w3.eth.chain_id
        base = int(w3.eth.get_block("latest").get("baseFeePerGas") or 0)
        fees = (max(2 * base, 10**9) + 10**9, 10**9)
        funder = Sender(bytes.fromhex(accounts.test_accounts[0].private_key[2:]), chain_id)
        funder.nonce = w3.eth.get_transaction_count(w3.to_checksum_address(funder.address))
        senders = [Sender(bytes([1 + i]) * 32, chain_id) for i in range(args.ape_senders)]
        admin = Sender(b"\xad" * 32, chain_id)
        for s in [admin, *senders]:
            w3.eth.send_raw_transaction(funder.sign(s.address, b"", 21_000, fees, value=10**19))
        ledger = contract_address(admin.address, admin.nonce)
        from eth_abi.abi import encode as abi_encode
        from eth_hash.auto import keccak

        from chain.ledger import onchain

        w3.eth.send_raw_transaction(admin.sign(None, ledger_code(compiled()) + abi_encode(
            ["address"], [admin.address]), 8_000_000, fees))
        grant = bytes(keccak(b"grantRole(bytes32,address)"))[:4]
        for s in senders:
            for role in (onchain.WRITER_ROLE, onchain.ATTESTER_ROLE):
                w3.eth.send_raw_transaction(admin.sign(ledger, grant + abi_encode(
                    ["bytes32", "address"], [role, s.address]), 200_000, fees))
        workload = LedgerWorkload(chain_id, senders, ledger, fees)
        reports = []
        for r in (Round("single appends, one at a time", args.ape_txs, "fixed-load", 1),
                  Round(f"appendBatch of {args.batch}, one at a time", max(10, args.ape_txs // args.batch),
                        "fixed-load", 1, args.batch)):
            print(f"ape: {r.label}, {r.txs} transactions")
            txs = workload.transactions(r.txs, r.batch_size)
            submitted, final = {}, {}
            for _, raw in txs:
                h = tx_hash(raw)
                submitted[h] = time.perf_counter()
                w3.eth.send_raw_transaction(raw)
                final[h] = time.perf_counter()
            statuses = {h: w3.eth.get_transaction_receipt(h)["status"] == 1 for h in submitted}
            blocks = [(0, final[h], 1) for h in submitted]
            reports.append(summarise(r, submitted, {h: (final[h], statuses[h]) for h in submitted},
                                     0, blocks, []))
    return reports


# ---- report -------------------------------------------------------------------------------------


def row(chain: str, r: RoundReport) -> str:
    return (f"| {chain} | {r.label} | {r.succ:,} | {r.fail:,} | {r.send_rate:,.0f} | {r.throughput:,.0f} | "
            f"{r.events_per_second:,.0f} | {r.latency_p50:.2f} / {r.latency_p95:.2f} / "
            f"{r.latency_p99:.2f} | {r.latency_max:.2f} | {r.median_txs_per_block:,.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=("devnet", "anvil", "ape"), action="append")
    ap.add_argument("--txs", type=int, default=10_000, help="single appends in the peak round")
    ap.add_argument("--warmup", type=int, default=1_000)
    ap.add_argument("--load", type=int, default=1_500, help="outstanding transactions at peak")
    ap.add_argument("--half-seconds", type=float, default=120.0,
                    help="length of the half-rate round (its count is rate x seconds)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--batch-load", type=int, default=80)
    ap.add_argument("--batch-events", type=int, default=30_000,
                    help="events in the batched peak round (appendBatch calls x --batch)")
    ap.add_argument("--senders", type=int, default=500)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--ape-txs", type=int, default=2_000)
    ap.add_argument("--ape-senders", type=int, default=20)
    ap.add_argument("--profile", type=Path, default=None,
                    help="folder for the py-spy samples (default: a new temporary folder)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    only = set(args.only or ("devnet", "anvil", "ape"))
    load_average = os.getloadavg()
    results: dict[str, list[RoundReport]] = {}
    cpu: dict[str, float] = {}
    where = ""
    if "devnet" in only:
        profile = args.profile or Path(tempfile.mkdtemp(prefix="bench-network-spy-"))
        results["devnet (4 validators)"], cpu, where = run_devnet(args, profile)
        print(f"py-spy samples (collapsed stacks): {profile}")
        print("\n".join(row("devnet", r) for r in results["devnet (4 validators)"]), flush=True)
    if "anvil" in only:
        results["anvil (1 s blocks)"] = run_anvil(args)
        print("\n".join(row("anvil", r) for r in results["anvil (1 s blocks)"]), flush=True)
    if "ape" in only:
        results["ape local (eth-tester)"] = run_ape(args)
    table = ["| chain | round | succ | fail | send rate tx/s | throughput tx/s | events/s | "
             "latency p50 / p95 / p99 s | max s | median tx/block |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    table += [row(chain, r) for chain, reports in results.items() for r in reports]
    errors = [f"{chain}, {r.label}: {'; '.join(r.errors)}" for chain, reports in results.items()
              for r in reports if r.errors]
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "node", "chain", "contracts"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    parts = [
        f"Code: commit {head}" + (" plus uncommitted changes in node/, chain/ or contracts/ (work in "
                                  "progress on this machine)" if dirty else "") + ". "
        f"Load average when it started: {load_average[0]:.1f} / {load_average[1]:.1f} / "
        f"{load_average[2]:.1f} (1 / 5 / 15 min; other work shares the 2 cores). {args.senders} senders, "
        f"{args.connections} connections; peak rounds closed-loop with {args.load} (single) and "
        f"{args.batch_load} (batched) transactions outstanding; the half-rate round open-loop for "
        f"{args.half_seconds:.0f} s; ape's network takes one transaction at a time ({args.ape_txs:,} "
        "single appends).",
        "\n".join(table),
    ]
    if errors:
        parts.append("Errors: " + " ".join(errors))
    devnet_reports = results.get("devnet (4 validators)")
    if devnet_reports:
        peak, half, batch = devnet_reports
        ape = results.get("ape local (eth-tester)")
        checks = [
            f"- single appends finalized per second: {peak.throughput:,.0f} (target >= 300)",
            f"- batched events finalized per second: {batch.events_per_second:,.0f} (target >= 5,000)",
            f"- p99 submit-to-final at half the peak rate: {half.latency_p99:.2f} s (target < 2 s, two "
            "block periods)",
        ]
        if ape:
            checks.append(f"- devnet / ape local, single appends: {peak.throughput / ape[0].throughput:.2f}x "
                          "(target >= 2x)")
        parts.append("Against issue 3's targets:\n\n" + "\n".join(checks))
        nodes_cpu = sum(v for k, v in cpu.items() if k != "load generator")
        parts.append("CPU seconds during the devnet peak round: " + ", ".join(
            f"{k} {v:.0f}" for k, v in cpu.items()) + f"; {1000 * nodes_cpu / max(1, peak.succ):.1f} "
            "ms of validator CPU per finalized transaction (all four validators together).")
        parts.append("Where the validators' time goes during the peak round (py-spy, 50 Hz, all four "
                     "validators together):\n\n" + where)
    body = "\n\n".join(parts)
    print(body)
    if not args.no_write:
        write_section("network", "Ledger throughput: devnet vs anvil vs ape's local network "
                      "(`bench_network.py`)", body)
    print(json.dumps({k: [r.to_json() for r in v] for k, v in results.items()}, default=str)[:2000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
