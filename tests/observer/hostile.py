"""A JSON-RPC node that serves whatever it is given: honest chains, and chains altered in any
way a lying node could alter them. A real HTTP server on 127.0.0.1, speaking the same standard
methods (and batches) as Besu, so the observer reads it exactly as it reads a real node.

The served view is plain JSON (``blocks``, ``receipts``, ``transactions``): a tamper edits it,
with or without fixing up the hashes a smarter liar would fix up.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devchain import Chain


class HostileNode:
    def __init__(self, chain: Chain, *, chain_id: int | None = None) -> None:
        self.blocks: list[dict[str, Any]] = [b.rpc() for b in chain.blocks]
        self.receipts: list[list[dict[str, Any]]] = [copy.deepcopy(b.receipts) for b in chain.blocks]
        self.transactions: dict[str, dict[str, Any]] = {
            t["hash"]: copy.deepcopy(t) for b in chain.blocks for t in b.transactions}
        self.chain_id = chain_id if chain_id is not None else chain.genesis.chain_id
        self.head: int | None = None
        """Pretend the chain ends here (None: the last block served)."""
        self.batches = True
        self.calls: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> HostileNode:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- answering ------------------------------------------------------------------------

    def _head(self) -> int:
        return len(self.blocks) - 1 if self.head is None else self.head

    def answer(self, method: str, params: list[Any]) -> Any:
        self.calls.append(method)
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "eth_blockNumber":
            return hex(self._head())
        if method == "eth_getBlockByNumber":
            n = self._number(params[0])
            if n is None or self.blocks[n] is None:
                return None
            block = copy.deepcopy(self.blocks[n])
            if len(params) > 1 and params[1]:
                block["transactions"] = [
                    dict(copy.deepcopy(self.transactions[h]), blockHash=block.get("hash"),
                         blockNumber=hex(n), transactionIndex=hex(i))
                    for i, h in enumerate(block["transactions"]) if h in self.transactions]
            return block
        if method == "eth_getBlockByHash":
            for b in self.blocks[: self._head() + 1]:
                if b.get("hash") == params[0]:
                    return copy.deepcopy(b)
            return None
        if method == "eth_getBlockReceipts":
            n = self._number(params[0])
            return copy.deepcopy(self.receipts[n]) if n is not None else None
        if method == "eth_getTransactionByHash":
            return copy.deepcopy(self.transactions.get(params[0]))
        if method == "eth_getTransactionReceipt":
            for rs in self.receipts:
                for r in rs:
                    if r.get("transactionHash") == params[0]:
                        return copy.deepcopy(r)
            return None
        if method == "eth_getLogs":
            flt = params[0]
            lo, hi = self._number(flt["fromBlock"]), self._number(flt["toBlock"])
            if lo is None or hi is None:
                raise _RpcError(-32602, "invalid block range")
            topics = flt.get("topics") or []
            out = []
            for rs in self.receipts[lo:hi + 1]:
                for r in rs:
                    for log in r["logs"]:
                        if log["address"] != flt.get("address", log["address"]):
                            continue
                        if topics and (not log["topics"] or log["topics"][0] != topics[0]):
                            continue
                        out.append(copy.deepcopy(log))
            return out
        raise _RpcError(-32601, "Method not found")

    def _number(self, tag: str) -> int | None:
        head = self._head()
        n = {"latest": head, "earliest": 0, "finalized": head, "safe": head}.get(tag)
        if n is None:
            n = int(tag, 16)
        return n if 0 <= n <= head else None

    def _one(self, request: Any) -> dict[str, Any]:
        rid = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise _RpcError(-32600, "Invalid Request")
            result = self.answer(request["method"], list(request.get("params") or []))
            return {"jsonrpc": "2.0", "id": rid, "result": result}
        except _RpcError as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": exc.code, "message": exc.text}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    request = json.loads(body)
                except json.JSONDecodeError:
                    answer: Any = {"jsonrpc": "2.0", "id": None,
                                   "error": {"code": -32700, "message": "Parse error"}}
                else:
                    if isinstance(request, list):
                        if not node.batches:
                            answer = {"jsonrpc": "2.0", "id": None,
                                      "error": {"code": -32600, "message": "batch not supported"}}
                        else:
                            answer = [node._one(r) for r in request]
                    else:
                        answer = node._one(request)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


class _RpcError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
