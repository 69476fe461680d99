"""The aiohttp shell around ``Dispatcher``: JSON-RPC over HTTP (POST /) and WebSocket (GET /
with an upgrade) on one port, ``/liveness``, ``/readiness`` and ``/metrics``.

Usage from the node process (inside its asyncio loop)::

    server = RpcServer(node_api, RpcConfig(...), host="127.0.0.1", port=8545)
    await server.start()        # server.port is the bound port (pass port=0 for any free one)
    ...
    await server.stop()

New heads reach WebSocket subscribers through ``ChainAPI.on_new_head``, which may fire on any
thread; the server hops onto its loop before touching connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import WSMsgType, web

from chain.qbft.block import Block
from node.abc import NodeAPI, Receipt
from node.rpc import health
from node.rpc import metrics as M
from node.rpc.dispatch import Dispatcher, encode, error_response
from node.rpc.errors import invalid_request
from node.rpc.methods import Methods, RpcConfig
from node.rpc.params import Params
from node.rpc.subscriptions import Subscriptions

log = logging.getLogger(__name__)

JSON = "application/json"
WS_QUEUE_LIMIT = 10_000
"""Messages waiting for one WebSocket client; a client that falls this far behind is dropped."""


class _Connection:
    """One WebSocket client: its subscriptions and an ordered outgoing queue."""

    def __init__(self, conn_id: int, subs: Subscriptions, ws: web.WebSocketResponse) -> None:
        self.id = conn_id
        self.subs = subs
        self.ws = ws
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(WS_QUEUE_LIMIT)
        self.closing: asyncio.Future[Any] | None = None

    def subscribe(self, params: Params) -> str:
        return self.subs.subscribe(self.id, params)

    def unsubscribe(self, params: Params) -> bool:
        return self.subs.unsubscribe(self.id, params)

    def push(self, message: bytes) -> None:
        if self.closing is not None:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("WebSocket client %d is %d messages behind; closing it", self.id,
                        WS_QUEUE_LIMIT)
            self.subs.drop(self.id)
            self.closing = asyncio.ensure_future(
                self.ws.close(message=b"too slow: notifications backed up"))

    async def sender(self) -> None:
        while (message := await self.queue.get()) is not None:
            if self.ws.closed:
                return
            await self.ws.send_str(message.decode())


class RpcServer:
    def __init__(self, node: NodeAPI, config: RpcConfig | None = None, *,
                 host: str = "127.0.0.1", port: int = 8545, ws_port: int | None = None,
                 metrics_port: int | None = None, executor_threads: int = 2) -> None:
        """``port`` serves everything; ``ws_port`` (Besu's 8546) and ``metrics_port`` (Besu's
        9545, /metrics only) are extra listeners for setups that keep Besu's port layout."""
        self.node = node
        self.config = config or RpcConfig()
        self.host = host
        self.port = port
        self.ws_port = ws_port
        self.metrics_port = metrics_port
        self.methods = Methods(node, self.config)
        self.executor_threads = executor_threads
        self._executor: ThreadPoolExecutor | None = None
        self.dispatcher = Dispatcher(self.methods, self._run_blocking)
        self.subs = Subscriptions(self.methods, self.config.max_ws_subscriptions)
        self.connections: dict[int, _Connection] = {}
        self._ids = itertools.count(1)
        self._runners: list[web.ServerRunner] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listening = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port or self.port}"

    async def _route(self, request: web.BaseRequest) -> web.StreamResponse:
        # aiohttp's low-level server with our own four routes: a quarter less CPU per request
        # than web.Application's router and middleware chain.
        path, method = request.path, request.method
        if path == "/":
            if method == "POST":
                return await self._http(request)
            if method == "GET":
                return await self._get_root(request)
        elif method == "GET":
            if path == "/liveness":
                return self._liveness()
            if path == "/readiness":
                return self._readiness(request)
            if path == "/metrics":
                return self._metrics()
        return web.Response(status=404, text="not found: JSON-RPC is POST /; health is GET "
                                             "/liveness, /readiness; metrics GET /metrics\n")

    async def _route_metrics(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "GET" and request.path == "/metrics":
            return self._metrics()
        return web.Response(status=404, text="this port serves GET /metrics only\n")

    async def _listen(self, handler: Any, port: int) -> int:
        runner = web.ServerRunner(web.Server(handler), access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.host, port, reuse_address=True)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if port == 0 and sockets else port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(self.executor_threads, thread_name_prefix="rpc")
        self.port = await self._listen(self._route, self.port)
        if self.ws_port is not None:
            self.ws_port = await self._listen(self._route, self.ws_port)
        if self.metrics_port is not None:
            self.metrics_port = await self._listen(self._route_metrics, self.metrics_port)
        self._listening = True
        self.node.chain.on_new_head(self._new_head_from_any_thread)

    async def stop(self) -> None:
        self._listening = False
        for conn in list(self.connections.values()):
            await conn.ws.close()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run_blocking(self, fn: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    # ---- HTTP -----------------------------------------------------------------------------

    async def _http(self, request: web.BaseRequest) -> web.StreamResponse:
        limit = self.config.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            return self._too_large(length)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                return self._too_large(size)
            chunks.append(chunk)
        status, body = await self.dispatcher.handle(b"".join(chunks))
        if body is None:
            return web.Response(status=status)
        return web.Response(status=status, body=body, content_type=JSON)

    def _too_large(self, size: int) -> web.Response:
        error = invalid_request(f"body of {size}+ bytes exceeds the {self.config.max_body_bytes}-byte "
                                "limit: send smaller requests or batches")
        response = web.Response(status=413, body=encode(error_response(error)), content_type=JSON)
        response.force_close()
        return response

    async def _get_root(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=405, text="JSON-RPC: POST a request, or open a WebSocket\n")
        return await self._websocket(request)

    # ---- WebSocket ------------------------------------------------------------------------

    async def _websocket(self, request: web.BaseRequest) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.config.max_body_bytes, heartbeat=30)
        await ws.prepare(request)
        conn = _Connection(next(self._ids), self.subs, ws)
        self.connections[conn.id] = conn
        sender = asyncio.create_task(conn.sender())
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    data = msg.data.encode() if msg.type == WSMsgType.TEXT else msg.data
                    _, body = await self.dispatcher.handle(data, conn)
                    if body is not None:
                        conn.push(body)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.subs.drop(conn.id)
            self.connections.pop(conn.id, None)
            with contextlib.suppress(asyncio.QueueFull):
                conn.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sender, 5)
        return ws

    def _new_head_from_any_thread(self, block: Block, receipts: list[Receipt]) -> None:
        loop = self._loop
        if self._listening and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._new_head, block, receipts)

    def _new_head(self, block: Block, receipts: list[Receipt]) -> None:
        try:
            notes = self.subs.on_block(block, receipts)
        except Exception:
            log.exception("building notifications for block %d failed", block.header.number)
            return
        for conn_id, message in notes:
            conn = self.connections.get(conn_id)
            if conn is not None:
                conn.push(message)

    # ---- health and metrics ---------------------------------------------------------------

    def _liveness(self) -> web.Response:
        status, body = health.liveness()
        return web.Response(status=status, body=body, content_type=JSON)

    def _readiness(self, request: web.BaseRequest) -> web.Response:
        status, body = health.readiness(self.node.status, request.query, self.config.p2p_enabled)
        return web.Response(status=status, body=body, content_type=JSON)

    def _metrics(self) -> web.Response:
        text = M.render(self.node, self.methods.counters)
        return web.Response(body=text.encode(), headers={"Content-Type": M.CONTENT_TYPE})
