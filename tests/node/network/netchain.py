"""Helpers for the operator-tooling tests: a seeded network folder, and the real JSON-RPC server
(node.rpc) answering for a chain on that network's genesis.

``NetChain`` is a small ChainAPI: the network's real genesis block, then blocks sealed with the
validators' real keys (round-robin proposers, empty bodies, no state). It is enough for what
doctor and health ask (block 0, head, validators, signer metrics); the node's own chain is tested
in tests/node/execution.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from eth_hash.auto import keccak

from chain.attest.keys import open_secret
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.genesis import Genesis
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BlockHeader
from chain.qbft.quorum import quorum
from chain.qbft.seals import address_of, sign
from node.abc import ChainAPI, NodeAPI, NodeStatus, PeerInfo
from node.network.init import default_spec, init_network
from node.network.spec import NetworkSpec, NodeSpec
from node.rpc.server import RpcServer

PASSWORD = "pw"
FAST = 2**10  # scrypt work factor for throwaway test keys


def make_network(directory: Path, *, rpc_node: bool = True, validators: int = 4,
                 observers: int = 1, besu_version: str | None = None) -> NetworkSpec:
    spec = default_spec(directory.name, validators=validators, observers=observers, chain_id=4242,
                        block_period=2, request_timeout=None, organisation="ta", seeded=True)
    if rpc_node:
        spec.organisations[0].nodes.append(NodeSpec(
            name="rpc-1", roles=["rpc"], host="127.0.0.1", p2p_port=30400, rpc_http_port=8645,
            rpc_ws_port=8646, metrics_port=9645, host_allowlist=["rpc.example.org"]))
    if besu_version:
        spec.besu_version = besu_version
    spec, _ = init_network(directory, spec, PASSWORD, scrypt_n=FAST)
    return spec


def copy_network(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def validator_keys(directory: Path, spec: NetworkSpec) -> dict[bytes, bytes]:
    keys = {}
    for n in spec.validators:
        secret = open_secret(directory / "keys" / n.name / "key.json", PASSWORD)
        keys[address_of(secret)] = secret
    return keys


class NetChain(ChainAPI):
    def __init__(self, genesis: Genesis, keys: dict[bytes, bytes]) -> None:
        self.genesis = genesis
        self.keys = keys
        self.blocks: list[Block] = [Block(genesis.header(), ())]
        self.hashes = [genesis.hash]
        self.validator_sets: list[tuple[bytes, ...]] = [tuple(sorted(genesis.validators))]

    def add_blocks(self, count: int, *, skip: Sequence[bytes] = ()) -> None:
        """Seal ``count`` blocks; validators in ``skip`` lose their proposer turns to the next."""
        for _ in range(count):
            parent = self.blocks[-1].header
            vset = self.validator_sets[-1]
            number = parent.number + 1
            turn = number % len(vset)
            while vset[turn] in skip:
                turn = (turn + 1) % len(vset)
            extra = xd.ExtraData(bytes(32), vset, None, 0, ())
            header = BlockHeader(
                parent_hash=self.hashes[-1], ommers_hash=parent.ommers_hash, coinbase=vset[turn],
                state_root=parent.state_root, transactions_root=parent.transactions_root,
                receipts_root=parent.receipts_root, logs_bloom=bytes(256), difficulty=1, number=number,
                gas_limit=parent.gas_limit, gas_used=0, timestamp=parent.timestamp + 2,
                extra_data=xd.encode(extra), mix_hash=parent.mix_hash, nonce=bytes(8),
                base_fee=parent.base_fee, withdrawals_root=parent.withdrawals_root,
                blob_gas_used=parent.blob_gas_used, excess_blob_gas=parent.excess_blob_gas,
                parent_beacon_block_root=parent.parent_beacon_block_root,
                requests_hash=parent.requests_hash)
            digest = commit_seal_hash(header)
            seals = tuple(sign(self.keys[v], digest) for v in vset[:quorum(len(vset))])
            header = header.with_extra_data(xd.encode(extra.with_seals(seals)))
            self.blocks.append(Block(header, (), () if parent.withdrawals_root is not None else None))
            self.hashes.append(block_hash(header))
            self.validator_sets.append(vset)

    def _index(self, block: int | bytes) -> int | None:
        if isinstance(block, int):
            return block if 0 <= block < len(self.blocks) else None
        return self.hashes.index(block) if block in self.hashes else None

    @property
    def head(self) -> BlockHeader:
        return self.blocks[-1].header

    def header(self, block: int | bytes) -> BlockHeader | None:
        i = self._index(block)
        return None if i is None else self.blocks[i].header

    def block(self, block: int | bytes) -> Block | None:
        i = self._index(block)
        return None if i is None else self.blocks[i]

    def validators_for(self, number: int) -> tuple[bytes, ...]:
        return self.validator_sets[min(number, len(self.validator_sets) - 1)]

    def on_new_head(self, callback: Callable[..., None]) -> None:
        pass

    def _absent(self, *args: object) -> None:
        raise NotImplementedError("NetChain holds headers only")

    receipts = transaction = logs = account = code = storage_at = proof = call = estimate_gas = _absent  # type: ignore[assignment]


def chain_for(directory: Path, spec: NetworkSpec, blocks: int = 6, *, genesis: Genesis | None = None,
              skip: Sequence[bytes] = ()) -> NetChain:
    chain = NetChain(genesis or Genesis.load(directory / "genesis.json"), validator_keys(directory, spec))
    chain.add_blocks(blocks, skip=skip)
    return chain


@contextmanager
def serving(chain: ChainAPI, *, peers: int = 3, name: str = "validator-1") -> Iterator[str]:
    """Run node.rpc's server for ``chain`` on a free port in a background loop; yields its URL."""
    status = NodeStatus(name=name, role="validator", address=bytes(20),
                        peers=[PeerInfo(bytes([i + 1]) * 64, f"peer-{i}", f"127.0.0.1:{30400 + i}")
                               for i in range(peers)])
    server = RpcServer(NodeAPI(chain=chain, status=status), port=0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server.url
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def spec_of(directory: Path) -> NetworkSpec:
    return NetworkSpec.load(directory)


def keccak_hex(data: bytes) -> str:
    return "0x" + bytes(keccak(data)).hex()
