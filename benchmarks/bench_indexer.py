"""Indexer backfill throughput, side by side with the node alone and with ethereum-etl, and query
API latency on the loaded data.

    python benchmarks/bench_indexer.py [--events 1000000] [--workers 2] [--skip-etl]

1. A chain of ``--events`` attested ledger events (a fund TA's mix: issues, redemptions,
   transfers, NAVs, distributions) on anvil, 1,000 records per transaction, built once and kept
   in benchmarks/out/ (anvil --dump-state / --load-state).
2. The node alone: every RecordsAppended log and every block header, fetched exactly as the
   indexer fetches them (same ranges, same concurrency), nothing decoded.
3. The indexer: a fresh backfill into PostgreSQL (SMARTTA_PG_DSN, else the embedded pgserver)
   and ClickHouse (chdb on disk), every record verified with chain/ledger; wall clock, and time
   per stage.
4. ethereum-etl 2.4.2 in its own venv (Python 3.10: it does not import on 3.11) exporting the
   same logs from the same node (blocks and transactions, then receipts and logs, as its docs
   do it).
5. The query API (uvicorn, HTTP keep-alive, one client) on the loaded data: p50/p99 per route.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "indexer"))
sys.path.insert(0, str(Path(__file__).parent))

from chainkit import Anvil, FundScenario, LedgerKit, actor_key, investor, isin, rpc  # noqa: E402
from results import write_section  # noqa: E402

from indexer.analytics import ClickHouseStore  # noqa: E402
from indexer.runner import ChainConfig, Indexer, IndexerConfig, RangePlanner  # noqa: E402

FUNDS, INVESTORS = 10, 5_000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- 1. the chain ------------------------------------------------------------------------------

def prepare(events: int, per_tx: int) -> tuple[Path, dict[str, Any]]:
    state = OUT / (f"indexer-chain-{events}.json" if per_tx == 1_000
                   else f"indexer-chain-{events}-{per_tx}.json")
    meta_file = state.with_suffix(".meta.json")
    if state.exists() and meta_file.exists():
        return state, json.loads(meta_file.read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    log(f"preparing a chain of {events:,} ledger events (once; kept in {state.name})")
    started = time.perf_counter()
    # Interval mining: in automine mode anvil 1.7.1 stops mining with a few thousand
    # transactions pending (100% CPU, memory growing), which small batches per transaction reach.
    with Anvil(extra=("--dump-state", str(state), "--block-time", "1")) as node:
        kit = LedgerKit(node.url, [actor_key(0), actor_key(1)])
        kit.deploy()
        scenario = FundScenario(funds=FUNDS, investors=INVESTORS, seed=7)
        pending: list[str] = []
        done = 0
        while done < events:
            batch = kit.entries(scenario.events(min(per_tx, events - done)))
            pending.append(kit.append_raw(batch))
            done += len(batch)
            if len(pending) >= max(50, 50_000 // per_tx):
                _wait(node.url, pending)
                pending = []
                log(f"  {done:,} events")
        _wait(node.url, pending)
        meta = {"ledger": kit.address.hex(), "events": done, "head": node.head(), "per_tx": per_tx,
                "deploy_block": kit.deploy_block, "counts": scenario.counts,
                "chain_id": kit.chain_id, "seconds": round(time.perf_counter() - started, 1)}
    meta_file.write_text(json.dumps(meta, indent=1))
    log(f"prepared in {meta['seconds']}s")
    return state, meta


def _wait(url: str, hashes: list[str]) -> None:
    for h in hashes:
        while True:
            receipt = rpc(url, "eth_getTransactionReceipt", [h])
            if receipt is not None:
                if int(receipt["status"], 16) != 1:
                    raise RuntimeError(f"append {h} reverted")
                break
            time.sleep(0.02)


# ---- 2. the node alone -------------------------------------------------------------------------

async def fetch_only(url: str, ledger: bytes, head: int, concurrency: int,
                     max_range: int, headers: bool) -> tuple[float, int, int]:
    from indexer.project import SourceSpec, weigh
    from indexer.rpc import JsonRpcSource

    source = JsonRpcSource(url, concurrency=concurrency)
    spec = SourceSpec(await source.chain_id(), ledger)
    planner = RangePlanner(0, head, step=min(100, max_range), max_step=max_range)
    logs = events = 0
    started = time.perf_counter()
    inflight: list[asyncio.Task[Any]] = []

    async def one(lo: int, hi: int) -> tuple[int, int]:
        parts: list[Any] = [source.logs(lo, hi, spec.filters())]
        if headers:
            parts.append(source.blocks(lo, hi))
        got = await asyncio.gather(*parts)
        planner.answered(hi - lo + 1, weigh(got[0]))
        return len(got[0]), weigh(got[0])

    try:
        while planner.more() or inflight:
            while planner.more() and len(inflight) < concurrency:
                inflight.append(asyncio.create_task(one(*planner.take())))
            n, w = await inflight.pop(0)
            logs += n
            events += w
    finally:
        await source.close()
    return time.perf_counter() - started, logs, events


# ---- 3. the indexer ----------------------------------------------------------------------------

def pg_dsn() -> tuple[str, str]:
    dsn = os.environ.get("SMARTTA_PG_DSN")
    if dsn:
        return dsn, "PostgreSQL at SMARTTA_PG_DSN"
    from pgserver.postgres_server import get_server

    folder = OUT / "pg"
    if not folder.exists():
        folder.mkdir(parents=True)
        folder.chmod(0o755)  # pgserver's own user must reach it; initdb then narrows it
    server = get_server(folder, cleanup_mode="stop")
    return server.get_uri(), "embedded pgserver (PostgreSQL 16)"


async def run_indexer(config: IndexerConfig, store: ClickHouseStore,
                      ) -> tuple[float, Any, tuple[float, float]]:
    """Wall seconds, the status, and CPU seconds of this process and of the verifying workers
    (which exit, and are reaped, when the run ends)."""
    ix = Indexer(config, store)
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    await ix.run(follow=False)
    wall = time.perf_counter() - started
    me2, kids2 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (me2.ru_utime + me2.ru_stime - me.ru_utime - me.ru_stime,
           kids2.ru_utime + kids2.ru_stime - kids.ru_utime - kids.ru_stime)
    return wall, next(iter(ix.status.values())), cpu


async def drop_leftovers(dsn: str) -> None:
    """Drop the schemas of earlier runs (bench_*): a database that carries millions of rows of
    old runs (autovacuum, cache pressure) slows the run measured now."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for (name,) in await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\\_%'"):
            await conn.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await conn.close()


async def pg_counts(dsn: str, schema: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        out = {}
        for table in ("ledger_records", "balance_changes", "nav_history", "blocks"):
            out[table] = int(await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}"))
        return out
    finally:
        await conn.close()


# ---- 4. ethereum-etl ---------------------------------------------------------------------------

def etl_python() -> str | None:
    candidates = [shutil.which("python3.10"), shutil.which("python3.9")]
    pyenv = Path.home() / ".pyenv" / "versions"
    if pyenv.exists():
        candidates += [str(p / "bin" / "python") for p in sorted(pyenv.glob("3.10*"))]
    for c in candidates:
        if c and subprocess.run([c, "--version"], capture_output=True).returncode == 0:
            return c
    return None


def ethereum_etl(url: str, head: int, workers: int) -> tuple[float, int] | str:
    venv = OUT / "etl-venv"
    etl = venv / "bin" / "ethereumetl"
    if not etl.exists():
        python = etl_python()
        if python is None:
            return "skipped: ethereum-etl 2.4.2 needs Python <= 3.10, none found"
        log("installing ethereum-etl 2.4.2 in its own venv")
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "ethereum-etl==2.4.2"],
                       check=True)
    work = OUT / "etl"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    common = ["--provider-uri", url, "--max-workers", str(workers), "--batch-size", "100"]
    subprocess.run([str(etl), "export_blocks_and_transactions", "--start-block", "0",
                    "--end-block", str(head), "--blocks-output", str(work / "blocks.csv"),
                    "--transactions-output", str(work / "transactions.csv"), *common],
                   check=True, capture_output=True)
    subprocess.run([str(etl), "extract_csv_column", "--input", str(work / "transactions.csv"),
                    "--column", "hash", "--output", str(work / "tx_hashes.txt")],
                   check=True, capture_output=True)
    subprocess.run([str(etl), "export_receipts_and_logs", "--transaction-hashes",
                    str(work / "tx_hashes.txt"), "--receipts-output", str(work / "receipts.csv"),
                    "--logs-output", str(work / "logs.csv"), *common],
                   check=True, capture_output=True)
    seconds = time.perf_counter() - started
    with open(work / "logs.csv") as f:
        logs = sum(1 for _ in f) - 1
    return seconds, logs


# ---- 5. API latency ----------------------------------------------------------------------------

def api_latency(dsn: str, schema: str, ch_dir: Path, meta: dict[str, Any],
                requests: int) -> dict[str, tuple[float, float, int]]:
    """The API as `smartta api` serves it, in its own process."""
    import asyncpg

    from indexer import access

    async def credential() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            return (await access.issue(conn, schema, "bench", "observer"))[1]
        finally:
            await conn.close()

    token = asyncio.run(credential())
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "indexer.cli", "api", "--pg", dsn, "--schema", schema,
         "--clickhouse", f"chdb://{ch_dir}", "--clickhouse-database", "smartta",
         "--port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rng = random.Random(1)
    head = meta["head"]
    routes: dict[str, Callable[[], str]] = {
        "register of a fund, now (100 holders)":
            lambda: f"/v1/funds/{isin(rng.randrange(FUNDS))}/register?limit=100",
        "register of a fund at a past block (100 holders)":
            lambda: f"/v1/funds/{isin(rng.randrange(FUNDS))}/register?limit=100"
                    f"&block={rng.randrange(meta['deploy_block'] + 1, head)}",
        "investor holdings at a past block":
            lambda: f"/v1/investors/{investor(rng.randrange(INVESTORS))}/holdings"
                    f"?block={rng.randrange(meta['deploy_block'] + 1, head)}",
        "investor history (50 records)":
            lambda: f"/v1/investors/{investor(rng.randrange(INVESTORS))}/history?limit=50",
        "records by type (100)":
            lambda: f"/v1/ledger/records?event_type=NAV_PUBLISHED&limit=100"
                    f"&from_seq={rng.randrange(1, meta['events'])}",
        "record by sequence number":
            lambda: f"/v1/ledger/records/{rng.randrange(1, meta['events'])}",
        "analytics: flows of a fund per day (ClickHouse)":
            lambda: f"/v1/analytics/flows?isin={isin(rng.randrange(FUNDS))}",
    }
    out = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/health")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("`smartta api` did not start") from None
                time.sleep(0.2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {token}"}
        for name, path in routes.items():
            times = []
            for i in range(requests + 20):
                started = time.perf_counter()
                conn.request("GET", path(), headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{name}: {resp.status} {body[:200]!r}")
                if i >= 20:  # warm-up
                    times.append((time.perf_counter() - started) * 1000)
            times.sort()
            out[name] = (statistics.median(times), times[int(len(times) * 0.99) - 1], len(times))
    finally:
        server.terminate()
        server.wait(30)
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- main ----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-tx", type=int, default=1_000,
                        help="records per appendBatch transaction (and so per log)")
    parser.add_argument("--section", default=None,
                        help="RESULTS.md section to write (default: one per chain layout)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch-events", type=int, default=50_000)
    parser.add_argument("--max-range", type=int, default=2_000)
    parser.add_argument("--api-requests", type=int, default=500)
    parser.add_argument("--skip-etl", action="store_true")
    parser.add_argument("--prepare-only", action="store_true", help="build the chain and stop")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()

    state, meta = prepare(args.events, args.per_tx)
    if args.prepare_only:
        return 0
    ledger = bytes.fromhex(meta["ledger"])
    dsn, pg_kind = pg_dsn()
    asyncio.run(drop_leftovers(dsn))
    for old in OUT.glob("clickhouse-bench_*"):
        shutil.rmtree(old)
    schema = "bench_" + secrets.token_hex(3)
    ch_dir = OUT / f"clickhouse-{schema}"
    load = os.getloadavg()
    with Anvil(chain_id=meta["chain_id"], extra=("--load-state", str(state))) as node:
        head = node.head()
        assert head == meta["head"], f"anvil loaded head {head}, expected {meta['head']}"
        log("the node alone: logs and headers, as the indexer fetches them")
        fetch_s, logs, events = asyncio.run(fetch_only(node.url, ledger, head, args.concurrency,
                                                       args.max_range, headers=True))
        logs_s, _, _ = asyncio.run(fetch_only(node.url, ledger, head, args.concurrency,
                                              args.max_range, headers=False))
        assert events == meta["events"], (events, meta["events"])
        log(f"  {events / fetch_s:,.0f} events/s with headers, {events / logs_s:,.0f} logs only")

        log(f"the indexer: {pg_kind}, chdb in {ch_dir.name}, {args.workers} verifying workers")
        store = ClickHouseStore.connect(f"chdb://{ch_dir}", "smartta")
        config = IndexerConfig(dsn, (ChainConfig(node.url, ledger=ledger),), schema=schema,
                               workers=args.workers, concurrency=args.concurrency,
                               batch_events=args.batch_events, max_range=args.max_range)
        wall, status, cpu = asyncio.run(run_indexer(config, store))
        counts = asyncio.run(pg_counts(dsn, schema))
        ch_rows = {t: store.query(f"SELECT count() FROM smartta.{t}")[0][0]
                   for t in ("ledger_records", "balance_changes", "nav_history", "blocks")}
        assert counts == ch_rows, (counts, ch_rows)
        assert counts["ledger_records"] == meta["events"]
        log(f"  {meta['events'] / wall:,.0f} events/s ({wall:.1f}s) {status.seconds}")

        etl: tuple[float, int] | str = "skipped (--skip-etl)"
        if not args.skip_etl:
            log("ethereum-etl: blocks and transactions, then receipts and logs")
            etl = ethereum_etl(node.url, head, args.concurrency)
            log(f"  {etl}")

        store.close()  # one process per chdb directory: `smartta api` opens it next
        log(f"API latency, {args.api_requests} requests per route")
        latency = api_latency(dsn, schema, ch_dir, meta, args.api_requests)

    rows_pg = sum(counts.values())
    s = status.seconds
    body = [
        f"A chain of {meta['events']:,} attested ledger events ({meta['head']:,} blocks, "
        f"{logs:,} RecordsAppended logs of {args.per_tx:,} records (the first holds the "
        f"{FUNDS + INVESTORS:,} opening records); {FUNDS} funds, "
        f"{INVESTORS:,} investors) on anvil 1.7.1; {pg_kind}; ClickHouse: chdb "
        f"(the embedded engine) on disk. Load average before the run: "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} (the machine is shared).",
        "",
        "| measure | events/s | time |",
        "|---|---:|---:|",
        f"| node alone: eth_getLogs + every header, as the indexer asks | "
        f"{events / fetch_s:,.0f} | {fetch_s:.1f} s |",
        f"| node alone: eth_getLogs only | {events / logs_s:,.0f} | {logs_s:.1f} s |",
        f"| **indexer backfill into PostgreSQL and ClickHouse together**, every record "
        f"verified | **{meta['events'] / wall:,.0f}** | {wall:.1f} s |",
    ]
    if isinstance(etl, tuple):
        body.append(f"| ethereum-etl 2.4.2 exporting the same logs to CSV ({etl[1]:,} logs, "
                    f"nothing decoded) | {meta['events'] / etl[0]:,.0f} | {etl[0]:.1f} s |")
        body.append("")
        body.append(f"Indexer vs ethereum-etl: **{etl[0] / wall:.1f}x**.")
    else:
        body.append("")
        body.append(f"ethereum-etl: {etl}.")
    body += [
        "",
        f"Indexer stages (seconds, overlapping): verify and decode {s.get('decode', 0):.1f}, "
        f"PostgreSQL COPY {s.get('pg', 0):.1f}, ClickHouse insert {s.get('clickhouse', 0):.1f}, "
        f"secondary index build {s.get('indexes', 0):.1f}, waiting for the node "
        f"{s.get('wait', 0):.1f}, balance loads {s.get('load', 0):.1f}, projection "
        f"{s.get('project', 0):.1f}. Rows: {rows_pg:,} into PostgreSQL "
        f"({rows_pg / max(s.get('pg', 1e-9), 1e-9):,.0f} rows/s of COPY time), the same "
        f"{sum(ch_rows.values()):,} into ClickHouse "
        f"({sum(ch_rows.values()) / max(s.get('clickhouse', 1e-9), 1e-9):,.0f} rows/s of "
        f"insert time). CPU per event: {cpu[0] / meta['events'] * 1e6:.0f} µs in the indexer "
        f"process (fetching, projection, both writers), {cpu[1] / meta['events'] * 1e6:.0f} µs in "
        "the verifying workers, plus PostgreSQL's own.",
        "",
        "| API route (`smartta api` process; one client, keep-alive) | p50 ms | p99 ms | requests |",
        "|---|---:|---:|---:|",
        *[f"| {name} | {p50:.1f} | {p99:.1f} | {n} |" for name, (p50, p99, n) in latency.items()],
        "",
        "Targets: backfill >= 20,000 events/s into both stores together, >= 3x ethereum-etl, "
        "register queries < 50 ms p99.",
    ]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        title = "Indexer backfill and query API (`bench_indexer.py`)"
        section = args.section or "indexer"
        if args.per_tx != 1_000:
            title += f", {args.per_tx} record{'s' if args.per_tx > 1 else ''} per transaction"
            section = args.section or f"indexer-{args.per_tx}-per-tx"
        write_section(section, title, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
