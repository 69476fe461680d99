"""The JSON-RPC 2.0 core: request bytes in, response bytes out, no sockets.

It parses, checks the envelope, refuses what the node does not offer, calls one method and
formats the answer or the error; batches are handled in one pass, in order (so a batch of
raw transactions from one sender keeps its nonce order). Methods that may run long are handed
to ``run_blocking`` (the server passes a shared executor) so the event loop stays free.
HTTP status codes follow Besu: 400 for a body that is not JSON or not a request, else 200.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from node.rpc import errors as E
from node.rpc.errors import RpcError
from node.rpc.methods import Method, Methods
from node.rpc.params import Params

log = logging.getLogger(__name__)

READ_ONLY = ("this node is a read-only observer: send transactions, votes and dev commands "
             "to a validator's RPC endpoint")
WS_ONLY = "subscriptions need a WebSocket connection (ws://...), not HTTP"
# Besu knows these names but serves them only where enabled; asking elsewhere is -32604.
KNOWN_ELSEWHERE = frozenset({"eth_subscribe", "eth_unsubscribe"})
_ID_TYPES = (str, int, float)

RunBlocking = Callable[[Callable[[], Any]], Awaitable[Any]]


class Session(Protocol):
    """A WebSocket connection's side of ``eth_subscribe``/``eth_unsubscribe``."""

    def subscribe(self, params: Params) -> str: ...

    def unsubscribe(self, params: Params) -> bool: ...


async def _inline(fn: Callable[[], Any]) -> Any:
    return fn()


def encode(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode()


def error_response(error: RpcError, request_id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


_ERROR_TYPES = {-32700: "PARSE_ERROR", -32600: "INVALID_REQUEST", -32601: "METHOD_NOT_FOUND",
                -32602: "INVALID_PARAMS", -32603: "INTERNAL_ERROR", -32604: "METHOD_NOT_ENABLED",
                3: "REVERT_ERROR"}


class Dispatcher:
    def __init__(self, methods: Methods, run_blocking: RunBlocking | None = None) -> None:
        self.methods = methods
        self.config = methods.config
        self.run_blocking = run_blocking or _inline

    async def handle(self, body: bytes, session: Session | None = None) -> tuple[int, bytes | None]:
        """(HTTP status, response body); the body is None when every request was a
        notification."""
        if len(body) > self.config.max_body_bytes:
            return 413, encode(error_response(E.invalid_request(
                f"body of {len(body)} bytes exceeds the {self.config.max_body_bytes}-byte limit: "
                "send smaller batches")))
        if not body.strip():
            return 400, encode(error_response(E.parse_error("empty body")))
        try:
            message = json.loads(body)
        except (ValueError, RecursionError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 JSON"
            return 400, encode(error_response(E.parse_error(detail)))
        if isinstance(message, list):
            if not message:
                return 400, encode(error_response(E.invalid_request("empty batch")))
            limit = self.config.max_batch_size
            if limit and len(message) > limit:
                return 200, encode(error_response(E.batch_too_large(len(message), limit)))
            responses = []
            for item in message:
                response = await self.one(item, session)
                if response is not None:
                    responses.append(response)
            return 200, encode(responses) if responses else None
        response = await self.one(message, session)
        if response is None:
            return 200, None
        status = 400 if "error" in response and response["error"]["code"] in (-32600, -32700) \
            and response["id"] is None else 200
        return status, encode(response)

    async def one(self, request: Any, session: Session | None) -> dict[str, Any] | None:
        """Answer one request object; None for a notification (no ``id``)."""
        if not isinstance(request, dict):
            return error_response(E.invalid_request("each request must be a JSON object"))
        notification = "id" not in request
        request_id = request.get("id")
        if request_id is not None and (isinstance(request_id, bool)
                                       or not isinstance(request_id, _ID_TYPES)):
            return error_response(E.invalid_request("id must be a string, a number or null"))
        name = request.get("method")
        if not isinstance(name, str):
            return error_response(E.invalid_request("method must be a string"), request_id)
        raw_params = request.get("params", [])
        if raw_params is None:
            raw_params = []
        if not isinstance(raw_params, list):
            return error_response(E.invalid_request("params must be an array"), request_id)
        started = time.perf_counter()
        try:
            result = await self.call(name, Params(raw_params), session)
            response: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": result}
        except RpcError as exc:
            self._count_error(name, exc.code)
            response = error_response(exc, request_id)
        except Exception:
            log.exception("JSON-RPC %s failed", name)
            self._count_error(name, -32603)
            response = error_response(E.internal_error(f"{name} failed inside the node; see its log"),
                                      request_id)
        stats = self.methods.counters.requests.setdefault(name, [0, 0.0]) \
            if name in self.methods.table or name in KNOWN_ELSEWHERE else None
        if stats is not None:
            stats[0] += 1
            stats[1] += time.perf_counter() - started
        return None if notification else response

    async def call(self, name: str, params: Params, session: Session | None) -> Any:
        method: Method | None = self.methods.table.get(name)
        if method is None:
            if name in KNOWN_ELSEWHERE:
                if session is None:
                    raise E.method_not_enabled(WS_ONLY)
                return session.subscribe(params) if name == "eth_subscribe" \
                    else session.unsubscribe(params)
            raise E.method_not_found()
        if method.write and self.methods.read_only:
            raise E.method_not_enabled(READ_ONLY)
        if method.blocking:
            return await self.run_blocking(lambda: method.fn(params))
        return method.fn(params)

    def _count_error(self, name: str, code: int) -> None:
        if name not in self.methods.table and name not in KNOWN_ELSEWHERE:
            name = "unknown"  # arbitrary names must not grow the metric's label set
        key = (name, _ERROR_TYPES.get(code, str(code)))
        errors = self.methods.counters.errors
        errors[key] = errors.get(key, 0) + 1
