"""Four validators in real time over real TCP sockets: engine + service + transport + sync.

Execution is the in-test chain of the consensus harness (empty blocks, every import verified with
chain/qbft); everything else is the production code the node process runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from consensus_sim import SimChain

from chain.attest.keys import LocalSigner
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.genesis import Genesis, QbftSettings, build_genesis
from chain.qbft.quorum import quorum
from chain.qbft.verify import verify_header
from node.consensus import Engine, EngineConfig
from node.consensus.service import ConsensusService
from node.p2p.handshake import node_id_of
from node.p2p.peers import PeerSpec
from node.p2p.sync import BlockSync
from node.p2p.transport import P2PConfig, Transport

KEYS = [LocalSigner((0x7000 + i).to_bytes(32, "big")) for i in range(4)]
OBSERVER_KEY = LocalSigner((0x7100).to_bytes(32, "big"))
IDS = [node_id_of(k) for k in KEYS]
ALLOWED = frozenset([*IDS, node_id_of(OBSERVER_KEY)])


def genesis() -> Genesis:
    return Genesis(build_genesis(
        chain_id=2026, validators=[k.address for k in KEYS], fork="shanghai",
        qbft=QbftSettings(block_period_seconds=1, request_timeout_seconds=1),
        timestamp=int(time.time())))


class Validator:
    def __init__(self, i: int, gen: Genesis, chain: SimChain | None = None, port: int = 0) -> None:
        self.i = i
        self.chain = chain or SimChain(gen)
        self.engine = Engine(KEYS[i], self.chain, self.chain, EngineConfig.from_genesis(gen))
        self.transport = Transport(
            KEYS[i], P2PConfig(network_id=gen.hash, allowed=ALLOWED, port=port,
                               name=f"v{i}", backoff_initial=0.05, backoff_max=0.5),
            blocks=self._block, is_validator=lambda a: a in {k.address for k in KEYS})
        self.service = ConsensusService(self.engine, self.chain, head=lambda: self.chain.head,
                                        network=self.transport)
        self.transport.on_consensus = self.service.deliver
        self.sync = BlockSync(self.transport, self.chain, self.service.import_block, interval=0.2)
        self.transport.on_status = self.sync.poke

    def _block(self, n: int) -> bytes | None:
        blocks = self.chain.blocks
        return blocks[n].encode() if n < len(blocks) else None

    @property
    def height(self) -> int:
        return self.chain.head.number

    async def start(self) -> Validator:
        await self.transport.start()
        await self.service.start()
        self.sync.start()
        return self

    async def stop(self) -> None:
        await self.sync.stop()
        await self.service.stop()
        await self.transport.stop()

    def spec(self) -> PeerSpec:
        return PeerSpec(IDS[self.i], "127.0.0.1", self.transport.port, f"v{self.i}")


async def network(gen: Genesis) -> list[Validator]:
    nodes = [await Validator(i, gen).start() for i in range(4)]
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.transport.add_static_peer(b.spec())
    return nodes


async def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def run(test: Callable[[], Awaitable[None]], timeout: float) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout))


def assert_one_verified_chain(nodes: list[Validator]) -> None:
    longest = max(nodes, key=lambda n: n.height).chain
    for node in nodes:
        assert node.chain.hashes == longest.hashes[: node.height + 1]
    for i in range(1, len(longest.blocks)):
        header = longest.blocks[i].header
        validators = longest.view.history.validators_for(i)
        sealed = verify_header(header, longest.blocks[i - 1].header, validators,
                               block_period_seconds=1)
        assert len(sealed.committers) >= quorum(len(validators))


class Observer:
    """An allowlisted non-validator: no consensus, it syncs and verifies every block."""

    def __init__(self, gen: Genesis, validators: list[Validator]) -> None:
        self.chain = SimChain(gen)
        self.consensus_messages = 0
        self.transport = Transport(OBSERVER_KEY, P2PConfig(network_id=gen.hash, allowed=ALLOWED,
                                                           name="observer"),
                                   on_consensus=self._count)
        self.sync = BlockSync(self.transport, self.chain, self._import, interval=0.2)
        self.transport.on_status = self.sync.poke
        self.validators = validators

    def _count(self, code: int, data: bytes, peer: bytes) -> None:
        self.consensus_messages += 1

    async def _import(self, block: Block) -> None:
        self.chain.import_block(block)

    async def start(self) -> None:
        await self.transport.start()
        self.sync.start()
        for v in self.validators:
            self.transport.add_static_peer(v.spec())

    async def stop(self) -> None:
        await self.sync.stop()
        await self.transport.stop()


def test_four_validators_over_tcp_commit_a_block_every_period_and_an_observer_follows():
    async def go() -> None:
        gen = genesis()
        nodes = await network(gen)
        observer = Observer(gen, nodes)
        await observer.start()
        try:
            await until(lambda: min(n.height for n in nodes) >= 3, 20)
            assert_one_verified_chain(nodes)
            chain = nodes[0].chain
            gaps = [chain.blocks[i].header.timestamp - chain.blocks[i - 1].header.timestamp
                    for i in range(2, 4)]
            assert gaps == [1, 1]
            await until(lambda: observer.chain.head.number >= 3, 10)
            assert observer.chain.hashes[:4] == chain.hashes[:4]
            assert observer.consensus_messages == 0  # consensus goes to validators only
            assert all(n.transport.peer_count == 4 for n in nodes)
        finally:
            await observer.stop()
            for n in nodes:
                await n.stop()
    run(go, 40)


@pytest.mark.slow
def test_killed_validator_is_covered_then_restarts_catches_up_and_seals_again():
    async def go() -> None:
        gen = genesis()
        nodes = await network(gen)
        try:
            await until(lambda: min(n.height for n in nodes) >= 2, 20)
            victim = nodes[3]
            port = victim.transport.port
            await victim.stop()
            live = nodes[:3]
            start = max(n.height for n in live)
            await until(lambda: min(n.height for n in live) >= start + 5, 60)
            rounds = [xd.decode(live[0].chain.blocks[i].header.extra_data).round
                      for i in range(start + 1, start + 6)]
            assert max(rounds) >= 1, "the dead validator's turn needed a round change"
            reborn = Validator(3, gen, chain=victim.chain, port=port)
            nodes[3] = await reborn.start()
            for peer in live:
                reborn.transport.add_static_peer(peer.spec())
            back = max(n.height for n in live)
            target = back + 6
            await until(lambda: min(n.height for n in nodes) >= target, 90)
            assert_one_verified_chain(nodes)
            # It proposes again: one of the blocks since it came back was built by it.
            builders = {nodes[0].chain.blocks[i].header.coinbase for i in range(back + 1, target + 1)}
            assert KEYS[3].address in builders
        finally:
            for n in nodes:
                await n.stop()
    run(go, 240)


@pytest.mark.slow
def test_two_of_four_killed_no_block_no_fork_then_both_restart_and_all_resume():
    async def go() -> None:
        gen = genesis()
        nodes = await network(gen)
        try:
            await until(lambda: min(n.height for n in nodes) >= 2, 20)
            dead = [nodes[1], nodes[3]]
            ports = [d.transport.port for d in dead]
            for d in dead:
                await d.stop()
            await asyncio.sleep(1.5)  # a block in flight may still land
            stuck = [nodes[0].height, nodes[2].height]
            await asyncio.sleep(6)
            assert [nodes[0].height, nodes[2].height] == stuck
            for slot, d, port in zip((1, 3), dead, ports, strict=True):
                nodes[slot] = await Validator(slot, gen, chain=d.chain, port=port).start()
            for slot in (1, 3):
                for peer in nodes:
                    if peer is not nodes[slot]:
                        nodes[slot].transport.add_static_peer(peer.spec())
            target = max(stuck) + 3
            await until(lambda: min(n.height for n in nodes) >= target, 150)
            assert_one_verified_chain(nodes)
        finally:
            for n in nodes:
                await n.stop()
    run(go, 240)
