"""Drive the JSON-RPC core directly (no sockets) for the unit tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from node.rpc.dispatch import Dispatcher
from node.rpc.methods import Methods, RpcConfig

from .memchain import node_api


class Rpc:
    def __init__(self, node: Any = None, config: RpcConfig | None = None) -> None:
        self.node = node or node_api()
        self.methods = Methods(self.node, config)
        self.dispatcher = Dispatcher(self.methods)

    def raw(self, body: bytes | str, session: Any = None) -> tuple[int, Any]:
        data = body.encode() if isinstance(body, str) else body
        status, out = asyncio.run(self.dispatcher.handle(data, session))
        return status, None if out is None else json.loads(out)

    def response(self, method: str, *params: Any) -> dict[str, Any]:
        status, out = self.raw(json.dumps({"jsonrpc": "2.0", "id": 7, "method": method,
                                           "params": list(params)}))
        assert status == 200 and out["id"] == 7
        return out

    def __call__(self, method: str, *params: Any) -> Any:
        out = self.response(method, *params)
        assert "error" not in out, out
        return out["result"]

    def error(self, method: str, *params: Any) -> dict[str, Any]:
        out = self.response(method, *params)
        assert "error" in out, out
        return out["error"]
