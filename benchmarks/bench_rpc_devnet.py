"""eth_sendRawTransaction accepted per second by a running 4-validator devnet (all four validator
processes on this machine, producing blocks), and how many of those transactions were final
(in a block) when the submission ended and some seconds later.

It builds a throwaway seeded network with ``smartta network init`` in a temporary folder,
starts it with ``smartta network up``, sends pre-signed EIP-1559 transactions (gas price 0 on
the free-gas network) from many senders over keep-alive HTTP connections spread across the
validators' RPC endpoints, then stops it with ``smartta network down``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import aiohttp
from eth_account import Account
from results import write_section

SENDERS = 200
PER_SENDER = 30
CONNECTIONS = 16
SETTLE_SECONDS = 20
SMARTTA = str(Path(sys.executable).with_name("smartta"))


def smartta(*args: str, env: dict[str, str]) -> str:
    return subprocess.run([SMARTTA, *args], env=env, check=True, capture_output=True, text=True,
                          timeout=180).stdout


def lanes(chain_id: int, urls: list[str]) -> list[tuple[str, list[str]]]:
    """Per connection: the endpoint and the raw transactions it sends, nonce-ordered per sender."""
    out: list[tuple[str, list[str]]] = [(urls[i % len(urls)], []) for i in range(CONNECTIONS)]
    for s in range(SENDERS):
        key = (5000 + s).to_bytes(32, "big")
        txs = ["0x" + bytes(Account.sign_transaction(
            {"nonce": n, "gas": 60_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "chainId": chain_id,
             "to": "0x000000000000000000000000000000000000dEaD", "value": 0, "data": b"\x01" * 68,
             "type": 2}, key).raw_transaction).hex() for n in range(PER_SENDER)]
        out[s % CONNECTIONS][1].extend(txs)
    return out


async def submit(work: list[tuple[str, list[str]]]) -> tuple[float, int, list[str]]:
    errors: list[str] = []

    async def lane(session: aiohttp.ClientSession, url: str, txs: list[str]) -> int:
        ok = 0
        for raw in txs:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                               "params": [raw]})
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                out = await r.json()
            if "result" in out:
                ok += 1
            elif len(errors) < 5:
                errors.append(out["error"]["message"])
        return ok

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as session:
        start = time.perf_counter()
        done = await asyncio.gather(*(lane(session, url, txs) for url, txs in work))
        return time.perf_counter() - start, sum(done), errors


async def included(urls: list[str], first_block: int) -> tuple[int, int]:
    """(transactions in blocks after ``first_block``, head) as seen by the first validator."""
    async with aiohttp.ClientSession() as session:
        async def rpc(method: str, *params: object) -> dict[str, object]:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
            async with session.post(urls[0], data=body, headers={"Content-Type": "application/json"}) as r:
                return dict(await r.json())

        head = int(str((await rpc("eth_blockNumber"))["result"]), 16)
        total = 0
        for n in range(first_block + 1, head + 1):
            total += int(str((await rpc("eth_getBlockTransactionCountByNumber", hex(n)))["result"]), 16)
        return total, head


def main() -> None:
    load_avg = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="bench-devnet-")) / "net"
    env = {**os.environ, "SMARTTA_KEYSTORE_PASSWORD": "benchmark-only"}
    smartta("network", "init", "--dir", str(folder), "--validators", "4", "--seeded", "--base-port", "7300",
            env=env)
    smartta("network", "up", "--dir", str(folder), env=env)
    try:
        status = json.loads(smartta("network", "status", "--dir", str(folder), "--json", env=env))
        urls = [n["rpc_http"] for n in status["nodes"]]
        work = lanes(int(status["chain_id"]), urls)
        total = sum(len(t) for _, t in work)
        time.sleep(3)
        start_head = asyncio.run(included(urls, 0))[1]
        seconds, ok, errors = asyncio.run(submit(work))
        final_at_end, _ = asyncio.run(included(urls, start_head))
        time.sleep(SETTLE_SECONDS)
        final_later, head = asyncio.run(included(urls, start_head))
    finally:
        smartta("network", "down", "--dir", str(folder), env=env)
    body = (f"{total:,} pre-signed EIP-1559 transactions from {SENDERS} senders over {CONNECTIONS} "
            f"keep-alive HTTP connections spread over the 4 validators' RPC endpoints; the four "
            f"validator processes and the client share the machine (load average {load_avg:.1f} "
            "when the run started).\n\n"
            "| measure | value |\n|---|---:|\n"
            f"| eth_sendRawTransaction accepted per second while the validators run | {ok / seconds:,.0f} |\n"
            f"| accepted | {ok:,} of {total:,} |\n"
            f"| in blocks when submission ended ({seconds:.1f} s) | {final_at_end:,} |\n"
            f"| in blocks {SETTLE_SECONDS} s later (head {head}) | {final_later:,} |\n\n"
            "Target: >= 300 accepted per second."
            + (f"\n\nFirst rejections: {'; '.join(errors)}" if errors else ""))
    print(body)
    write_section("rpc_devnet", "JSON-RPC on the 4-validator devnet (`bench_rpc_devnet.py`)", body)


if __name__ == "__main__":
    main()
