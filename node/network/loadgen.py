"""``smartta network bench``: a Caliper-style load generator for ledger transactions.

Caliper dropped its Besu connector in 2025; this keeps its method (besu_ops §5.3) for our
workload. A benchmark is a list of rounds, each with a transaction count and a rate controller:

- ``fixed-rate`` (open loop): transaction i is submitted at ``start + i / tps``;
- ``fixed-load`` (closed loop): at most N transactions submitted and not yet final, which finds
  the saturation point;

after an unmeasured warm-up round. Every transaction is a real ledger append: a fresh
``CeFiEventLedger`` (deployed from the ``ape compile`` artifact) takes ``append`` calls of one
ORDER_PLACED record, or ``appendBatch`` calls of many, each record attested with EIP-712 by its
actor and checked on chain. Many senders (each its own actor, with writer and attester roles)
submit pre-signed transactions (signing is not what is measured) over keep-alive HTTP
connections spread over the given endpoints, each sender always on the same connection so its
nonces arrive in order, one transaction per request as a Caliper worker sends them.

Definitions, as Caliper and the Hyperledger PSWG metrics paper give them:
- latency: the time a transaction is final (its block announced by ``newHeads`` on the watched
  node; QBFT blocks are final when added) minus the time it was submitted;
- throughput: successful transactions (receipt status 1) / (last finality - first submission);
- send rate: submitted transactions / (last submission - first submission);
- success: final with status 1; failure: refused at submission, reverted, or not final within
  the drain time after the last submission.
Percentiles are nearest-rank over the successful transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import statistics
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from coincurve import PrivateKey
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from chain import fastrlp
from chain.abc import AttestedEvent, LedgerDomain
from chain.attest.eip712 import Eip712Scheme
from chain.attest.keys import LocalSigner
from chain.ledger import onchain
from chain.ledger.record import canonical_delta, data_hash

DEFAULT_ARTIFACT = Path(".build") / "__local__.json"
GRANTS_PER_BLOCK = 150
"""Admin transactions in flight at once (the pool keeps at most 200 per sender)."""
APPEND_GAS = 300_000
BATCH_GAS_BASE, BATCH_GAS_PER_RECORD = 100_000, 40_000


class BenchError(RuntimeError):
    """A benchmark that cannot run, and what to do about it."""


# ---- transactions --------------------------------------------------------------------------------


class Sender:
    """A throwaway account signing EIP-1559 transactions with coincurve (fast enough to pre-sign
    tens of thousands)."""

    def __init__(self, secret: bytes, chain_id: int) -> None:
        self.secret = secret
        self.key = PrivateKey(secret)
        self.address = bytes(keccak(self.key.public_key.format(compressed=False)[1:]))[12:]
        self.chain_id = chain_id
        self.nonce = 0
        self.record_nonce = 0

    def sign(self, to: bytes | None, data: bytes, gas: int, fees: tuple[int, int],
             value: int = 0) -> bytes:
        max_fee, tip = fees
        fields: list[Any] = [self.chain_id, self.nonce, tip, max_fee, gas, to or b"", value, data, []]
        self.nonce += 1
        payload = b"\x02" + fastrlp.encode(fields)
        sig = self.key.sign_recoverable(bytes(keccak(payload)), hasher=None)
        r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
        return b"\x02" + fastrlp.encode([*fields, v, r, s])


def tx_hash(raw: bytes) -> bytes:
    return bytes(keccak(raw))


def contract_address(sender: bytes, nonce: int) -> bytes:
    return bytes(keccak(fastrlp.encode([sender, nonce])))[12:]


def ledger_code(artifact: Path) -> bytes:
    """CeFiEventLedger's deployment bytecode from ape's compiled manifest."""
    try:
        manifest = json.loads(artifact.read_text())
        code = manifest["contractTypes"]["CeFiEventLedger"]["deploymentBytecode"]["bytecode"]
    except FileNotFoundError:
        raise BenchError(f"{artifact} does not exist: run `ape compile` in the repository (or "
                         "pass --artifact with the compiled manifest)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"{artifact} holds no CeFiEventLedger bytecode ({exc}); run `ape compile`"
                         ) from None
    return bytes.fromhex(code.removeprefix("0x"))


class LedgerWorkload:
    """Ledger appends from many senders, each its own attesting actor."""

    scheme = Eip712Scheme()

    def __init__(self, chain_id: int, senders: Sequence[Sender], ledger: bytes,
                 fees: tuple[int, int]) -> None:
        self.senders = list(senders)
        self.domain = LedgerDomain(chain_id, ledger)
        self.ledger = ledger
        self.fees = fees

    def entry(self, actor: Sender) -> onchain.Entry:
        actor.record_nonce += 1
        n = actor.record_nonce
        delta = canonical_delta("ORDER_PLACED", {
            "order": f"O{actor.address.hex()[:8]}{n:08d}", "investor": "inv_" + actor.address.hex()[:16],
            "isin": "IE00B4L5Y983", "side": "subscription", "amount": "10000",
            "currency": "EUR", "dealing_date": "2026-11-25", "channel": "rest"})
        event = AttestedEvent(actor.address, "ORDER_PLACED", data_hash(delta), n)
        proof = self.scheme.attest(event, self.domain, [LocalSigner(actor.secret)])
        return onchain.Entry(actor.address, "ORDER_PLACED", n, delta, proof)

    def transactions(self, count: int, batch_size: int) -> list[tuple[int, bytes]]:
        """``count`` (sender index, raw transaction), round-robin over the senders so that each
        sender's nonces come in order."""
        out = []
        for i in range(count):
            s = i % len(self.senders)
            sender = self.senders[s]
            if batch_size == 1:
                data, gas = onchain.encode_append(self.entry(sender)), APPEND_GAS
            else:
                data = onchain.encode_batch([self.entry(sender) for _ in range(batch_size)])
                gas = BATCH_GAS_BASE + BATCH_GAS_PER_RECORD * batch_size
            out.append((s, sender.sign(self.ledger, data, gas, self.fees)))
        return out


# ---- rounds and their report ---------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    label: str
    txs: int
    control: str
    """"fixed-rate" or "fixed-load"."""
    value: float
    """Transactions per second (fixed-rate) or transactions outstanding (fixed-load)."""
    batch_size: int = 1

    def __post_init__(self) -> None:
        if self.control not in ("fixed-rate", "fixed-load"):
            raise BenchError(f"round {self.label}: rate control {self.control!r} is not fixed-rate "
                             "or fixed-load")
        if self.txs < 1 or self.value <= 0 or self.batch_size < 1:
            raise BenchError(f"round {self.label}: txs, the rate or load, and the batch size must "
                             "be positive")


def parse_round(text: str) -> Round:
    """``label=peak,fixed-load=800,txs=10000[,batch=50]`` or ``fixed-rate=150,txs=3000``."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise BenchError(f"round {text!r}: {part!r} is not key=value")
        fields[key.strip()] = value.strip()
    controls = [k for k in fields if k in ("fixed-rate", "fixed-load")]
    if len(controls) != 1:
        raise BenchError(f"round {text!r}: give exactly one of fixed-rate=TPS or fixed-load=N")
    unknown = set(fields) - {"label", "txs", "batch", *controls}
    if unknown:
        raise BenchError(f"round {text!r}: unknown {', '.join(sorted(unknown))}; use label, "
                         "fixed-rate or fixed-load, txs, batch")
    try:
        control = controls[0]
        batch = int(fields.get("batch", "1"))
        return Round(fields.get("label", f"{control} {fields[control]}" + (f" batch {batch}" if batch > 1
                                                                             else "")),
                     int(fields.get("txs", "1000")), control, float(fields[control]), batch)
    except ValueError as exc:
        raise BenchError(f"round {text!r}: {exc}") from None


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class RoundReport:
    label: str
    control: str
    value: float
    batch_size: int
    succ: int
    fail: int
    send_rate: float
    throughput: float
    latency_min: float
    latency_avg: float
    latency_max: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    seconds: float
    blocks: int
    median_txs_per_block: float
    signing_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.throughput * self.batch_size

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"events_per_second": self.events_per_second}


def summarise(r: Round, submitted: dict[bytes, float], final: dict[bytes, tuple[float, bool]],
              refused: int, blocks: Sequence[tuple[int, float, int]], errors: list[str],
              signing: float = 0.0) -> RoundReport:
    """Caliper's figures from submission times, finality times and statuses."""
    ok = {h: final[h][0] for h in submitted if h in final and final[h][1]}
    latencies = sorted(ok[h] - submitted[h] for h in ok)
    fail = refused + len(submitted) - len(ok)
    sends = sorted(submitted.values())
    first = sends[0] if sends else 0.0
    span = sends[-1] - first if len(sends) > 1 else 0.0
    last_final = max(ok.values()) if ok else first
    seen = [n for _, t, n in blocks if t >= first and n]
    return RoundReport(
        r.label, r.control, r.value, r.batch_size, len(ok), fail,
        (len(sends) + refused) / span if span > 0 else math.nan,
        len(ok) / (last_final - first) if last_final > first else 0.0,
        latencies[0] if latencies else math.nan,
        statistics.fmean(latencies) if latencies else math.nan,
        latencies[-1] if latencies else math.nan,
        percentile(latencies, 50), percentile(latencies, 95), percentile(latencies, 99),
        last_final - first, len(seen), statistics.median(seen) if seen else 0.0, signing, errors)


# ---- the driver ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    submit: list[str]
    """JSON-RPC HTTP URLs transactions are spread over."""
    watch_http: str
    watch_ws: str | None
    """Where finality is watched: newHeads over WebSocket (or polling over HTTP when None)."""


class Finality:
    """Blocks as the watched node adds them: when each transaction became final, and its status."""

    def __init__(self) -> None:
        self.at: dict[bytes, tuple[float, bool]] = {}
        self.blocks: list[tuple[int, float, int]] = []
        self.next: int | None = None
        self.changed = asyncio.Event()
        self.listener: Callable[[bytes], None] | None = None
        """Told each transaction as it becomes final (the fixed-load controller)."""

    def add(self, number: int, when: float, receipts: list[dict[str, Any]]) -> None:
        for rc in receipts:
            h = bytes.fromhex(rc["transactionHash"][2:])
            self.at[h] = (when, rc.get("status") == "0x1")
            if self.listener is not None:
                self.listener(h)
        self.blocks.append((number, when, len(receipts)))
        self.changed.set()


class Bench:
    def __init__(self, target: Target, *, senders: int = 100, connections: int = 16,
                 artifact: Path = DEFAULT_ARTIFACT, funder: bytes | None = None,
                 drain_timeout: float = 60.0, say: Callable[[str], None] | None = None) -> None:
        if senders < 1 or connections < 1:
            raise BenchError("--senders and --connections must be at least 1")
        self.target = target
        self.sender_count = senders
        self.connections = connections
        self.artifact = artifact
        self.funder = funder
        self.drain_timeout = drain_timeout
        self.say = say or (lambda text: None)
        self.finality = Finality()
        self.workload: LedgerWorkload | None = None
        self._session: Any = None
        self._follower: asyncio.Task[None] | None = None

    # -- JSON-RPC --

    async def call(self, url: str, method: str, *params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        async with self._session.post(url, data=body,
                                      headers={"Content-Type": "application/json"}) as response:
            out = await response.json(content_type=None)
        if out.get("error"):
            raise BenchError(f"{url} {method}: {out['error'].get('message')}")
        return out.get("result")

    async def _send_raw(self, url: str, raw: bytes) -> str | None:
        """None, or the node's reason for refusing the transaction."""
        body = '{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x' + raw.hex() + '"]}'
        try:
            async with self._session.post(url, data=body,
                                          headers={"Content-Type": "application/json"}) as response:
                out = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:  # counted, not fatal
            return f"{type(exc).__name__}: {exc}"
        error = out.get("error")
        return None if not error else str(error.get("message", error))

    # -- following finality --

    async def _follow(self, ready: asyncio.Event) -> None:
        url = self.target.watch_http
        self.finality.next = int(await self.call(url, "eth_blockNumber"), 16) + 1
        if self.target.watch_ws is None:
            ready.set()
            while True:
                await self._catch_up(int(await self.call(url, "eth_blockNumber"), 16))
                await asyncio.sleep(0.05)
        async with self._session.ws_connect(self.target.watch_ws, max_msg_size=0) as ws:
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                          "params": ["newHeads"]}))
            async for message in ws:
                data = json.loads(message.data)
                if data.get("id") == 1:
                    if data.get("error"):
                        raise BenchError(f"{self.target.watch_ws} refuses eth_subscribe newHeads: "
                                         f"{data['error'].get('message')}")
                    ready.set()
                    continue
                header = data.get("params", {}).get("result")
                if header:
                    await self._catch_up(int(header["number"], 16))

    async def _catch_up(self, head: int) -> None:
        """Fetch the receipts of every block up to ``head`` (a missed announcement is not lost)."""
        assert self.finality.next is not None
        while self.finality.next <= head:
            number = self.finality.next
            when = time.perf_counter()
            receipts = await self.call(self.target.watch_http, "eth_getBlockReceipts", hex(number))
            self.finality.add(number, when, receipts or [])
            self.finality.next += 1

    async def _wait_final(self, hashes: Sequence[bytes], timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while not all(h in self.finality.at for h in hashes):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return False
            self.finality.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.finality.changed.wait(), min(remaining, 1.0))
            if self._follower is not None and self._follower.done():
                self._follower.result()  # raise what stopped it
                raise BenchError("the newHeads subscription ended")
        return True

    # -- set-up --

    async def setup(self) -> None:
        url = self.target.submit[0]
        chain_id = int(await self.call(url, "eth_chainId"), 16)
        latest = await self.call(url, "eth_getBlockByNumber", "latest", False)
        base_fee = int(latest.get("baseFeePerGas") or "0x0", 16)
        fees = (0, 0) if base_fee == 0 else (max(2 * base_fee, 10**9) + 10**9, 10**9)
        run = secrets.token_hex(8)
        admin = Sender(bytes(keccak(f"smartta bench {run} admin".encode())), chain_id)
        senders = [Sender(bytes(keccak(f"smartta bench {run} sender {i}".encode())), chain_id)
                   for i in range(self.sender_count)]
        if base_fee:
            await self._fund([admin, *senders], chain_id, fees)
        ledger = contract_address(admin.address, admin.nonce)
        code = ledger_code(self.artifact) + abi_encode(["address"], [admin.address])
        deploy = admin.sign(None, code, 8_000_000, fees)
        await self._send_and_wait(url, [deploy], "deploying the ledger")
        receipt = await self.call(url, "eth_getTransactionReceipt", "0x" + tx_hash(deploy).hex())
        if not receipt or receipt.get("status") != "0x1":
            raise BenchError(f"the ledger contract did not deploy (receipt {receipt})")
        grant = bytes(keccak(b"grantRole(bytes32,address)"))[:4]
        grants = [admin.sign(ledger, grant + abi_encode(["bytes32", "address"], [role, s.address]),
                             200_000, fees)
                  for s in senders for role in (onchain.WRITER_ROLE, onchain.ATTESTER_ROLE)]
        for i in range(0, len(grants), GRANTS_PER_BLOCK):
            await self._send_and_wait(url, grants[i:i + GRANTS_PER_BLOCK],
                                      f"granting roles ({i + GRANTS_PER_BLOCK}/{len(grants)})")
        self.workload = LedgerWorkload(chain_id, senders, ledger, fees)
        self.say(f"ledger 0x{ledger.hex()} deployed; {len(senders)} senders with writer and "
                 f"attester roles{'' if not base_fee else f' (funded; base fee {base_fee} wei)'}")

    async def _fund(self, accounts: Sequence[Sender], chain_id: int, fees: tuple[int, int]) -> None:
        if self.funder is None:
            raise BenchError("the network charges gas (base fee > 0): pass a funded key "
                             "(--funder-key) or bench a free-gas network")
        funder = Sender(self.funder, chain_id)
        funder.nonce = int(await self.call(self.target.submit[0], "eth_getTransactionCount",
                                           "0x" + funder.address.hex(), "pending"), 16)
        txs = [funder.sign(a.address, b"", 21_000, fees, value=10**19) for a in accounts]
        for i in range(0, len(txs), GRANTS_PER_BLOCK):
            await self._send_and_wait(self.target.submit[0], txs[i:i + GRANTS_PER_BLOCK], "funding")

    async def _send_and_wait(self, url: str, raws: Sequence[bytes], what: str) -> None:
        for raw in raws:
            error = await self._send_raw(url, raw)
            if error is not None:
                raise BenchError(f"{what}: the node refused a transaction: {error}")
        if not await self._wait_final([tx_hash(r) for r in raws], 120):
            raise BenchError(f"{what}: transactions not final within 120s; is the chain adding "
                             "blocks? (`smartta network status`)")

    # -- rounds --

    async def run_round(self, r: Round) -> RoundReport:
        assert self.workload is not None, "setup() first"
        t = time.perf_counter()
        txs = self.workload.transactions(r.txs, r.batch_size)
        signing = time.perf_counter() - t
        submitted: dict[bytes, float] = {}
        errors: list[str] = []
        refused = 0
        window = asyncio.Semaphore(int(r.value)) if r.control == "fixed-load" else None
        outstanding: dict[bytes, None] = {}
        queues: list[asyncio.Queue[bytes | None]] = [asyncio.Queue() for _ in range(self.connections)]
        urls = self.target.submit

        async def worker(q: asyncio.Queue[bytes | None], url: str) -> None:
            nonlocal refused
            while (raw := await q.get()) is not None:
                h = tx_hash(raw)
                submitted[h] = time.perf_counter()
                error = await self._send_raw(url, raw)
                if error is not None:
                    del submitted[h]
                    refused += 1
                    outstanding.pop(h, None)
                    if window is not None:
                        window.release()
                    if len(errors) < 5 and error not in errors:
                        errors.append(error)

        def release(h: bytes) -> None:
            if window is not None and h in outstanding:
                del outstanding[h]
                window.release()

        self.finality.listener = release
        workers = [asyncio.create_task(worker(q, urls[i % len(urls)])) for i, q in enumerate(queues)]
        start = time.perf_counter()
        for i, (s, raw) in enumerate(txs):
            if window is not None:
                await window.acquire()
                outstanding[tx_hash(raw)] = None
            else:
                delay = start + i / r.value - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            queues[s % self.connections].put_nowait(raw)
        for q in queues:
            q.put_nowait(None)
        await asyncio.gather(*workers)
        drained = await self._wait_final(list(submitted), self.drain_timeout + r.txs / 100)
        self.finality.listener = None
        if not drained:
            missing = sum(1 for h in submitted if h not in self.finality.at)
            errors.append(f"{missing} transactions not final within the drain time")
        final = {h: self.finality.at[h] for h in submitted if h in self.finality.at}
        return summarise(r, submitted, final, refused, self.finality.blocks, errors, signing)

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[Bench]:
        """HTTP connections and the finality follower, for ``setup`` and ``run_round`` calls."""
        connector = aiohttp.TCPConnector(limit=self.connections + 4)
        async with aiohttp.ClientSession(connector=connector) as session:
            self._session = session
            ready = asyncio.Event()
            self._follower = asyncio.create_task(self._follow(ready))
            waiting = asyncio.create_task(ready.wait())
            await asyncio.wait({waiting, self._follower}, timeout=30,
                               return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if self._follower.done():
                try:
                    self._follower.result()
                except (aiohttp.ClientError, OSError) as exc:
                    raise BenchError(f"cannot follow {self.target.watch_ws or self.target.watch_http}"
                                     f": {exc}; is the node running?") from exc
            if not ready.is_set():
                raise BenchError(f"no newHeads subscription at {self.target.watch_ws} within 30s")
            try:
                yield self
            finally:
                self._follower.cancel()
                with contextlib.suppress(asyncio.CancelledError, BenchError):
                    await self._follower

    async def run(self, rounds: Sequence[Round], warmup: Round | None = None) -> list[RoundReport]:
        async with self.connected():
            await self.setup()
            if warmup is not None:
                self.say(f"warm-up: {warmup.txs} transactions")
                await self.run_round(warmup)
            reports = []
            for r in rounds:
                self.say(f"round {r.label}: {r.txs} transactions, {r.control} {r.value:g}")
                reports.append(await self.run_round(r))
            return reports


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used (Linux /proc), for where-the-time-goes."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
