"""What consensus costs per block, apart from execution: messages, the engine, the transport.

1. The message codec: decoding a QBFT message (strict RLP, signing hash, author recovery) and
   encoding one, by kind; proposals carrying 0, 300 and 1,000 transactions of 200 bytes.
2. The engine: four validators in the virtual-time simulator (tests/node/consensus), blocks with
   0, 300 and 1,000 such transactions; the CPU each validator spends on consensus per block
   (messages in and out, validation, commit seals, sealing), with execution stubbed out.
3. The transport: authenticated, MAC'd frames over loopback TCP between two processes' worth of
   transports in one event loop; 200-byte messages per second and MB/s for 200 kB proposals.

Run: ``.venv/bin/python benchmarks/consensus_engine.py`` (writes its section of RESULTS.md).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "node" / "consensus"))
sys.path.insert(0, str(Path(__file__).parent))

from consensus_sim import SimNet
from results import write_section

from chain.attest.keys import LocalSigner
from chain.qbft import messages as m
from node.p2p.handshake import node_id_of
from node.p2p.peers import PeerSpec
from node.p2p.transport import P2PConfig, Transport

TX = 200
SIGNER = LocalSigner((0xBE7C4).to_bytes(32, "big"))


def per_second(fn: Callable[[], object], seconds: float = 1.5) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def txs(count: int) -> tuple[bytes, ...]:
    return tuple(b"\x02" + os.urandom(TX - 1) for _ in range(count))


def codec_rows() -> list[str]:
    net = SimNet(seed=1)
    chain = net.nodes[0].chain
    head = chain.head
    rows = []
    prepare = m.Prepare.create(SIGNER, 1, 0, b"\x01" * 32).encode()
    commit = m.Commit.create(SIGNER, 1, 0, b"\x01" * 32, SIGNER.sign_digest(b"\x01" * 32)).encode()
    for name, code, raw in (("PREPARE", m.PREPARE, prepare), ("COMMIT", m.COMMIT, commit)):
        rate = per_second(lambda c=code, r=raw: m.decode(c, r))
        rows.append(f"| decode {name} ({len(raw)} B) | {1e6 / rate:,.0f} |")
    for count in (0, 300, 1000):
        chain.pending_txs = list(txs(count))
        block = chain.create_block(head, 0, head.timestamp + 1, SIGNER.address, None)
        proposal = m.Proposal.create(SIGNER, 1, 0, block)
        raw = proposal.encode()
        decode = per_second(lambda r=raw: m.decode(m.PROPOSAL, r))
        encode = per_second(lambda b=block: m.Proposal.create(SIGNER, 1, 0, b).encode())
        rows.append(f"| decode PROPOSAL, {count:,} txs ({len(raw) / 1024:,.0f} kB) | {1e6 / decode:,.0f} |")
        rows.append(f"| create + sign + encode PROPOSAL, {count:,} txs | {1e6 / encode:,.0f} |")
    return rows


def engine_rows() -> list[str]:
    rows = []
    for count in (0, 300, 1000):
        net = SimNet(seed=2, delay_ms=(1, 5))
        body = list(txs(count))
        for node in net.nodes:
            node.chain.pending_txs = body
        net.start()
        blocks = 30
        cpu = time.process_time()
        assert net.run_until(lambda n=net, b=blocks: min(n.heights()) >= b, 10 * blocks * 1000)
        spent = time.process_time() - cpu
        per_node_block = spent / blocks / len(net.nodes)
        messages = net.delivered / blocks / len(net.nodes)
        rows.append(f"| {count:,} | {per_node_block * 1000:,.1f} | {messages:,.0f} | "
                    f"{1 / per_node_block:,.0f} |")
    return rows


async def transport_rows() -> list[str]:
    keys = [LocalSigner((0x7E57 + i).to_bytes(32, "big")) for i in range(2)]
    ids = [node_id_of(k) for k in keys]
    got: list[int] = [0, 0]

    def sink(code: int, data: bytes, peer: bytes) -> None:
        got[0] += 1
        got[1] += len(data)

    nodes = [Transport(k, P2PConfig(network_id=b"\x00" * 32, allowed=frozenset(ids),
                                    gossip_history=16), on_consensus=sink) for k in keys]
    for t in nodes:
        await t.start()
    nodes[0].add_static_peer(PeerSpec(ids[1], "127.0.0.1", nodes[1].port))
    while not nodes[0].connected(ids[1]):
        await asyncio.sleep(0.01)
    rows = []
    for size, count in ((200, 20_000), (200_000, 200)):
        got[0] = got[1] = 0
        start = time.perf_counter()
        for i in range(count):
            nodes[0].multicast(m.PREPARE, i.to_bytes(8, "big") + bytes(size - 8))
            if i % 100 == 99:
                await asyncio.sleep(0)
        while got[0] < count:
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - start
        rows.append(f"| {size:,} B | {count / elapsed:,.0f} | {got[1] / elapsed / 1e6:,.1f} |")
    for t in nodes:
        await t.stop()
    return rows


def main() -> None:
    load = os.getloadavg()[0]
    codec = codec_rows()
    engine = engine_rows()
    transport = asyncio.run(transport_rows())
    body = "\n".join([
        "Transactions are 200-byte stand-ins; execution is stubbed (the simulator's empty-state "
        "chain), so this is consensus alone: what every validator pays per block on top of "
        f"executing it. One-minute load average when it started: {load:.1f} on "
        f"{os.cpu_count()} cores (figures scale up on an idle machine).",
        "",
        "| message codec | µs per message |",
        "|---|---:|",
        *codec,
        "",
        "4 validators in virtual time, 30 blocks each run; CPU of the whole simulation divided "
        "by blocks and validators:",
        "",
        "| txs per block | consensus CPU per validator per block, ms | messages received per "
        "validator per block | blocks/s one core could carry |",
        "|---:|---:|---:|---:|",
        *engine,
        "",
        "Transport, one connection over loopback (handshake done; length, kind, HMAC-SHA256 per "
        "frame), sender and receiver in one event loop:",
        "",
        "| frame payload | frames/s | MB/s |",
        "|---:|---:|---:|",
        *transport,
    ])
    print(body)
    write_section("consensus", "Consensus overhead per block (`consensus_engine.py`)", body)


if __name__ == "__main__":
    main()
