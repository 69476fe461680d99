"""A deterministic QBFT network in virtual time, for the consensus tests.

Real engines, real keys, real signed messages and real sealed blocks; only the network and the
clock are simulated. The network drops, delays, duplicates and reorders messages from a seeded
random generator, nodes can crash, restart (with their chain intact, their memory lost) and be
partitioned, and a ``tamper`` hook lets a test make one node Byzantine. Blocks are empty and copy
their parent's state root (no execution), so every committed header can be checked with
``chain.qbft.verify.verify_header`` alone, which ``SimChain.import_block`` does.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from chain.attest.keys import LocalSigner
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.extra_data import Vote
from chain.qbft.genesis import Genesis, QbftSettings, build_genesis
from chain.qbft.hashing import block_hash
from chain.qbft.header import BFT_MIX_HASH, EMPTY_OMMERS_HASH, EMPTY_TRIE_ROOT, BlockHeader, HeaderError
from chain.qbft.messages import CODES
from chain.qbft.verify import verify_header
from chain.qbft.votes import VoteTally
from node.abc import BlockInvalid, BlockSource, ValidatorView
from node.consensus import (
    CancelTimer,
    Engine,
    EngineConfig,
    Gossip,
    ImportBlock,
    Multicast,
    Output,
    SetTimer,
    Timer,
    TimerKind,
)
from node.consensus.validators import HistoryValidators

T0 = 1_700_000_000


class SimChain(BlockSource, ValidatorView):
    """One node's chain: empty blocks on the genesis state, verified on import like a real node."""

    def __init__(self, genesis: Genesis) -> None:
        self.genesis = genesis
        self.view = HistoryValidators(genesis)
        self.blocks: list[Block] = [Block(genesis.header())]
        self.hashes: list[bytes] = [genesis.hash]
        self.pending_txs: list[bytes] = []

    @property
    def head(self) -> BlockHeader:
        return self.blocks[-1].header

    def create_block(self, parent: BlockHeader, round: int, timestamp: int, coinbase: bytes,
                     vote: Vote | None) -> Block:
        extra = xd.ExtraData(bytes(32), self.view.validators_after(parent), vote, round, ())
        header = BlockHeader(
            parent_hash=block_hash(parent), ommers_hash=EMPTY_OMMERS_HASH, coinbase=coinbase,
            state_root=parent.state_root, transactions_root=EMPTY_TRIE_ROOT,
            receipts_root=EMPTY_TRIE_ROOT, logs_bloom=bytes(256), difficulty=1,
            number=parent.number + 1, gas_limit=parent.gas_limit, gas_used=0, timestamp=timestamp,
            extra_data=xd.encode(extra), mix_hash=BFT_MIX_HASH, nonce=bytes(8), base_fee=0,
            withdrawals_root=parent.withdrawals_root,
            blob_gas_used=0 if parent.blob_gas_used is not None else None,
            excess_blob_gas=0 if parent.excess_blob_gas is not None else None,
            parent_beacon_block_root=parent.parent_beacon_block_root,
        )
        withdrawals = () if parent.withdrawals_root is not None else None
        return Block(header, tuple(self.pending_txs), withdrawals)

    def validate_block(self, block: Block) -> None:
        parent = self.blocks[block.header.number - 1].header if block.header.number <= len(
            self.blocks) else None
        if parent is None:
            raise BlockInvalid(f"block {block.header.number}: parent unknown")
        if block.header.state_root != parent.state_root:
            raise BlockInvalid(f"block {block.header.number}: state root does not follow from "
                               "executing it on its parent (empty blocks keep it)")

    def import_block(self, block: Block) -> None:
        n = block.header.number
        if n < len(self.blocks):
            if block_hash(block.header) != self.hashes[n]:
                raise BlockInvalid(f"block {n}: a different block is already final at this height")
            return
        if n != len(self.blocks):
            raise BlockInvalid(f"block {n}: the chain is at {len(self.blocks) - 1}")
        parent = self.head
        try:
            sealed = verify_header(block.header, parent, self.view.validators_after(parent),
                                   block_period_seconds=self.genesis.qbft.block_period_seconds,
                                   parent_hash=self.hashes[-1])
        except HeaderError as exc:
            raise BlockInvalid(str(exc)) from exc
        self.validate_block(block)
        self.blocks.append(block)
        self.hashes.append(sealed.hash)
        self.view.apply(block.header)

    def validators_after(self, header: BlockHeader) -> tuple[bytes, ...]:
        return self.view.validators_after(header)

    def votes_after(self, header: BlockHeader) -> VoteTally | None:
        return self.view.votes_after(header)


Tamper = Callable[["SimNode", "SimNode", int, bytes], list[tuple[int, bytes]]]
"""A Byzantine node's outgoing filter: (sender, receiver, code, data) -> what it really sends."""


@dataclass
class SimNode:
    index: int
    signer: LocalSigner
    chain: SimChain
    engine: Engine
    config: EngineConfig
    alive: bool = True
    timers: dict[TimerKind, tuple[Timer, int]] = field(default_factory=dict)
    relayed: set[bytes] = field(default_factory=set)
    came_from: dict[bytes, int] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    tamper: Tamper | None = None

    @property
    def address(self) -> bytes:
        return self.signer.address

    @property
    def height(self) -> int:
        return self.chain.head.number


def _key(code: int, data: bytes) -> bytes:
    return hashlib.blake2b(bytes([code]) + data, digest_size=16).digest()


class SimNet:
    def __init__(self, validators: int = 4, *, extra_nodes: int = 0, seed: int = 0,
                 block_period_s: int = 1, request_timeout_s: int = 1,
                 empty_block_period_s: int = 0, drop: float = 0.0, duplicate: float = 0.0,
                 delay_ms: tuple[int, int] = (1, 30), gossip: bool = True,
                 sync_every_ms: int = 500, epoch_length: int = 30000) -> None:
        self.rng = random.Random(seed)
        self.signers = [LocalSigner((0x1000 + i).to_bytes(32, "big"))
                        for i in range(validators + extra_nodes)]
        qbft = QbftSettings(block_period_seconds=block_period_s,
                            request_timeout_seconds=request_timeout_s,
                            empty_block_period_seconds=empty_block_period_s,
                            epoch_length=epoch_length)
        self.genesis = Genesis(build_genesis(
            chain_id=2026, validators=[s.address for s in self.signers[:validators]], qbft=qbft,
            timestamp=T0, fork="shanghai"))
        self.config = EngineConfig.from_genesis(self.genesis)
        self.drop, self.duplicate, self.delay_ms, self.gossip = drop, duplicate, delay_ms, gossip
        self.sync_every_ms = sync_every_ms
        self.now = T0 * 1000
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self.cut: set[frozenset[int]] = set()
        """Pairs of node indexes that cannot reach each other."""
        self.imports: dict[int, dict[bytes, set[int]]] = {}
        """height -> block hash -> nodes that imported it (the safety record)."""
        self.import_errors: list[tuple[int, str]] = []
        self.delivered = 0
        self.nodes = [self._node(i, SimChain(self.genesis)) for i in range(len(self.signers))]
        self.by_address = {n.address: n for n in self.nodes}

    def _node(self, i: int, chain: SimChain) -> SimNode:
        engine = Engine(self.signers[i], chain, chain, self.config)
        return SimNode(i, self.signers[i], chain, engine, self.config)

    # --- scheduling -----------------------------------------------------------------------------

    def at(self, when_ms: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (max(when_ms, self.now), self._seq, action))

    def after(self, delay_ms: int, action: Callable[[], None]) -> None:
        self.at(self.now + delay_ms, action)

    def start(self) -> None:
        for node in self.nodes:
            self._perform(node, node.engine.start(node.chain.head, self.now))
        self._schedule_sync()

    def run_for(self, ms: int) -> None:
        self.run_until(lambda: False, ms)

    def run_until(self, done: Callable[[], bool], max_ms: int) -> bool:
        deadline = self.now + max_ms
        while self._queue and not done():
            when, _, action = self._queue[0]
            if when > deadline:
                break
            heapq.heappop(self._queue)
            self.now = when
            action()
        if not done():
            self.now = max(self.now, deadline)
            return False
        return True

    # --- faults ---------------------------------------------------------------------------------

    def crash(self, i: int) -> None:
        node = self.nodes[i]
        node.alive = False
        node.timers.clear()

    def restart(self, i: int) -> None:
        """Start a fresh engine on the node's persisted chain, as a restarted process would."""
        old = self.nodes[i]
        node = self._node(i, old.chain)
        node.tamper = old.tamper
        self.nodes[i] = node
        self.by_address[node.address] = node
        self._perform(node, node.engine.start(node.chain.head, self.now))

    def partition(self, group_a: set[int], group_b: set[int]) -> None:
        self.cut |= {frozenset((a, b)) for a in group_a for b in group_b}

    def heal(self) -> None:
        self.cut.clear()

    def reachable(self, a: int, b: int) -> bool:
        return (self.nodes[a].alive and self.nodes[b].alive
                and frozenset((a, b)) not in self.cut)

    # --- the network ----------------------------------------------------------------------------

    def inject(self, i: int, code: int, data: bytes) -> list[Output]:
        """Hand node ``i`` a message as if a peer had sent it; its outputs are performed too."""
        node = self.nodes[i]
        out = node.engine.receive(code, data, self.now)
        self._perform(node, out)
        return out

    def _send(self, src: SimNode, dst: SimNode, code: int, data: bytes) -> None:
        messages = [(code, data)] if src.tamper is None else src.tamper(src, dst, code, data)
        for c, d in messages:
            if self.rng.random() < self.drop:
                continue
            copies = 2 if self.rng.random() < self.duplicate else 1
            for _ in range(copies):
                self.after(self.rng.randint(*self.delay_ms), self._deliver(src.index, dst.index, c, d))

    def _deliver(self, src: int, dst: int, code: int, data: bytes) -> Callable[[], None]:
        def go() -> None:
            if not self.reachable(src, dst):
                return
            node = self.nodes[dst]
            node.came_from.setdefault(_key(code, data), src)
            self.delivered += 1
            self._perform(node, node.engine.receive(code, data, self.now))
        return go

    def _perform(self, node: SimNode, outputs: list[Output]) -> None:
        if not node.alive:
            return
        node.outputs.extend(outputs)
        for out in outputs:
            if isinstance(out, Multicast):
                node.relayed.add(_key(out.code, out.data))
                for peer in self.nodes:
                    if peer is not node and self.reachable(node.index, peer.index):
                        self._send(node, peer, out.code, out.data)
            elif isinstance(out, Gossip) and self.gossip:
                key = _key(out.code, out.data)
                if key in node.relayed:
                    continue
                node.relayed.add(key)
                origin = node.came_from.get(key)
                for peer in self.nodes:
                    if (peer is not node and peer.index != origin and peer.address != out.author
                            and self.reachable(node.index, peer.index)):
                        self._send(node, peer, out.code, out.data)
            elif isinstance(out, SetTimer):
                self._seq += 1
                token = self._seq
                node.timers[out.timer.kind] = (out.timer, token)
                self.at(out.at_ms, self._fire(node.index, out.timer.kind, token))
            elif isinstance(out, CancelTimer):
                node.timers.pop(out.kind, None)
            elif isinstance(out, ImportBlock):
                self._import(node, out.block)

    def _fire(self, i: int, kind: TimerKind, token: int) -> Callable[[], None]:
        def go() -> None:
            node = self.nodes[i]
            pending = node.timers.get(kind)
            if not node.alive or pending is None or pending[1] != token:
                return
            del node.timers[kind]
            self._perform(node, node.engine.timer_expired(pending[0], self.now))
        return go

    def _import(self, node: SimNode, block: Block) -> None:
        n = block.header.number
        self.imports.setdefault(n, {}).setdefault(block_hash(block.header), set()).add(node.index)
        try:
            node.chain.import_block(block)
        except BlockInvalid as exc:
            self.import_errors.append((node.index, str(exc)))
            return
        self._perform(node, node.engine.new_head(node.chain.head, self.now))

    def _schedule_sync(self) -> None:
        def go() -> None:
            for node in self.nodes:
                if node.alive:
                    self._sync(node)
            self.after(self.sync_every_ms, go)
        self.after(self.sync_every_ms, go)

    def _sync(self, node: SimNode) -> None:
        """Block sync: fetch what a reachable peer has beyond our head, verifying every block."""
        peers = [p for p in self.nodes if p is not node and self.reachable(node.index, p.index)]
        best = max(peers, key=lambda p: p.height, default=None)
        if best is None or best.height <= node.height:
            return
        for block in best.chain.blocks[node.height + 1:]:
            self._import(node, block)

    # --- what tests look at ---------------------------------------------------------------------

    def heights(self) -> list[int]:
        return [n.height for n in self.nodes]

    def forks(self) -> dict[int, set[bytes]]:
        """Heights at which two different blocks were ever imported anywhere (must be empty)."""
        return {h: set(blocks) for h, blocks in self.imports.items() if len(blocks) > 1}

    def rejected(self, code: int | None = None) -> list[str]:
        from node.consensus import Rejected
        return [o.reason for n in self.nodes for o in n.outputs
                if isinstance(o, Rejected) and (code is None or o.code == code)]

    def describe(self) -> str:
        return " ".join(f"{n.index}:{n.height}/{n.engine.round}{'' if n.alive else 'x'}"
                        for n in self.nodes) + f" t={(self.now - T0 * 1000) / 1000:.1f}s"


__all__ = ["CODES", "SimChain", "SimNet", "SimNode"]
