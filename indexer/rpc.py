"""``JsonRpcSource``: any EVM JSON-RPC endpoint (our node, Besu, anvil) as a ``ChainSource``.

Headers come in JSON-RPC batches of ``eth_getBlockByNumber``, logs from ``eth_getLogs``; both
run concurrently up to a bound, so a backfill goes as fast as the node serves. Transient
failures (connection refused, timeouts, HTTP 5xx) are retried with backoff; a node refusing a
log range as too large raises ``RangeTooLarge`` so the caller asks for a smaller one. The head
is followed over WebSocket ``newHeads`` when a WebSocket URL is given, by polling otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import Sequence
from typing import Any

import aiohttp

from indexer.abc import BlockRef, ChainSource, LogFilter, RangeTooLarge, RawLog, SourceError

_TOO_LARGE = re.compile(
    r"range|too many|more than|exceed|limit|too large|response size|query returned", re.I)
HEADER_BATCH = 100


def _b(text: str) -> bytes:
    return bytes.fromhex(text[2:])


def _n(text: str) -> int:
    return int(text, 16)


class JsonRpcSource(ChainSource):
    def __init__(
        self,
        url: str,
        *,
        ws_url: str | None = None,
        concurrency: int = 8,
        timeout: float = 60.0,
        retries: int = 5,
        poll_interval: float = 1.0,
    ) -> None:
        self.url = url
        self.ws_url = ws_url
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.poll_interval = poll_interval
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._limit = asyncio.Semaphore(concurrency)
        self._chain_id: int | None = None
        self._ws_task: asyncio.Task[None] | None = None
        self._ws_head = -1
        self._ws_event = asyncio.Event()
        self.requests = 0

    # ---- transport ---------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.concurrency + 2),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def _post(self, body: Any) -> Any:
        payload = json.dumps(body, separators=(",", ":")).encode()
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                async with self._limit:
                    self.requests += 1
                    async with self._http().post(
                        self.url, data=payload, headers={"Content-Type": "application/json"}
                    ) as resp:
                        raw = await resp.read()
                        status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = repr(exc)
            else:
                if status == 200:
                    try:
                        return json.loads(raw)
                    except ValueError:
                        raise SourceError(f"{self.url} answered something that is not JSON: "
                                          f"{raw[:120]!r}") from None
                if status < 500 and status != 429:
                    raise SourceError(f"{self.url} answered HTTP {status}: {raw[:200]!r}; is this "
                                      "a JSON-RPC endpoint?")
                failure = f"HTTP {status}"
            if attempt == self.retries:
                raise SourceError(f"{self.url} failed {self.retries + 1} times ({failure}); check "
                                  "that the node is running and reachable")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    @staticmethod
    def _result(method: str, answer: Any) -> Any:
        if not isinstance(answer, dict):
            raise SourceError(f"{method}: malformed JSON-RPC answer {str(answer)[:120]}")
        error = answer.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = str(error.get("message") if isinstance(error, dict) else error)
            if method == "eth_getLogs" and (code == -32005 or _TOO_LARGE.search(message)):
                raise RangeTooLarge(f"eth_getLogs: {message}")
            raise SourceError(f"{method} failed: {code} {message}")
        return answer.get("result")

    async def call(self, method: str, params: list[Any]) -> Any:
        answer = await self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method,
                                   "params": params})
        return self._result(method, answer)

    async def batch(self, method: str, calls: Sequence[list[Any]]) -> list[Any]:
        ids = [next(self._ids) for _ in calls]
        answer = await self._post([{"jsonrpc": "2.0", "id": i, "method": method, "params": p}
                                   for i, p in zip(ids, calls, strict=True)])
        if not isinstance(answer, list):
            # A node without batch support answers one error object for the whole batch.
            return [await self.call(method, p) for p in calls]
        by_id = {a.get("id"): a for a in answer if isinstance(a, dict)}
        out = []
        for i in ids:
            if i not in by_id:
                raise SourceError(f"{method}: the batch answer lacks request {i}")
            out.append(self._result(method, by_id[i]))
        return out

    # ---- ChainSource -------------------------------------------------------------------------

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = _n(await self.call("eth_chainId", []))
        return self._chain_id

    async def head(self) -> int:
        return _n(await self.call("eth_blockNumber", []))

    async def blocks(self, first: int, last: int) -> list[BlockRef]:
        numbers = list(range(first, last + 1))
        chunks = [numbers[i:i + HEADER_BATCH] for i in range(0, len(numbers), HEADER_BATCH)]
        answers = await asyncio.gather(
            *(self.batch("eth_getBlockByNumber", [[hex(n), False] for n in chunk])
              for chunk in chunks))
        out: list[BlockRef] = []
        for n, block in zip(numbers, itertools.chain.from_iterable(answers), strict=True):
            if block is None:
                raise SourceError(f"{self.url} has no block {n} although its head is at or past "
                                  "it; the node may be syncing or pruned: use an archive node")
            ref = BlockRef(_n(block["number"]), _b(block["hash"]), _b(block["parentHash"]),
                           _n(block["timestamp"]))
            if ref.number != n:
                raise SourceError(f"{self.url} answered block {ref.number} when asked for {n}")
            out.append(ref)
        return out

    async def logs(self, first: int, last: int, filters: Sequence[LogFilter]) -> list[RawLog]:
        queries = []
        for f in filters:
            q: dict[str, Any] = {"fromBlock": hex(first), "toBlock": hex(last),
                                 "topics": [["0x" + t.hex() for t in f.topics]]}
            if f.addresses is not None:
                q["address"] = ["0x" + a.hex() for a in f.addresses]
            queries.append(self.call("eth_getLogs", [q]))
        answers = await asyncio.gather(*queries)
        seen: dict[tuple[int, int], RawLog] = {}
        for answer in answers:
            if not isinstance(answer, list):
                raise SourceError(f"eth_getLogs answered {str(answer)[:80]} instead of a list")
            for entry in answer:
                if entry.get("removed"):
                    continue
                log = RawLog(
                    address=_b(entry["address"]),
                    topics=tuple(_b(t) for t in entry["topics"]),
                    data=_b(entry["data"]),
                    block_number=_n(entry["blockNumber"]),
                    block_hash=_b(entry["blockHash"]),
                    tx_hash=_b(entry["transactionHash"]),
                    tx_index=_n(entry["transactionIndex"]),
                    log_index=_n(entry["logIndex"]),
                )
                if not first <= log.block_number <= last:
                    raise SourceError(f"eth_getLogs({first}..{last}) answered a log of block "
                                      f"{log.block_number}")
                seen[(log.block_number, log.log_index)] = log
        return [seen[k] for k in sorted(seen)]

    async def wait_for_head(self, above: int, timeout: float) -> int:
        if self.ws_url is not None and (self._ws_task is None or self._ws_task.done()):
            self._ws_task = asyncio.create_task(self._follow_ws(self.ws_url))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._ws_task is not None and not self._ws_task.done() and self._ws_head >= 0:
                if self._ws_head > above:
                    return self._ws_head
                self._ws_event.clear()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return await self.head()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ws_event.wait(), min(remaining, 5 * self.poll_interval))
                continue
            head = await self.head()
            remaining = deadline - loop.time()
            if head > above or remaining <= 0:
                return head
            await asyncio.sleep(min(self.poll_interval, remaining))

    async def _follow_ws(self, url: str) -> None:
        try:
            async with self._http().ws_connect(url, heartbeat=30) as ws:
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": next(self._ids),
                                              "method": "eth_subscribe", "params": ["newHeads"]}))
                self._ws_head = await self.head()
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    data = json.loads(msg.data)
                    result = data.get("params", {}).get("result") if isinstance(data, dict) else None
                    if isinstance(result, dict) and "number" in result:
                        self._ws_head = max(self._ws_head, _n(result["number"]))
                        self._ws_event.set()
        except (aiohttp.ClientError, OSError, ValueError, SourceError):
            pass  # wait_for_head polls while the subscription is down and retries it later
        finally:
            self._ws_head = -1

    async def close(self) -> None:
        if self._ws_task is not None:
            self._ws_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ws_task
        if self._session is not None:
            await self._session.close()
