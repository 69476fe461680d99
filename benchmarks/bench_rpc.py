"""JSON-RPC throughput: eth_sendRawTransaction and a trivial call per second through node.rpc.

The server runs in its own process (as in the node) with a transaction pool that does what any
pool must per transaction: decode it and recover its sender (node.rpc.tx, coincurve), check the
nonce and keep it. A client process sends pre-signed EIP-1559 transactions from many senders
over keep-alive HTTP connections, one request at a time per connection, and also as JSON-RPC
batches. The figures are the RPC layer's ceiling on this machine; the 4-validator devnet shares
the same cores with consensus and execution (see the devnet benchmark for end-to-end figures).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import aiohttp
from eth_account import Account
from results import write_section

from chain.qbft.block import Block
from chain.qbft.genesis import Genesis, QbftSettings, build_genesis
from chain.qbft.header import BlockHeader
from chain.qbft.seals import address_of
from node.abc import Account as Acct
from node.abc import (
    AccountProof,
    BlockId,
    CallRequest,
    CallResult,
    ChainAPI,
    Log,
    LogFilter,
    NodeAPI,
    NodeStatus,
    PoolStats,
    Receipt,
    TxLocation,
    TxPoolAPI,
    TxRejected,
)
from node.rpc import RpcConfig, RpcServer
from node.rpc.tx import TxDecodeError, decode

CHAIN_ID = 2026
SENDERS = 100
PER_SENDER = 60
CONNECTIONS = 16
BATCH = 50
POOLS = {"real": "node.txpool pool", "minimal": "minimal pool (decode + sender recovery)"}


class GenesisOnly(ChainAPI):
    def __init__(self) -> None:
        self.genesis = Genesis(build_genesis(chain_id=CHAIN_ID, validators=[address_of(b"\x01" * 32)],
                                             qbft=QbftSettings()))

    @property
    def head(self) -> BlockHeader:
        return self.genesis.header()

    def header(self, block: BlockId) -> BlockHeader | None:
        return self.head if block in (0, self.genesis.hash) else None

    def block(self, block: BlockId) -> Block | None:
        return Block(self.head) if block in (0, self.genesis.hash) else None

    def receipts(self, block: BlockId) -> list[Receipt] | None:
        return []

    def transaction(self, tx_hash: bytes) -> TxLocation | None:
        return None

    def logs(self, flt: LogFilter) -> list[Log]:
        return []

    def account(self, address: bytes, block: BlockId) -> Acct:
        raise NotImplementedError

    def code(self, address: bytes, block: BlockId) -> bytes:
        raise NotImplementedError

    def storage_at(self, address: bytes, slot: int, block: BlockId) -> int:
        raise NotImplementedError

    def proof(self, address: bytes, slots: Sequence[int], block: BlockId) -> AccountProof:
        raise NotImplementedError

    def call(self, request: CallRequest, block: BlockId) -> CallResult:
        raise NotImplementedError

    def estimate_gas(self, request: CallRequest, block: BlockId) -> int:
        raise NotImplementedError

    def validators_for(self, number: int) -> tuple[bytes, ...]:
        return self.genesis.validators

    def on_new_head(self, callback: Callable[[Block, list[Receipt]], None]) -> None:
        pass


class MinimalPool(TxPoolAPI):
    """Per transaction: decode, recover the sender, check the nonce, keep it."""

    def __init__(self) -> None:
        self.txs: dict[bytes, bytes] = {}
        self.nonces: dict[bytes, int] = {}

    def add(self, raw: bytes, *, local: bool = True) -> bytes:
        try:
            tx = decode(raw)
            sender = tx.sender()
        except TxDecodeError as exc:
            raise TxRejected("Invalid transaction type", str(exc)) from None
        expected = self.nonces.get(sender, 0)
        if tx.nonce != expected:
            raise TxRejected("Nonce too low" if tx.nonce < expected else "Nonce too high")
        self.nonces[sender] = expected + 1
        self.txs[tx.hash] = raw
        return tx.hash

    def get(self, tx_hash: bytes) -> bytes | None:
        return self.txs.get(tx_hash)

    def pending_nonce(self, address: bytes) -> int:
        return self.nonces.get(address, 0)

    def stats(self) -> PoolStats:
        return PoolStats(len(self.txs), 0, 1 << 20)


def sender_keys() -> list[bytes]:
    return [(1000 + s).to_bytes(32, "big") for s in range(SENDERS)]


def real_node(data_dir: str) -> NodeAPI:
    """node.execution's chain with node.txpool's pool, the senders funded in the genesis."""
    from chain.qbft.genesis import AllocAccount
    from node.execution.chain import Chain

    alloc = {address_of(k): AllocAccount(balance=10**24) for k in sender_keys()}
    genesis = Genesis(build_genesis(chain_id=CHAIN_ID, validators=[address_of(b"\x01" * 32)],
                                    qbft=QbftSettings(), alloc=alloc, gas_limit=30_000_000))
    chain = Chain.open(genesis, data_dir)
    return NodeAPI(chain=chain, status=NodeStatus("bench", "validator", bytes(20)), pool=chain.pool)


def serve(port_out: mp.SimpleQueue, pool: str) -> None:  # type: ignore[type-arg]
    async def main() -> None:
        if pool == "real":
            import tempfile

            node = real_node(tempfile.mkdtemp(prefix="bench-rpc-"))
        else:
            node = NodeAPI(chain=GenesisOnly(), status=NodeStatus("bench", "validator", bytes(20)),
                           pool=MinimalPool())
        server = RpcServer(node, RpcConfig(), port=0)
        await server.start()
        port_out.put(server.port)
        await asyncio.Event().wait()

    asyncio.run(main())


def signed_transactions() -> list[list[str]]:
    """Per connection, the raw transactions it sends, in nonce order per sender."""
    per_sender = []
    for key in sender_keys():
        per_sender.append(["0x" + bytes(Account.sign_transaction(
            {"nonce": n, "gas": 100_000, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "chainId": CHAIN_ID,
             "to": "0x000000000000000000000000000000000000dEaD", "value": 0, "data": b"\x01" * 68,
             "type": 2}, key).raw_transaction).hex() for n in range(PER_SENDER)])
    lanes: list[list[str]] = [[] for _ in range(CONNECTIONS)]
    for s, txs in enumerate(per_sender):  # a sender stays on one connection: nonce order holds
        lanes[s % CONNECTIONS].extend(txs)
    return lanes


async def load(url: str, lanes: list[list[str]], batch: int) -> tuple[float, int]:
    async def lane(session: aiohttp.ClientSession, txs: list[str]) -> int:
        ok = 0
        for i in range(0, len(txs), batch):
            chunk = txs[i:i + batch]
            reqs = [{"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction", "params": [t]}
                    for j, t in enumerate(chunk)]
            body = json.dumps(reqs[0] if batch == 1 else reqs)
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                out = await r.json()
            ok += sum("result" in o for o in (out if isinstance(out, list) else [out]))
        return ok

    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        done = await asyncio.gather(*(lane(session, txs) for txs in lanes))
        return time.perf_counter() - start, sum(done)


async def calls(url: str, seconds: float = 3.0) -> tuple[float, int]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"})
    count = 0

    async def lane(session: aiohttp.ClientSession) -> None:
        nonlocal count
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                await r.read()
            count += 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as session:
        await asyncio.gather(*(lane(session) for _ in range(CONNECTIONS)))
    return count / seconds, count


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_server(pool: str = "minimal") -> tuple[Any, str]:
    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    proc = ctx.Process(target=serve, args=(q, pool), daemon=True)
    proc.start()
    return proc, f"http://127.0.0.1:{q.get()}"


def main() -> None:
    load_avg = os.getloadavg()[0]
    lanes = signed_transactions()
    total = sum(len(x) for x in lanes)
    rows = []
    try:
        import node.execution.chain  # noqa: F401

        pools = ["real", "minimal"]
    except ImportError:
        pools = ["minimal"]
    for pool in pools:
        for batch in (1, BATCH):
            proc, url = run_server(pool)
            try:
                assert proc.pid is not None
                cpu = cpu_seconds(proc.pid)
                seconds, ok = asyncio.run(load(url, lanes, batch))
                cpu = cpu_seconds(proc.pid) - cpu
            finally:
                proc.terminate()
            assert ok == total, f"only {ok} of {total} transactions were accepted"
            how = "one per request" if batch == 1 else f"batches of {batch}"
            rows.append((f"eth_sendRawTransaction into the {POOLS[pool]}, {how}", total / seconds,
                         cpu / total))
    proc, url = run_server()
    try:
        assert proc.pid is not None
        cpu = cpu_seconds(proc.pid)
        rate, count = asyncio.run(calls(url))
        rows.append(("eth_blockNumber (the per-request floor)", rate, (cpu_seconds(proc.pid) - cpu) / count))
    finally:
        proc.terminate()
    table = "\n".join(f"| {name} | {rate:,.0f} | {cpu * 1e6:,.0f} | {1 / cpu:,.0f} |"
                      for name, rate, cpu in rows)
    body = (f"{total:,} pre-signed EIP-1559 transactions from {SENDERS} senders over {CONNECTIONS} "
            "keep-alive HTTP connections; server and client in separate processes on the same "
            "machine. The node.txpool pool runs Besu's admission checks (on node.execution's chain); the "
            "minimal one only decodes each transaction and recovers its sender. Load average when "
            f"the run started: {load_avg:.1f} (other work on the machine lowers the first column).\n\n"
            "| measure | requests/s (client and server sharing the cores) | server CPU µs per tx/call | "
            f"one server core's capacity, per s |\n|---|---:|---:|---:|\n{table}\n\n"
            "Target: the 4-validator devnet accepts >= 300 eth_sendRawTransaction/s while its "
            "validators run.")
    print(body)
    write_section("rpc", "JSON-RPC throughput (`bench_rpc.py`)", body)


if __name__ == "__main__":
    main()
