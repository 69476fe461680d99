"""Block sync: a node that is behind fetches what it missed from the peer with the highest head.

Peers announce their head (STATUS) on connect and after every block. When one is ahead, blocks
are requested in ranges (GET_BLOCKS) and handed, one by one and in order, to the importer, which
must verify every seal (``BlockSource.import_block`` does); a block that fails stops the round
and is counted against that peer, and nothing after it is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from chain.qbft.block import Block
from chain.qbft.header import BlockHeader, HeaderError
from node.abc import BlockInvalid
from node.p2p.transport import Peer, Transport

log = logging.getLogger("smartta.p2p.sync")

Importer = Callable[[Block], Awaitable[None]]
"""Verify and import one block (raises ``BlockInvalid``), then make it the head."""


class ChainHead(Protocol):
    @property
    def head(self) -> BlockHeader: ...


class BlockSync:
    def __init__(self, transport: Transport, chain: ChainHead, importer: Importer, *,
                 batch: int = 64, interval: float = 1.0) -> None:
        self.transport = transport
        self.chain = chain
        self.importer = importer
        self.batch = batch
        self.interval = interval
        self.syncing: tuple[int, int, int] | None = None
        """(starting, current, highest) block while catching up, else None (``eth_syncing``)."""
        self.bad_blocks: dict[bytes, int] = {}
        """Blocks that failed verification, by the node id of the peer that served them."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def poke(self, peer: Peer | None = None) -> None:
        """A peer announced a head: look whether there is something to fetch."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        # The flag, not only the cancel: Python 3.11's wait_for can turn a cancel that races
        # its timeout into a TimeoutError, which the loop below would swallow.
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.sync_once()
            except Exception:  # the loop must survive any one bad round
                log.exception("block sync round failed")

    def _best_peer(self) -> Peer | None:
        ours = self.chain.head.number
        ahead = [p for p in self.transport.peers_by_id.values()
                 if p.head is not None and p.head[0] > ours]
        return max(ahead, key=lambda p: p.head[0] if p.head else -1, default=None)

    async def sync_once(self) -> int:
        """Fetch and import what the best peer has beyond our head; the number imported."""
        peer = self._best_peer()
        if peer is None or peer.head is None:
            self.syncing = None
            return 0
        start = current = self.chain.head.number
        highest = peer.head[0]
        imported = 0
        self.syncing = (start, current, highest)
        try:
            while current < highest:
                try:
                    raws = await self.transport.request_blocks(peer.node_id, current + 1, self.batch)
                except (ConnectionError, TimeoutError) as exc:
                    log.info("sync from %s stopped: %s", peer.name, exc)
                    return imported
                if not raws:
                    return imported
                for raw in raws:
                    try:
                        block = Block.decode(raw)
                    except (HeaderError, ValueError) as exc:
                        self._bad(peer, f"undecodable block after {current}: {exc}")
                        return imported
                    if block.header.number != current + 1:
                        self._bad(peer, f"sent block {block.header.number} for {current + 1}")
                        return imported
                    if block.header.number <= self.chain.head.number:
                        current = self.chain.head.number  # consensus imported it meanwhile
                        continue
                    try:
                        await self.importer(block)
                    except BlockInvalid as exc:
                        self._bad(peer, str(exc))
                        return imported
                    current += 1
                    imported += 1
                    self.syncing = (start, current, highest)
            return imported
        finally:
            self.syncing = None

    def _bad(self, peer: Peer, why: str) -> None:
        self.bad_blocks[peer.node_id] = self.bad_blocks.get(peer.node_id, 0) + 1
        log.warning("peer %s served a block that fails verification, not imported: %s",
                    peer.name, why)
