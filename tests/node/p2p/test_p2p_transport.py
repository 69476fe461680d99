"""The transport over real TCP sockets on loopback: admission, delivery, relays, healing, sync."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from consensus_sim import SimChain, SimNet

from chain.attest.keys import LocalSigner
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from node.p2p.handshake import node_id_of
from node.p2p.peers import PeerSpec
from node.p2p.sync import BlockSync
from node.p2p.transport import CONSENSUS, P2PConfig, Transport

NET = b"\x07" * 32
KEYS = [LocalSigner((0x5000 + i).to_bytes(32, "big")) for i in range(5)]
IDS = [node_id_of(k) for k in KEYS]
OUTSIDER = LocalSigner((0xE71).to_bytes(32, "big"))


def run(test: Callable[[], Awaitable[None]], timeout: float = 20) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout))


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


class Node:
    def __init__(self, i: int, *, allowed: frozenset[bytes] | None = None, port: int = 0,
                 signer: LocalSigner | None = None, **config) -> None:
        self.signer = signer or KEYS[i]
        self.got: list[tuple[int, bytes, bytes]] = []
        cfg = P2PConfig(network_id=NET, allowed=allowed or frozenset(IDS[:4]), port=port,
                        name=f"n{i}", backoff_initial=0.05, backoff_max=0.2, **config)
        self.t = Transport(self.signer, cfg, on_consensus=lambda c, d, p: self.got.append((c, d, p)))

    async def start(self) -> Node:
        await self.t.start()
        return self

    def spec(self, i: int) -> PeerSpec:
        return PeerSpec(node_id_of(self.signer), "127.0.0.1", self.t.port, f"n{i}")


async def mesh(n: int, links: list[tuple[int, int]] | None = None, **config) -> list[Node]:
    nodes = [await Node(i, **config).start() for i in range(n)]
    pairs = links if links is not None else [(a, b) for a in range(n) for b in range(n) if a < b]
    for a, b in pairs:
        nodes[a].t.add_static_peer(nodes[b].spec(b))
    for a, b in pairs:
        await until(lambda a=a, b=b: nodes[a].t.connected(IDS[b]) and nodes[b].t.connected(IDS[a]))
    return nodes


async def stop(nodes: list[Node]) -> None:
    for node in nodes:
        await node.t.stop()


def test_static_peers_connect_once_and_multicast_reaches_every_peer_once():
    async def go() -> None:
        nodes = await mesh(3)
        await asyncio.sleep(0.3)  # let both directions of dialling settle on one connection
        assert [n.t.peer_count for n in nodes] == [2, 2, 2]
        nodes[0].t.multicast(0x13, b"hello")
        await until(lambda: len(nodes[1].got) == 1 and len(nodes[2].got) == 1)
        await asyncio.sleep(0.1)
        assert nodes[1].got == [(0x13, b"hello", IDS[0])]
        assert nodes[0].got == []
        info = {p.name: p for p in nodes[0].t.peers()}
        assert set(info) == {"n1", "n2"} and info["n1"].validator == KEYS[1].address
        await stop(nodes)
    run(go)


def test_gossip_carries_a_message_across_a_missing_link_exactly_once():
    async def go() -> None:
        nodes = await mesh(3, links=[(0, 1), (1, 2)])
        for relay in nodes:  # what the engine does with an accepted message
            relay.t.on_consensus = (lambda r: lambda c, d, p: (
                r.got.append((c, d, p)), r.t.gossip(c, d, KEYS[0].address)))(relay)
        nodes[0].t.multicast(0x14, b"commit")
        await until(lambda: len(nodes[2].got) == 1)
        await asyncio.sleep(0.2)
        assert nodes[2].got == [(0x14, b"commit", IDS[1])]
        assert nodes[0].got == []  # never back to its author
        assert len(nodes[1].got) == 1
        await stop(nodes)
    run(go)


def test_process_without_a_listed_key_cannot_connect_or_inject():
    async def go() -> None:
        nodes = await mesh(2)
        intruder = await Node(9, signer=OUTSIDER, allowed=frozenset(IDS[:4])).start()
        intruder.t.add_static_peer(nodes[0].spec(0))
        # A raw socket speaking garbage, too.
        reader, writer = await asyncio.open_connection("127.0.0.1", nodes[0].t.port)
        writer.write(b"\x00\x00\x00\x05\x01junk")
        await until(lambda: nodes[0].t.stats["rejected_handshakes"] >= 2, 5)
        assert not intruder.t.connected(IDS[0])
        intruder.t.multicast(0x13, b"forged")
        await asyncio.sleep(0.2)
        assert nodes[0].got == [] and nodes[0].t.peer_count == 1
        sent = await reader.read()  # to EOF: the node greets, then hangs up on the garbage
        assert sent[4] == 0x10 and len(sent) == 4 + int.from_bytes(sent[:4], "big")
        writer.close()
        await intruder.t.stop()
        await stop(nodes)
    run(go)


def test_oversized_frame_and_tampered_stream_drop_the_connection_which_heals():
    async def go() -> None:
        nodes = await mesh(2, max_frame=4096)
        drops = nodes[1].t.stats["disconnects"]
        nodes[0].t.multicast(0x12, b"x" * 5000)
        await until(lambda: nodes[1].t.stats["disconnects"] == drops + 1)
        assert nodes[1].got == []
        await until(lambda: nodes[0].t.connected(IDS[1]) and nodes[1].t.connected(IDS[0]))
        peer = nodes[0].t.peers_by_id[IDS[1]]
        peer.writer.write((1 + 3 + 16).to_bytes(4, "big") + bytes([CONSENSUS]) + b"\x13ab" + bytes(16))
        await until(lambda: nodes[1].t.stats["disconnects"] == drops + 2)
        assert nodes[1].got == []
        await until(lambda: nodes[0].t.connected(IDS[1]) and nodes[1].t.connected(IDS[0]))
        nodes[0].t.multicast(0x13, b"after healing")
        await until(lambda: nodes[1].got == [(0x13, b"after healing", IDS[0])])
        await stop(nodes)
    run(go)


def test_redials_a_peer_that_restarts_on_its_port():
    async def go() -> None:
        nodes = await mesh(2)
        port = nodes[1].t.port
        await nodes[1].t.stop()
        await until(lambda: not nodes[0].t.connected(IDS[1]))
        reborn = await Node(1, port=port).start()
        await until(lambda: nodes[0].t.connected(IDS[1]), 5)
        nodes[0].t.multicast(0x13, b"welcome back")
        await until(lambda: reborn.got == [(0x13, b"welcome back", IDS[0])])
        await reborn.t.stop()
        await nodes[0].t.stop()
    run(go)


def test_isolate_drops_all_traffic_with_named_peers_until_heal():
    async def go() -> None:
        nodes = await mesh(3)
        nodes[0].t.isolate(["n1"])
        nodes[0].t.multicast(0x13, b"partitioned")
        await until(lambda: len(nodes[2].got) == 1)
        nodes[1].t.multicast(0x13, b"from the other side")
        await until(lambda: len(nodes[2].got) == 2)
        await asyncio.sleep(0.1)
        assert nodes[1].got == [] and nodes[0].got == []
        nodes[0].t.heal()
        nodes[0].t.multicast(0x13, b"healed")
        await until(lambda: (0x13, b"healed", IDS[0]) in nodes[1].got)
        await stop(nodes)
    run(go)


def _synced_chain(height: int) -> SimNet:
    net = SimNet(seed=21)
    net.start()
    assert net.run_until(lambda: min(net.heights()) >= height, 60_000)
    return net


async def _sync_pair(source: SimChain, fresh: SimChain) -> tuple[list[Node], BlockSync]:
    nodes = [await Node(0).start(), await Node(1).start()]
    nodes[0].t.blocks = lambda n: source.blocks[n].encode() if n < len(source.blocks) else None
    nodes[0].t.announce(source.head.number, source.hashes[-1])

    async def importer(block: Block) -> None:
        fresh.import_block(block)

    sync = BlockSync(nodes[1].t, fresh, importer, batch=4, interval=0.05)
    nodes[1].t.on_status = sync.poke
    sync.start()
    nodes[1].t.add_static_peer(nodes[0].spec(0))
    return nodes, sync


def test_lagging_node_syncs_and_verifies_every_seal():
    net = _synced_chain(9)
    source = net.nodes[0].chain

    async def go() -> None:
        fresh = SimChain(net.genesis)
        nodes, sync = await _sync_pair(source, fresh)
        await until(lambda: fresh.head.number == source.head.number, 10)
        assert fresh.hashes == source.hashes
        assert sync.syncing is None
        await sync.stop()
        await stop(nodes)
    run(go)


def test_block_with_a_forged_seal_is_not_imported_and_sync_stops_there():
    net = _synced_chain(6)
    source = net.nodes[0].chain
    forged = SimChain(net.genesis)
    forged.blocks = list(source.blocks)
    forged.hashes = list(source.hashes)
    header = source.blocks[4].header
    extra = xd.decode(header.extra_data)
    outsider_seal = OUTSIDER.sign_digest(b"\x01" * 32)
    bad = replace(header, extra_data=xd.encode(extra.with_seals((outsider_seal, *extra.seals[1:]))))
    forged.blocks[4] = Block(bad, source.blocks[4].transactions, source.blocks[4].withdrawals)

    async def go() -> None:
        fresh = SimChain(net.genesis)
        nodes, sync = await _sync_pair(forged, fresh)
        await until(lambda: sync.bad_blocks.get(IDS[0], 0) >= 1, 10)
        assert fresh.head.number == 3
        assert fresh.hashes == source.hashes[:4]
        await sync.stop()
        await stop(nodes)
    run(go)
