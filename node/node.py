"""One node of a network as an OS process: ``smartta node run --dir networks/NAME --name N``.

It composes the parts behind node/abc.py: ``node.execution.Chain`` (py-evm over LMDB, the pool),
``node.consensus`` (the QBFT engine and its asyncio shell; validators only), ``node.p2p`` (the
authenticated transport to the other nodes of the spec, block sync) and ``node.rpc`` (JSON-RPC
over HTTP and WebSocket, health, metrics). An observer node syncs and verifies every block (seals
and re-execution) and serves read-only RPC; a dev-mode network's single validator seals its own
blocks as transactions arrive (automine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

from chain.attest.keys import KeystoreError, LocalSigner, open_keystore
from chain.qbft.block import Block
from chain.qbft.genesis import Genesis
from node.abc import NodeAPI, NodeStatus, PoolStats, TxPoolAPI
from node.consensus import Engine, EngineConfig
from node.consensus.service import ConsensusService
from node.evidence import Equivocation, EquivocationWatch
from node.execution.chain import Chain
from node.network.init import GENESIS_FILE, KEYS_DIR, KEYSTORE_FILE, read_lock
from node.network.local import RUN_DIR
from node.network.spec import NetworkSpec, NodeSpec, SpecError
from node.p2p.handshake import node_id_of
from node.p2p.peers import PeerSpec
from node.p2p.sync import BlockSync
from node.p2p.transport import P2PConfig, Peer, Transport
from node.rpc import RpcConfig, RpcServer

log = logging.getLogger("smartta.node")
STATUS_INTERVAL = 0.5


class NodeError(RuntimeError):
    """A node that cannot start, with what to do about it."""


def data_dir(directory: Path, name: str) -> Path:
    return directory / "data" / name


@dataclass
class NodeConfig:
    directory: Path
    name: str
    password: str
    data: Path | None = None


def load(config: NodeConfig) -> tuple[NetworkSpec, NodeSpec, Genesis, LocalSigner]:
    """Read the spec, genesis and key, and refuse to start on any mismatch between them."""
    try:
        spec = NetworkSpec.load(config.directory)
        me = spec.node(config.name)
    except SpecError as exc:
        raise NodeError(str(exc)) from exc
    genesis = Genesis.load(config.directory / GENESIS_FILE)
    lock = read_lock(config.directory)
    if lock is not None and lock.get("genesis_hash") != "0x" + genesis.hash.hex():
        raise NodeError(
            f"genesis.json hashes to 0x{genesis.hash.hex()} but network.lock records "
            f"{lock.get('genesis_hash')}: the genesis was edited; restore it, or run "
            "`smartta network doctor` to see what drifted")
    keyfile = config.directory / KEYS_DIR / config.name / KEYSTORE_FILE
    try:
        signer = open_keystore(keyfile, config.password)
    except KeystoreError as exc:
        raise NodeError(str(exc)) from exc
    if "0x" + signer.address.hex() != me.address.lower():
        raise NodeError(
            f"the key in {keyfile} is 0x{signer.address.hex()} but network.yaml names "
            f"{me.address} for {me.name}: this node would not be the validator the network "
            "counts on; restore the right key file")
    if me.is_validator and not spec.dev_mode and signer.address not in genesis.validators:
        log.warning("%s is not a genesis validator; it seals only once voted in", me.name)
    return spec, me, genesis, signer


class _GossipingPool(TxPoolAPI):
    """The pool as RPC sees it: a transaction accepted here is also sent to the peers, so the
    next proposer has it whichever validator received it."""

    def __init__(self, chain: Chain, transport: Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = chain.pool
        self.transport = transport
        self.loop = loop
        self._outbox: list[bytes] = []
        self._lock = threading.Lock()

    def add(self, raw: bytes, *, local: bool = True) -> bytes:
        tx_hash = self.pool.add(raw, local=local)
        with self._lock:
            first = not self._outbox
            self._outbox.append(raw)
        if first:  # under load, transactions accepted meanwhile travel in the same frame
            self.loop.call_soon_threadsafe(self._flush)
        return tx_hash

    def _flush(self) -> None:
        with self._lock:
            raws, self._outbox = self._outbox, []
        self.transport.broadcast_transactions(raws)

    def get(self, tx_hash: bytes) -> bytes | None:
        return self.pool.get(tx_hash)

    def pending_nonce(self, address: bytes) -> int:
        return self.pool.pending_nonce(address)

    def stats(self) -> PoolStats:
        return self.pool.stats()


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.spec, self.me, self.genesis, self.signer = load(config)
        path = config.data or data_dir(config.directory, config.name)
        path.mkdir(parents=True, exist_ok=True)
        # Dev blocks may run ahead of the wall clock (automine, evm_increaseTime): a dev network
        # has no future-timestamp check; every other network keeps Besu's.
        self.chain = (Chain.open(self.genesis, path, clock=None) if self.spec.dev_mode
                      else Chain.open(self.genesis, path))
        self.status = NodeStatus(name=self.me.name, role="observer" if self.me.is_observer
                                 else "validator" if self.me.is_validator else "rpc",
                                 address=self.signer.address)
        self.transport: Transport | None = None
        self.service: ConsensusService | None = None
        self.engine: Engine | None = None
        self.sync: BlockSync | None = None
        self.evidence: EquivocationWatch | None = None
        self.rpc: RpcServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._validators_at: tuple[int, frozenset[bytes]] | None = None
        self._stopped = asyncio.Event()

    # -- composition ----------------------------------------------------------------------

    def _peers(self) -> tuple[frozenset[bytes], list[PeerSpec]]:
        allowed, static = set(), []
        for n in self.spec.nodes:
            node_id = bytes.fromhex(n.public_key.removeprefix("0x"))
            allowed.add(node_id)
            if n.name != self.me.name:
                static.append(PeerSpec(node_id, n.host, n.p2p_port, n.name))
        return frozenset(allowed), static

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.spec.dev_mode:
            await self._start_dev()
            return
        allowed, static = self._peers()
        if node_id_of(self.signer) not in allowed:
            raise NodeError(f"{self.me.name}'s node key is not on the network's allowlist")
        self.transport = Transport(
            self.signer,
            P2PConfig(network_id=self.genesis.hash, allowed=allowed, static_peers=static,
                      host=self.me.host, port=self.me.p2p_port, name=self.me.name),
            blocks=self._serve_block, on_transactions=self._received_transactions,
            is_validator=self._is_validator)
        votes = None
        if self.me.is_validator:
            self.engine = Engine(self.signer, self.chain, self.chain,
                                 EngineConfig.from_genesis(self.genesis))
            self.service = ConsensusService(self.engine, self.chain, head=lambda: self.chain.head,
                                            network=self.transport)
            self.transport.on_consensus = self.service.deliver
            importer = self.service.import_block
            votes = self.engine.votes
        else:
            importer = self._import_verified
        self.sync = BlockSync(self.transport, self.chain, importer)
        self.evidence = EquivocationWatch(self.chain, self._fetch_block,
                                          (self.config.data or data_dir(self.config.directory,
                                                                        self.me.name)) / "evidence",
                                          on_evidence=self._equivocation)
        self.transport.on_status = self._peer_status
        pool = None if self.me.is_observer else _GossipingPool(self.chain, self.transport, loop)
        api = NodeAPI(chain=self.chain, status=self.status, pool=pool, votes=votes)
        self.rpc = RpcServer(api, RpcConfig(read_only=self.me.is_observer),
                             host=self.me.host, port=self.me.rpc_http_port,
                             ws_port=self.me.rpc_ws_port, metrics_port=self.me.metrics_port)
        await self.transport.start()
        await self.rpc.start()
        if self.service is not None:
            await self.service.start()
        self.sync.start()
        self._tasks.append(asyncio.ensure_future(self._refresh_status()))
        log.info("%s (%s, 0x%s) up: head %d, p2p %s:%d, rpc %s", self.me.name, self.status.role,
                 self.signer.address.hex(), self.chain.head.number, self.me.host,
                 self.me.p2p_port, self.rpc.url)

    async def _start_dev(self) -> None:
        from node.execution.devmode import DevChain

        dev = DevChain(self.chain, self.signer)
        api = NodeAPI(chain=self.chain, status=self.status, pool=dev.pool, dev=dev)
        self.rpc = RpcServer(api, RpcConfig(p2p_enabled=False), host=self.me.host,
                             port=self.me.rpc_http_port, ws_port=self.me.rpc_ws_port,
                             metrics_port=self.me.metrics_port)
        await self.rpc.start()
        log.info("%s dev node up (automine): head %d, rpc %s", self.me.name,
                 self.chain.head.number, self.rpc.url)

    def _is_validator(self, address: bytes) -> bool:
        """Consensus messages and transactions go to the validators of the next block only."""
        head = self.chain.head
        if self._validators_at is None or self._validators_at[0] != head.number:
            self._validators_at = (head.number, frozenset(self.chain.validators_for(head.number + 1)))
        return address in self._validators_at[1]

    def _peer_status(self, peer: Peer) -> None:
        if self.sync is not None:
            self.sync.poke(peer)
        if self.evidence is not None and peer.head is not None:
            self.evidence.announced(peer.node_id, peer.name, peer.head[0], peer.head[1])

    async def _fetch_block(self, node_id: bytes, number: int) -> bytes | None:
        assert self.transport is not None
        raws = await self.transport.request_blocks(node_id, number, 1)
        return raws[0] if raws else None

    def _equivocation(self, found: Equivocation) -> None:
        self.status.equivocations += 1

    def _serve_block(self, number: int) -> bytes | None:
        block = self.chain.block(number)
        return None if block is None else block.encode()

    def _received_transactions(self, raws: list[bytes], peer: bytes) -> None:
        if self.me.is_observer:
            return
        for raw in raws:
            with contextlib.suppress(ValueError):  # duplicates and stale nonces are normal
                self.chain.pool.add(raw, local=False)

    async def _import_verified(self, block: Block) -> None:
        """Observer import: Chain.import_block checks every seal and re-executes the block."""
        await asyncio.get_running_loop().run_in_executor(None, self.chain.import_block, block)

    async def _refresh_status(self) -> None:
        while True:
            if self.transport is not None:
                self.status.peers = self.transport.peers()
            if self.sync is not None:
                self.status.syncing = self.sync.syncing
            if self.engine is not None:
                self.status.round_changes = dict(self.engine.round_changes)
                self.status.missed_proposals = dict(self.engine.missed_proposals)
            await asyncio.sleep(STATUS_INTERVAL)

    # -- lifecycle ------------------------------------------------------------------------

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.sync is not None:
            await self.sync.stop()
        if self.evidence is not None:
            await self.evidence.stop()
        if self.service is not None:
            await self.service.stop()
        if self.rpc is not None:
            await self.rpc.stop()
        if self.transport is not None:
            await self.transport.stop()
        self.chain.close()

    def reload_peers(self) -> None:
        """SIGHUP: re-read network.yaml's nodes, admit and dial the ones added since start (a
        validator being rotated in) and refuse new connections from the ones removed. Besu's
        equivalent is ``perm_reloadPermissionsFromFile`` with ``admin_addPeer``."""
        if self.transport is None:
            return
        try:
            self.spec = NetworkSpec.load(self.config.directory)
        except SpecError as exc:
            log.error("SIGHUP: %s; peers unchanged", exc)
            return
        allowed, static = self._peers()
        self.transport.config.allowed = allowed
        for peer in static:
            self.transport.add_static_peer(peer)
        log.info("SIGHUP: %d nodes allowed, %d static peers", len(allowed), len(static))

    def apply_partition(self) -> None:
        """SIGUSR1 (``smartta network drill partition``): isolate the peers named in
        ``run/<name>.isolate`` (a JSON list), or heal when it is absent or empty. A signal and a
        file rather than an RPC method: only who may kill this process can partition it."""
        if self.transport is None:
            return
        path = self.config.directory / RUN_DIR / f"{self.me.name}.isolate"
        try:
            names = json.loads(path.read_text()) if path.exists() else []
        except (OSError, ValueError) as exc:
            log.error("SIGUSR1: %s is unreadable (%s); partition unchanged", path, exc)
            return
        self.transport.heal()
        if names:
            self.transport.isolate(str(n) for n in names)
        log.warning("partition drill: %s", f"isolated from {', '.join(map(str, names))}" if names
                    else "healed")

    async def run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopped.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_peers)
        loop.add_signal_handler(signal.SIGUSR1, self.apply_partition)
        await self.start()
        print(json.dumps({"name": self.me.name, "rpc_http": self.rpc.url if self.rpc else None,
                          "pid": __import__("os").getpid()}), flush=True)
        await self._stopped.wait()
        log.info("%s stopping", self.me.name)
        await self.stop()
