"""Standard Ethereum JSON-RPC over HTTP(S), batched, for any node: ours, an observer node, Besu.

Only read methods are used (``eth_chainId``, ``eth_blockNumber``, ``eth_getBlockByNumber``,
``eth_getBlockReceipts``, ``eth_getTransactionByHash``). Batches go as one JSON array (Besu
takes up to 1024 per batch by default); a node that refuses batches is read one call at a
time. The answers are only parsed here, never trusted: the verifier checks them.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from observer.abc import ChainSource, RpcBlock, RpcReceipt, RpcTransaction, SourceError


class RpcSource(ChainSource):
    def __init__(self, url: str, *, timeout: float = 30.0, batch_size: int = 100,
                 retries: int = 3) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SourceError(f"{url} is not an http:// or https:// URL of a JSON-RPC endpoint")
        self.name = url
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._retries = retries
        self.batch_size = batch_size
        self._batches = True
        # One connection per thread: the fetch thread and the record walk read concurrently.
        self._local = threading.local()
        self._conns: list[http.client.HTTPConnection] = []
        self._next_id = 0
        self._ids = threading.Lock()

    # --- transport --------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            self._conns.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        for conn in self._conns:
            conn.close()
        self._conns.clear()
        self._local = threading.local()

    def _post(self, payload: Any) -> Any:
        body = json.dumps(payload).encode()
        last: Exception | None = None
        for attempt in range(self._retries + 1):
            if attempt:
                time.sleep(min(0.2 * 2 ** attempt, 5.0))
            try:
                conn = self._connection()
                conn.request("POST", self._path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                last = exc
                continue
            if response.status >= 500 or response.status == 429:
                last = SourceError(f"HTTP {response.status}")
                continue
            if response.status != 200:
                raise SourceError(
                    f"{self.name} answered HTTP {response.status}: {data[:200]!r}; check the URL "
                    "and that the node serves JSON-RPC over HTTP")
            try:
                return json.loads(data)
            except json.JSONDecodeError as exc:
                raise SourceError(f"{self.name} answered something that is not JSON: {exc}") from None
        raise SourceError(f"{self.name} cannot be reached after {self._retries + 1} attempts ({last}); "
                          "check that the node runs and its HTTP JSON-RPC port is open to you")

    def _id(self) -> int:
        with self._ids:
            self._next_id += 1
            return self._next_id

    @staticmethod
    def _result(method: str, answer: Any, name: str) -> Any:
        if not isinstance(answer, dict):
            raise SourceError(f"{name}: {method} answered {type(answer).__name__}, not an object")
        if answer.get("error") is not None:
            err = answer["error"]
            message = err.get("message") if isinstance(err, dict) else err
            code = err.get("code") if isinstance(err, dict) else None
            hint = ""
            if code == -32601:
                hint = "; the node does not offer this method (enable the ETH API group)"
            raise SourceError(f"{name}: {method} failed: {message} (code {code}){hint}")
        if "result" not in answer:
            raise SourceError(f"{name}: {method} answered without a result")
        return answer["result"]

    def call(self, method: str, params: list[Any]) -> Any:
        answer = self._post({"jsonrpc": "2.0", "id": self._id(), "method": method, "params": params})
        return self._result(method, answer, self.name)

    def batch(self, method: str, param_lists: Sequence[list[Any]]) -> list[Any]:
        """One call of ``method`` per parameter list, in as few HTTP requests as the node allows."""
        out: list[Any] = []
        for start in range(0, len(param_lists), self.batch_size):
            chunk = param_lists[start:start + self.batch_size]
            if not self._batches or len(chunk) == 1:
                out.extend(self.call(method, p) for p in chunk)
                continue
            ids = [self._id() for _ in chunk]
            answer = self._post([{"jsonrpc": "2.0", "id": i, "method": method, "params": p}
                                 for i, p in zip(ids, chunk, strict=True)])
            if isinstance(answer, dict) and answer.get("error") is not None:
                # A node that refuses batch requests answers with one error object.
                self._batches = False
                out.extend(self.call(method, p) for p in chunk)
                continue
            if not isinstance(answer, list):
                raise SourceError(f"{self.name}: a batch of {method} was not answered with a list")
            by_id = {a.get("id"): a for a in answer if isinstance(a, dict)}
            for i in ids:
                if i not in by_id:
                    raise SourceError(f"{self.name}: the batch answer lacks request {i} ({method})")
                out.append(self._result(method, by_id[i], self.name))
        return out

    # --- ChainSource ------------------------------------------------------------------------

    def chain_id(self) -> int:
        return _quantity(self.call("eth_chainId", []), "eth_chainId", self.name)

    def head(self) -> int:
        return _quantity(self.call("eth_blockNumber", []), "eth_blockNumber", self.name)

    def blocks(self, numbers: Sequence[int]) -> list[RpcBlock | None]:
        answers = self.batch("eth_getBlockByNumber", [[hex(n), False] for n in numbers])
        for n, a in zip(numbers, answers, strict=True):
            if a is not None and not isinstance(a, dict):
                raise SourceError(f"{self.name}: block {n} is not a JSON object")
        return answers

    def receipts(self, numbers: Sequence[int]) -> list[list[RpcReceipt] | None]:
        answers = self.batch("eth_getBlockReceipts", [[hex(n)] for n in numbers])
        for n, a in zip(numbers, answers, strict=True):
            if a is not None and not (isinstance(a, list) and all(isinstance(r, dict) for r in a)):
                raise SourceError(f"{self.name}: the receipts of block {n} are not a list of objects")
        return answers

    def transactions(self, hashes: Sequence[bytes]) -> list[RpcTransaction | None]:
        answers = self.batch("eth_getTransactionByHash", [["0x" + h.hex()] for h in hashes])
        for h, a in zip(hashes, answers, strict=True):
            if a is not None and not isinstance(a, dict):
                raise SourceError(f"{self.name}: transaction 0x{h.hex()} is not a JSON object")
        return answers

    def block_transactions(self, numbers: Sequence[int]) -> list[list[RpcTransaction] | None]:
        answers = self.batch("eth_getBlockByNumber", [[hex(n), True] for n in numbers])
        out: list[list[RpcTransaction] | None] = []
        for n, a in zip(numbers, answers, strict=True):
            if a is None:
                out.append(None)
                continue
            txs = a.get("transactions") if isinstance(a, dict) else None
            if not isinstance(txs, list) or not all(isinstance(t, dict) for t in txs):
                raise SourceError(f"{self.name}: block {n} with full transactions does not list "
                                  "transaction objects")
            out.append(txs)
        return out

    def logs(self, address: bytes, topic0: bytes, from_block: int, to_block: int
             ) -> list[dict[str, Any]]:
        answer = self.call("eth_getLogs", [{"address": "0x" + address.hex(),
                                            "topics": ["0x" + topic0.hex()],
                                            "fromBlock": hex(from_block), "toBlock": hex(to_block)}])
        if not isinstance(answer, list) or not all(isinstance(x, dict) for x in answer):
            raise SourceError(f"{self.name}: eth_getLogs did not answer with a list of logs")
        return answer


def _quantity(value: Any, method: str, name: str) -> int:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise SourceError(f"{name}: {method} answered {value!r}, not a hex quantity")
