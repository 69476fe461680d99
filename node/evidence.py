"""Equivocation: two different block hashes at one height, each sealed by a quorum.

With at most f faulty validators this cannot happen; if it does, more than a third of the
validators signed two blocks, and the two sealed headers are the proof. When a peer announces
a head whose hash differs from ours at that height, the node fetches the peer's block and
verifies its seals against the validators of that height; a quorum of valid seals makes it
evidence: both headers with their seals are written to ``<data>/evidence/`` and the event is
raised (an error log, a counter for metrics). A peer serving a block without a quorum is only a
bad peer. Different seal sets for the same block hash are normal (every node keeps the seals it
collected) and never evidence: blocks are compared by hash, never by extraData bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.hashing import block_hash
from chain.qbft.header import BlockHeader, HeaderError
from chain.qbft.verify import verify_commit_seals
from node.abc import ChainAPI

log = logging.getLogger("smartta.evidence")


@dataclass(frozen=True, slots=True)
class Equivocation:
    height: int
    ours: BlockHeader
    theirs: BlockHeader
    our_committers: tuple[bytes, ...]
    their_committers: tuple[bytes, ...]
    peer: str

    def to_json(self) -> dict[str, Any]:
        def side(h: BlockHeader, committers: tuple[bytes, ...]) -> dict[str, Any]:
            return {"hash": "0x" + block_hash(h).hex(), "header": h.to_rpc(),
                    "committers": ["0x" + c.hex() for c in committers]}

        return {"kind": "qbft-equivocation", "height": self.height, "peer": self.peer,
                "detected_at": int(time.time()), "ours": side(self.ours, self.our_committers),
                "theirs": side(self.theirs, self.their_committers)}


def check(chain: ChainAPI, theirs: BlockHeader, peer: str) -> Equivocation | None:
    """Evidence if ``theirs`` conflicts with our block at its height and both carry a quorum."""
    ours = chain.header(theirs.number)
    if ours is None or block_hash(ours) == block_hash(theirs):
        return None
    validators = chain.validators_for(theirs.number)
    try:
        their_committers = verify_commit_seals(theirs, validators)
    except (HeaderError, xd.ExtraDataError) as exc:
        log.warning("peer %s serves block %d 0x%s without a valid quorum (%s): a bad peer, "
                    "not evidence", peer, theirs.number, block_hash(theirs).hex()[:16], exc)
        return None
    return Equivocation(theirs.number, ours, theirs, verify_commit_seals(ours, validators),
                        their_committers, peer)


class EquivocationWatch:
    """Follows peers' head announcements and checks every conflicting one."""

    def __init__(self, chain: ChainAPI, fetch: Callable[[bytes, int], Any], directory: Path,
                 on_evidence: Callable[[Equivocation], None] | None = None) -> None:
        self.chain = chain
        self.fetch = fetch
        """async (peer node id, number) -> encoded block or None."""
        self.directory = directory
        self.on_evidence = on_evidence
        self.found: list[Equivocation] = []
        self._checked: set[tuple[int, bytes]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def announced(self, node_id: bytes, name: str, number: int, head_hash: bytes) -> None:
        ours = self.chain.header(number)
        if ours is None or block_hash(ours) == head_hash or (number, head_hash) in self._checked:
            return
        self._checked.add((number, head_hash))
        task = asyncio.ensure_future(self._examine(node_id, name, number))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _examine(self, node_id: bytes, name: str, number: int) -> None:
        try:
            raw = await self.fetch(node_id, number)
        except (ConnectionError, TimeoutError) as exc:
            log.info("could not fetch block %d from %s to compare: %s", number, name, exc)
            return
        if raw is None:
            return
        try:
            theirs = Block.decode(raw).header
        except (HeaderError, ValueError) as exc:
            log.warning("peer %s sent an undecodable block %d: %s", name, number, exc)
            return
        found = await asyncio.get_running_loop().run_in_executor(None, check, self.chain, theirs,
                                                                 name)
        if found is not None:
            self.record(found)

    def record(self, found: Equivocation) -> Path:
        self.found.append(found)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"equivocation-{found.height}-{block_hash(found.theirs).hex()[:16]}.json"
        path.write_text(json.dumps(found.to_json(), indent=2) + "\n")
        log.critical("EQUIVOCATION at height %d: our block 0x%s and peer %s's 0x%s both carry a "
                     "quorum of valid seals (more than a third of the validators signed twice); "
                     "evidence in %s", found.height, block_hash(found.ours).hex(), found.peer,
                     block_hash(found.theirs).hex(), path)
        if self.on_evidence is not None:
            self.on_evidence(found)
        return path

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
