"""The TCP transport between node processes (asyncio): authenticated, framed, self-healing.

Every connection starts with the handshake of ``node.p2p.handshake``; a peer whose node key is
not on the allowlist, or that cannot sign with the key it claims, is dropped before it can send
anything. After it, frames are ``length(4) || kind(1) || payload || mac(16)``, at most
``max_frame`` bytes, each MAC'd with a per-direction sequence number.

Frame kinds: CONSENSUS (``code || QBFT message``), STATUS (``RLP[headNumber, headHash]``, sent on
connect and on every new head), GET_BLOCKS (``RLP[id, first, count]``), BLOCKS
(``RLP[id, [block…]]``), TRANSACTIONS (``RLP[rawTx…]``: transactions submitted here, for the
pools of the validators that may propose them), PING and PONG (a silent peer is dropped after
three ping intervals).

Static peers are dialled and redialled with exponential backoff; when two nodes dial each other
the connection opened by the smaller node id wins on both sides. ``multicast`` sends this node's
consensus messages to every connected validator; ``gossip`` relays a received one to the others
except its author and the peer it came from, once (Besu's gossiped-history limit).
``isolate``/``heal`` drop all traffic to and from named peers, for partition drills.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from chain import fastrlp
from chain.abc import Signer
from node.abc import PeerInfo
from node.p2p.handshake import (
    MAC_SIZE,
    Handshake,
    HandshakeError,
    Session,
    address_of_node,
    check_mac,
    mac,
    node_id_of,
)
from node.p2p.peers import PeerSpec

log = logging.getLogger("smartta.p2p")

HELLO, AUTH = 0x10, 0x11
CONSENSUS, STATUS, GET_BLOCKS, BLOCKS, PING, PONG, TRANSACTIONS = 1, 2, 3, 4, 5, 6, 7
HANDSHAKE_FRAME_LIMIT = 1024
MAX_BLOCKS_PER_REQUEST = 128


class ProtocolError(ConnectionError):
    """A peer broke the framing or the protocol; the connection is closed."""


@dataclass
class P2PConfig:
    network_id: bytes
    """32 bytes that only nodes of the same network share: the genesis block hash."""
    allowed: frozenset[bytes]
    """Node ids admitted (the node allowlist); static peers must be on it too."""
    static_peers: list[PeerSpec] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    name: str = ""
    max_frame: int = 16 * 1024 * 1024
    max_write_buffer: int = 64 * 1024 * 1024
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    handshake_timeout: float = 5.0
    ping_interval: float = 5.0
    request_timeout: float = 10.0
    gossip_history: int = 1000


class Peer:
    """One authenticated connection."""

    def __init__(self, session: Session, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, *, initiator: bool, local_id: bytes,
                 name: str) -> None:
        self.node_id = session.peer_id
        self.address = address_of_node(session.peer_id)
        self.name = name
        self.reader, self.writer = reader, writer
        self.initiator = initiator
        self.initiator_id = local_id if initiator else session.peer_id
        self._send_key, self._recv_key = session.send_key, session.recv_key
        self._send_seq = self._recv_seq = 0
        self.head: tuple[int, bytes] | None = None
        self.last_seen = time.monotonic()
        self.closed = False
        peer = writer.get_extra_info("peername")
        self.remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    def send(self, kind: int, payload: bytes) -> None:
        if self.closed:
            return
        tag = mac(self._send_key, self._send_seq, kind, payload)
        self._send_seq += 1
        body_len = 1 + len(payload) + MAC_SIZE
        self.writer.write(body_len.to_bytes(4, "big") + bytes([kind]) + payload + tag)

    async def read(self, max_frame: int) -> tuple[int, bytes]:
        header = await self.reader.readexactly(4)
        size = int.from_bytes(header, "big")
        if size > max_frame:
            raise ProtocolError(f"frame of {size} bytes exceeds the {max_frame}-byte limit")
        if size < 1 + MAC_SIZE:
            raise ProtocolError(f"frame of {size} bytes is too short to carry a kind and a MAC")
        body = await self.reader.readexactly(size)
        kind, payload, tag = body[0], body[1:-MAC_SIZE], body[-MAC_SIZE:]
        if not check_mac(self._recv_key, self._recv_seq, kind, payload, tag):
            raise ProtocolError("frame MAC does not verify: the stream was tampered with")
        self._recv_seq += 1
        self.last_seen = time.monotonic()
        return kind, payload

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


ConsensusHandler = Callable[[int, bytes, bytes], None]
"""(code, data, peer node id) for each consensus message received."""
StatusHandler = Callable[[Peer], None]
TransactionsHandler = Callable[[list[bytes], bytes], None]
"""(raw transactions, peer node id) for each TRANSACTIONS frame."""
BlockProvider = Callable[[int], bytes | None]
"""The encoded block at a height (with the seals this node holds), or None."""


async def _read_plain(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    size = int.from_bytes(await reader.readexactly(4), "big")
    if not 1 <= size <= HANDSHAKE_FRAME_LIMIT:
        raise HandshakeError(f"handshake frame of {size} bytes (at most {HANDSHAKE_FRAME_LIMIT})")
    body = await reader.readexactly(size)
    return body[0], body[1:]


def _plain(kind: int, payload: bytes) -> bytes:
    return (1 + len(payload)).to_bytes(4, "big") + bytes([kind]) + payload


class Transport:
    def __init__(self, signer: Signer, config: P2PConfig, *,
                 on_consensus: ConsensusHandler | None = None,
                 on_status: StatusHandler | None = None,
                 on_transactions: TransactionsHandler | None = None,
                 blocks: BlockProvider | None = None,
                 is_validator: Callable[[bytes], bool] | None = None) -> None:
        self.signer = signer
        self.config = config
        self.node_id = node_id_of(signer)
        self.on_consensus = on_consensus
        self.on_status = on_status
        self.on_transactions = on_transactions
        self.blocks = blocks
        self.is_validator = is_validator
        self.peers_by_id: dict[bytes, Peer] = {}
        self.head: tuple[int, bytes] | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._inbound: set[asyncio.Task[None] | asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._running = False
        self._received: OrderedDict[bytes, bytes] = OrderedDict()
        """Consensus messages received (hash -> the peer that delivered it first)."""
        self._sent: OrderedDict[bytes, None] = OrderedDict()
        """Consensus messages sent or relayed (Besu's gossiped-history limit)."""
        self._requests: dict[int, tuple[bytes, asyncio.Future[list[bytes]]]] = {}
        self._next_request = 1
        self._blocked: set[bytes] = set()
        self._names = {p.node_id: p.name for p in config.static_peers if p.name}
        self.stats: dict[str, int] = {"rejected_handshakes": 0, "dropped_frames": 0,
                                      "disconnects": 0}

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the transport first"
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        self._running = True
        self._server = await asyncio.start_server(self._accept, self.config.host, self.config.port)
        for spec in self.config.static_peers:
            self.add_static_peer(spec)
        self._spawn(self._keepalive())

    def add_static_peer(self, spec: PeerSpec) -> None:
        """Dial ``spec`` now and whenever the connection drops, until ``stop()``."""
        if spec.node_id == self.node_id:
            return
        if spec.name:
            self._names[spec.node_id] = spec.name
        if spec not in self.config.static_peers:
            self.config.static_peers.append(spec)
        if self._running:
            self._spawn(self._dial_forever(spec))

    async def stop(self) -> None:
        self._running = False
        if self._server is not None:
            self._server.close()
        # Closing the sockets ends every connection task on its own; only the dialers and the
        # keepalive are cancelled (cancelling a server callback task makes asyncio log noise).
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        # gather, not a suppressing await: a cancel of stop() itself must still propagate.
        await asyncio.gather(*self._tasks, *self._inbound, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- what the node reads --------------------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        out = []
        for peer in self.peers_by_id.values():
            validator = peer.address if self.is_validator is None or self.is_validator(
                peer.address) else None
            out.append(PeerInfo(peer.node_id, peer.name, peer.remote, validator))
        return out

    @property
    def peer_count(self) -> int:
        return len(self.peers_by_id)

    def connected(self, node_id: bytes) -> bool:
        return node_id in self.peers_by_id

    # --- sending --------------------------------------------------------------------------------

    def _first_time(self, history: OrderedDict[bytes, bytes] | OrderedDict[bytes, None],
                    key: bytes, value: bytes | None) -> bool:
        """Record ``key`` in a bounded history; False if it was there already."""
        if key in history:
            return False
        history[key] = value  # type: ignore[assignment]
        if len(history) > self.config.gossip_history:
            history.popitem(last=False)
        return True

    def _targets(self) -> list[Peer]:
        return [p for p in self.peers_by_id.values()
                if p.node_id not in self._blocked
                and (self.is_validator is None or self.is_validator(p.address))]

    def multicast(self, code: int, data: bytes) -> None:
        """Send this node's own consensus message to every connected validator."""
        self._first_time(self._sent, _key(code, data), None)
        payload = bytes([code]) + data
        for peer in self._targets():
            self._send(peer, CONSENSUS, payload)

    def gossip(self, code: int, data: bytes, author: bytes) -> None:
        """Relay a received consensus message once, not to its author nor where it came from."""
        key = _key(code, data)
        if not self._first_time(self._sent, key, None):
            return
        origin = self._received.get(key)
        payload = bytes([code]) + data
        for peer in self._targets():
            if peer.node_id != origin and peer.address != author:
                self._send(peer, CONSENSUS, payload)

    def broadcast_transactions(self, raws: list[bytes]) -> None:
        """Send transactions accepted here to every validator peer (each pool takes them)."""
        if not raws:
            return
        payload = fastrlp.encode(raws)
        for peer in self._targets():
            self._send(peer, TRANSACTIONS, payload)

    def announce(self, number: int, block_hash: bytes) -> None:
        """Tell every peer our new head (lagging peers sync from it)."""
        self.head = (number, block_hash)
        payload = fastrlp.encode([number, block_hash])
        for peer in list(self.peers_by_id.values()):
            if peer.node_id not in self._blocked:
                self._send(peer, STATUS, payload)

    async def request_blocks(self, node_id: bytes, first: int, count: int) -> list[bytes]:
        """Encoded blocks ``first``… from a peer (fewer if it has fewer); raises on timeout."""
        peer = self.peers_by_id.get(node_id)
        if peer is None or node_id in self._blocked:
            raise ConnectionError(f"peer 0x{node_id.hex()[:16]}… is not connected")
        request = self._next_request
        self._next_request += 1
        future: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        self._requests[request] = (node_id, future)
        try:
            self._send(peer, GET_BLOCKS, fastrlp.encode(
                [request, first, min(count, MAX_BLOCKS_PER_REQUEST)]))
            return await asyncio.wait_for(future, self.config.request_timeout)
        finally:
            self._requests.pop(request, None)

    def _send(self, peer: Peer, kind: int, payload: bytes) -> None:
        if peer.closed:
            return
        transport = peer.writer.transport
        if transport is not None and transport.get_write_buffer_size() > self.config.max_write_buffer:
            log.warning("peer %s is not reading (%d bytes queued): disconnecting it", peer.name,
                        transport.get_write_buffer_size())
            self._drop(peer)
            return
        peer.send(kind, payload)

    # --- partitions (drills) --------------------------------------------------------------------

    def isolate(self, peers: Iterable[str | bytes]) -> None:
        """Drop all traffic to and from these peers (names, node ids or addresses)."""
        for wanted in peers:
            self._blocked |= {nid for nid in set(self._names) | set(self.peers_by_id)
                              if wanted in (self._names.get(nid), nid, address_of_node(nid))}
            if isinstance(wanted, bytes) and len(wanted) == 64:
                self._blocked.add(wanted)

    def heal(self) -> None:
        self._blocked.clear()

    # --- connections ----------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:  # so that stop() waits for inbound connections to end
            self._inbound.add(task)
        try:
            if self._running:
                await self._connection(reader, writer, initiator=False, expected=None)
            else:
                writer.close()
        finally:
            if task is not None:
                self._inbound.discard(task)

    async def _dial_forever(self, spec: PeerSpec) -> None:
        backoff = self.config.backoff_initial
        while self._running:
            if spec.node_id in self.peers_by_id:
                await asyncio.sleep(self.config.backoff_max / 2)
                continue
            authenticated = False
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(spec.host, spec.port), self.config.handshake_timeout)
                authenticated = await self._connection(reader, writer, initiator=True,
                                                       expected=spec.node_id)
            except (TimeoutError, OSError) as exc:
                log.debug("dial %s %s:%d failed: %s", spec.label, spec.host, spec.port, exc)
            if not self._running:
                return
            backoff = self.config.backoff_initial if authenticated else min(
                backoff * 2, self.config.backoff_max)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                          initiator: bool, expected: bytes | None) -> bool:
        """Handshake, then serve the connection until it closes; True if it authenticated."""
        self._writers.add(writer)
        try:
            return await self._serve(reader, writer, initiator, expected)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     initiator: bool, expected: bytes | None) -> bool:
        try:
            session = await asyncio.wait_for(self._handshake(reader, writer, initiator, expected),
                                             self.config.handshake_timeout)
        except (TimeoutError, HandshakeError, OSError, asyncio.IncompleteReadError) as exc:
            self.stats["rejected_handshakes"] += 1
            log.info("refused %s peer: %s", "outbound" if initiator else "inbound", exc)
            writer.close()
            return False
        name = self._names.get(session.peer_id, "0x" + session.peer_id.hex()[:16])
        peer = Peer(session, reader, writer, initiator=initiator, local_id=self.node_id, name=name)
        if not self._register(peer):
            return True
        try:
            if self.head is not None:
                self._send(peer, STATUS, fastrlp.encode(list(self.head)))
            while self._running and not peer.closed:
                kind, payload = await peer.read(self.config.max_frame)
                self._dispatch(peer, kind, payload)
        except (ProtocolError, fastrlp.RLPError) as exc:
            log.warning("dropping peer %s: %s", peer.name, exc)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._drop(peer)
        return True

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         initiator: bool, expected: bytes | None) -> Session:
        hs = Handshake(self.signer, self.node_id, self.config.network_id, initiator=initiator,
                       allowed=self.config.allowed, expected=expected)
        writer.write(_plain(HELLO, hs.hello_raw))
        kind, payload = await _read_plain(reader)
        if kind != HELLO:
            raise HandshakeError(f"expected HELLO, got frame kind 0x{kind:02x}")
        writer.write(_plain(AUTH, hs.on_hello(payload)))
        kind, payload = await _read_plain(reader)
        if kind != AUTH:
            raise HandshakeError(f"expected AUTH, got frame kind 0x{kind:02x}")
        return hs.on_auth(payload)

    def _register(self, peer: Peer) -> bool:
        existing = self.peers_by_id.get(peer.node_id)
        if existing is not None and not existing.closed:
            # Both sides keep the connection the smaller node id opened (the newer on a tie).
            if existing.initiator_id < peer.initiator_id:
                peer.close()
                return False
            existing.close()
        self.peers_by_id[peer.node_id] = peer
        log.info("peer %s connected (%s, %s)", peer.name, peer.remote,
                 "outbound" if peer.initiator else "inbound")
        return True

    def _drop(self, peer: Peer) -> None:
        peer.close()
        if self.peers_by_id.get(peer.node_id) is peer:
            del self.peers_by_id[peer.node_id]
            self.stats["disconnects"] += 1
            log.info("peer %s disconnected", peer.name)
        for node_id, future in list(self._requests.values()):
            if node_id == peer.node_id and not future.done():
                future.set_exception(ConnectionError(f"peer {peer.name} disconnected"))

    async def _keepalive(self) -> None:
        interval = self.config.ping_interval
        while self._running:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for peer in list(self.peers_by_id.values()):
                if now - peer.last_seen > 3 * interval:
                    log.warning("peer %s silent for %.0fs: disconnecting", peer.name,
                                now - peer.last_seen)
                    self._drop(peer)
                else:
                    self._send(peer, PING, b"")

    # --- receiving ------------------------------------------------------------------------------

    def _dispatch(self, peer: Peer, kind: int, payload: bytes) -> None:
        if kind == PING:
            self._send(peer, PONG, b"")
            return
        if kind == PONG:
            return
        if peer.node_id in self._blocked:
            self.stats["dropped_frames"] += 1
            return
        if kind == CONSENSUS:
            if not payload:
                raise ProtocolError("empty CONSENSUS frame")
            code, data = payload[0], payload[1:]
            if (self._first_time(self._received, _key(code, data), peer.node_id)
                    and self.on_consensus is not None):
                self.on_consensus(code, data, peer.node_id)
        elif kind == STATUS:
            number, block_hash = _status(payload)
            peer.head = (number, block_hash)
            if self.on_status is not None:
                self.on_status(peer)
        elif kind == GET_BLOCKS:
            self._serve_blocks(peer, payload)
        elif kind == TRANSACTIONS:
            txs = fastrlp.decode(payload)
            if not isinstance(txs, list) or not all(isinstance(t, bytes) for t in txs):
                raise ProtocolError("TRANSACTIONS must be a list of raw transactions")
            if self.on_transactions is not None:
                self.on_transactions([t for t in txs if isinstance(t, bytes)], peer.node_id)
        elif kind == BLOCKS:
            items = fastrlp.decode(payload)
            if not (isinstance(items, list) and len(items) == 2 and isinstance(items[0], bytes)
                    and isinstance(items[1], list)):
                raise ProtocolError("BLOCKS must be [id, [block…]]")
            pending = self._requests.get(fastrlp.to_int(items[0]))
            if pending is not None and pending[0] == peer.node_id and not pending[1].done():
                pending[1].set_result([fastrlp.encode(b) for b in items[1]])
        else:
            raise ProtocolError(f"unknown frame kind 0x{kind:02x}")

    def _serve_blocks(self, peer: Peer, payload: bytes) -> None:
        items = fastrlp.decode(payload)
        if not (isinstance(items, list) and len(items) == 3
                and all(isinstance(i, bytes) for i in items)):
            raise ProtocolError("GET_BLOCKS must be [id, first, count]")
        request, first, count = (fastrlp.to_int(i) for i in items)  # type: ignore[arg-type]
        blocks: list[bytes] = []
        size = 0
        if self.blocks is not None:
            for n in range(first, first + min(count, MAX_BLOCKS_PER_REQUEST)):
                raw = self.blocks(n)
                if raw is None or size + len(raw) > self.config.max_frame // 2:
                    break
                blocks.append(raw)
                size += len(raw)
        self._send(peer, BLOCKS, fastrlp.encode_list_payload(
            fastrlp.encode(request) + fastrlp.encode_list_payload(b"".join(blocks))))


def _status(payload: bytes) -> tuple[int, bytes]:
    items = fastrlp.decode(payload)
    if not (isinstance(items, list) and len(items) == 2 and isinstance(items[0], bytes)
            and isinstance(items[1], bytes) and len(items[1]) == 32):
        raise ProtocolError("STATUS must be [headNumber, headHash32]")
    return fastrlp.to_int(items[0]), items[1]


def _key(code: int, data: bytes) -> bytes:
    return hashlib.blake2b(bytes([code]) + data, digest_size=16).digest()
