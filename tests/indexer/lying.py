"""A JSON-RPC proxy in front of a real node that can lie: it forwards every call and lets a test
rewrite the answers (alter a log, serve another block hash), as a compromised or broken node
would."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from chainkit import free_port

Rewrite = Callable[[dict[str, Any], Any], Any]
"""(request, result) -> result to serve instead."""


class LyingProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rewrite: Rewrite | None = None
        self.calls: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with aiohttp.ClientSession() as session, \
                session.post(self.upstream, json=body) as resp:
            answer = await resp.json(content_type=None)
        requests = body if isinstance(body, list) else [body]
        answers = answer if isinstance(answer, list) else [answer]
        for req, ans in zip(requests, answers, strict=False):
            self.calls.append(req.get("method", ""))
            if self.rewrite is not None and isinstance(ans, dict) and "result" in ans:
                ans["result"] = self.rewrite(req, ans["result"])
        return web.Response(text=json.dumps(answer), content_type="application/json")

    def close(self) -> None:
        async def stop() -> None:
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
