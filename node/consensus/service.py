"""The asyncio shell around the engine: timers on the event loop, messages to and from the
network, imports through ``BlockSource``.

One task consumes events (messages, timer expiries, new heads) in arrival order and feeds them to
the engine on a single worker thread, so block creation, validation and import (py-evm work)
never stall the event loop that carries the network; block imports run on the same thread, so
they are serialised with the engine. Usage::

    service = ConsensusService(engine, blocks, head=lambda: chain.head, network=transport)
    transport.on_consensus = service.deliver
    sync = BlockSync(transport, chain, service.import_block)
    await service.start()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Protocol, TypeVar

from chain.qbft.block import Block
from chain.qbft.hashing import block_hash
from chain.qbft.header import BlockHeader
from node.abc import BlockInvalid, BlockSource
from node.consensus.engine import Engine
from node.consensus.outputs import (
    CancelTimer,
    Fault,
    Gossip,
    HeadConflict,
    ImportBlock,
    Multicast,
    Output,
    Rejected,
    SetTimer,
    Timer,
    TimerKind,
)

log = logging.getLogger("smartta.consensus")


class Network(Protocol):
    def multicast(self, code: int, data: bytes) -> None: ...

    def gossip(self, code: int, data: bytes, author: bytes) -> None: ...

    def announce(self, number: int, block_hash: bytes) -> None: ...


_Event = tuple[str, object]
T = TypeVar("T")


class ConsensusService:
    def __init__(self, engine: Engine, blocks: BlockSource, *, head: Callable[[], BlockHeader],
                 network: Network, clock: Callable[[], float] = time.time,
                 on_output: Callable[[Output], None] | None = None) -> None:
        self.engine = engine
        self.blocks = blocks
        self.head = head
        self.network = network
        self.clock = clock
        self.on_output = on_output
        self.imported = 0
        self._queue: asyncio.Queue[_Event] = asyncio.Queue()
        self._timers: dict[TimerKind, asyncio.TimerHandle] = {}
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="consensus")
        self._task: asyncio.Task[None] | None = None

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def start(self) -> None:
        header = self.head()
        self.network.announce(header.number, block_hash(header))
        outputs = await self._on_worker(lambda: self.engine.start(header, self._now_ms()))
        await self._perform(outputs)
        self._task = asyncio.ensure_future(self._consume())

    async def stop(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._worker.shutdown(wait=True)

    def deliver(self, code: int, data: bytes, peer: bytes = b"") -> None:
        """A consensus message from the network (the transport's ``on_consensus``)."""
        self._queue.put_nowait(("message", (code, data)))

    async def import_block(self, block: Block) -> None:
        """Verify and import a block (from consensus or from sync), then tell the engine."""
        await self._on_worker(lambda: self.blocks.import_block(block))
        self.imported += 1
        header = self.head()
        self.network.announce(header.number, block_hash(header))
        self._queue.put_nowait(("head", header))

    async def _on_worker(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, call)

    async def _consume(self) -> None:
        while True:
            kind, value = await self._queue.get()
            try:
                outputs = await self._on_worker(partial(self._step, kind, value))
                await self._perform(outputs)
            except Exception:  # one bad event must not stop consensus
                log.exception("consensus event %s failed", kind)

    def _step(self, kind: str, value: object) -> list[Output]:
        now = self._now_ms()
        if kind == "message":
            assert isinstance(value, tuple)
            code, data = value
            return self.engine.receive(int(code), bytes(data), now)
        if kind == "timer":
            assert isinstance(value, Timer)
            return self.engine.timer_expired(value, now)
        assert isinstance(value, BlockHeader)
        return self.engine.new_head(value, now)

    async def _perform(self, outputs: list[Output]) -> None:
        for out in outputs:
            if isinstance(out, Multicast):
                self.network.multicast(out.code, out.data)
            elif isinstance(out, Gossip):
                self.network.gossip(out.code, out.data, out.author)
            elif isinstance(out, SetTimer):
                self._arm(out)
            elif isinstance(out, CancelTimer):
                handle = self._timers.pop(out.kind, None)
                if handle is not None:
                    handle.cancel()
            elif isinstance(out, ImportBlock):
                try:
                    await self.import_block(out.block)
                except BlockInvalid as exc:
                    log.error("block %d reached a commit quorum but failed to import: %s",
                              out.block.header.number, exc)
            elif isinstance(out, Rejected):
                log.info("rejected %s", out.reason)
            elif isinstance(out, Fault):
                log.error("consensus could not finish %s: %s", out.during, out.error)
            elif isinstance(out, HeadConflict):
                log.error("two different blocks reported at height %d: 0x%s and 0x%s", out.number,
                          out.current.hex(), out.reported.hex())
            if self.on_output is not None:
                self.on_output(out)

    def _arm(self, out: SetTimer) -> None:
        old = self._timers.pop(out.timer.kind, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, (out.at_ms - self._now_ms()) / 1000)
        loop = asyncio.get_running_loop()
        self._timers[out.timer.kind] = loop.call_later(
            delay, self._queue.put_nowait, ("timer", out.timer))
