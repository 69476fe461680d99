"""Four validators with the real execution layer (py-evm over LMDB) behind the engine, over TCP:
transactions submitted to one node reach every pool, get into blocks and every node ends with
the same state."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from eth_account import Account
from eth_utils import keccak

from chain.attest.keys import LocalSigner
from chain.qbft.genesis import AllocAccount, Genesis, QbftSettings, build_genesis
from chain.qbft.proposer import select_proposer
from chain.qbft.verify import verify_header
from node.consensus import Engine, EngineConfig
from node.consensus.service import ConsensusService
from node.execution.chain import Chain
from node.p2p.handshake import node_id_of
from node.p2p.peers import PeerSpec
from node.p2p.sync import BlockSync
from node.p2p.transport import P2PConfig, Transport
from node.store.chaindb import ChainStore

KEYS = [LocalSigner((0x9000 + i).to_bytes(32, "big")) for i in range(4)]
IDS = [node_id_of(k) for k in KEYS]
USERS = [Account.from_key(keccak(i.to_bytes(32, "big"))) for i in range(1, 6)]


def genesis() -> Genesis:
    alloc = {bytes.fromhex(u.address[2:]): AllocAccount(balance=10**21) for u in USERS}
    return Genesis(build_genesis(
        chain_id=2026, validators=[k.address for k in KEYS], alloc=alloc, fork="cancun",
        qbft=QbftSettings(block_period_seconds=1, request_timeout_seconds=2),
        timestamp=int(time.time())))


class Validator:
    def __init__(self, i: int, gen: Genesis, path: Path) -> None:
        self.chain = Chain(gen, ChainStore(path))
        self.engine = Engine(KEYS[i], self.chain, self.chain, EngineConfig.from_genesis(gen))
        self.transport = Transport(
            KEYS[i], P2PConfig(network_id=gen.hash, allowed=frozenset(IDS), name=f"v{i}",
                               backoff_initial=0.05, backoff_max=0.5),
            blocks=self._block, on_transactions=self._txs)
        self.service = ConsensusService(self.engine, self.chain, head=lambda: self.chain.head,
                                        network=self.transport)
        self.transport.on_consensus = self.service.deliver
        self.sync = BlockSync(self.transport, self.chain, self.service.import_block, interval=0.2)
        self.transport.on_status = self.sync.poke

    def _block(self, n: int) -> bytes | None:
        block = self.chain.block(n)
        return None if block is None else block.encode()

    def _txs(self, raws: list[bytes], peer: bytes) -> None:
        for raw in raws:
            self.chain.pool.add(raw, local=False)

    def submit(self, raw: bytes) -> bytes:
        tx_hash = self.chain.pool.add(raw)
        self.transport.broadcast_transactions([raw])
        return tx_hash

    async def start(self) -> None:
        await self.transport.start()
        await self.service.start()
        self.sync.start()

    async def stop(self) -> None:
        await self.sync.stop()
        await self.service.stop()
        await self.transport.stop()
        self.chain.store.close()


def test_transactions_sent_to_one_validator_are_committed_and_every_node_agrees(tmp_path):
    gen = genesis()

    async def go() -> None:
        nodes = [Validator(i, gen, tmp_path / f"v{i}") for i in range(4)]
        for n in nodes:
            await n.start()
        for a in nodes:
            for j, b in enumerate(nodes):
                if a is not b:
                    a.transport.add_static_peer(PeerSpec(IDS[j], "127.0.0.1", b.transport.port))
        try:
            deadline = time.monotonic() + 20
            while min(n.transport.peer_count for n in nodes) < 3:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            # Send them to a validator that proposes neither of the next two blocks.
            head = nodes[0].chain.head
            validators = nodes[0].chain.validators_after(head)
            first = select_proposer(validators, head.coinbase, 0)
            second = select_proposer(validators, first, 0)
            entry = next(n for k, n in zip(KEYS, nodes, strict=True)
                         if k.address not in (first, second))
            hashes: list[bytes] = []
            others = [n for n in nodes if n is not entry]
            for nonce in range(3):
                for user in USERS:
                    raw = bytes(user.sign_transaction({
                        "nonce": nonce, "to": USERS[0].address, "value": 1, "gas": 21000,
                        "maxFeePerGas": 0, "maxPriorityFeePerGas": 0, "chainId": 2026,
                    }).raw_transaction)
                    hashes.append(entry.submit(raw))
            # Gossip: every other validator's pool (or chain) has each transaction, whoever
            # proposes next; under load the entry may still build some blocks itself.
            deadline = time.monotonic() + 30
            while not all(n.chain.pool.get(h) is not None or n.chain.transaction(h) is not None
                          for n in others for h in hashes):
                assert time.monotonic() < deadline, "transactions did not reach the other pools"
                await asyncio.sleep(0.05)
            deadline = time.monotonic() + 60
            while not all(n.chain.transaction(h) is not None for n in nodes for h in hashes):
                assert time.monotonic() < deadline, [n.chain.head.number for n in nodes]
                await asyncio.sleep(0.1)
            height = min(n.chain.head.number for n in nodes)
            roots = {n.chain.header(height).state_root for n in nodes}
            assert len(roots) == 1
            for i in range(1, height + 1):
                verify_header(nodes[0].chain.header(i), nodes[0].chain.header(i - 1),
                              nodes[0].chain.validators_for(i), block_period_seconds=1)
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(asyncio.wait_for(go(), 120))
