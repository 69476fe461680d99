"""Two blocks at one height, each with a quorum of valid seals, are evidence; anything less is not."""

from __future__ import annotations

import asyncio
import json
import time

from chain.attest.keys import LocalSigner
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.genesis import Genesis, QbftSettings, build_genesis
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.proposer import select_proposer
from chain.qbft.seals import sign
from node.evidence import EquivocationWatch, check
from node.execution.chain import Chain
from node.p2p.handshake import node_id_of
from node.p2p.peers import PeerSpec
from node.p2p.transport import P2PConfig, Transport

KEYS = [LocalSigner((0x7700 + i).to_bytes(32, "big")) for i in range(4)]
SECRETS = {k.address: (0x7700 + i).to_bytes(32, "big") for i, k in enumerate(KEYS)}
NOW = int(time.time()) - 100


def _genesis() -> Genesis:
    return Genesis(build_genesis(chain_id=77, validators=[k.address for k in KEYS],
                                 qbft=QbftSettings(block_period_seconds=1), timestamp=NOW))


def _sealed(block: Block, signers: list[bytes]) -> Block:
    extra = xd.decode(block.header.extra_data)
    digest = commit_seal_hash(block.header, extra=extra)
    seals = tuple(sign(SECRETS[a], digest) for a in signers)
    return Block(block.header.with_extra_data(xd.encode(extra.with_seals(seals))),
                 block.transactions, block.withdrawals)


def _grow(chain: Chain, blocks: int) -> None:
    for _ in range(blocks):
        head = chain.head
        validators = chain.validators_after(head)
        proposer = select_proposer(validators, head.coinbase, 0)
        block = chain.create_block(head, 0, head.timestamp + 1, proposer, None)
        chain.import_block(_sealed(block, sorted(validators)[:3]))


def _fork(chain: Chain, number: int, signers: int) -> Block:
    """A different block at ``number`` on the same parent, sealed by ``signers`` validators."""
    parent = chain.header(number - 1)
    validators = sorted(chain.validators_for(number))
    proposer = select_proposer(validators, parent.coinbase, 1)
    block = chain.create_block(parent, 1, parent.timestamp + 2, proposer, None)
    return _sealed(block, validators[:signers])


def test_conflicting_block_with_a_quorum_is_evidence_and_one_without_is_not(tmp_path):
    chain = Chain.open(_genesis(), tmp_path / "a", clock=None)
    try:
        _grow(chain, 3)
        twin = _fork(chain, 2, signers=3)
        assert block_hash(twin.header) != block_hash(chain.header(2))
        found = check(chain, twin.header, "peer")
        assert found is not None and found.height == 2 and len(found.their_committers) == 3
        assert check(chain, _fork(chain, 2, signers=2).header, "peer") is None
        # Same block, another seal set: normal, never evidence.
        ours = chain.block(2)
        other_seals = _sealed(Block(ours.header, ours.transactions, ours.withdrawals),
                              sorted(chain.validators_for(2))[1:])
        assert other_seals.header.extra_data != ours.header.extra_data
        assert check(chain, other_seals.header, "peer") is None
    finally:
        chain.close()


def test_a_peer_announcing_a_sealed_twin_is_detected_over_the_network(tmp_path):
    genesis = _genesis()
    honest = Chain.open(genesis, tmp_path / "honest", clock=None)
    forked = Chain.open(genesis, tmp_path / "forked", clock=None)
    try:
        _grow(honest, 3)
        for n in range(1, 2):
            forked.import_block(honest.block(n))
        twin = _fork(honest, 2, signers=3)
        forked.import_block(twin)

        async def go() -> None:
            allowed = frozenset(node_id_of(k) for k in KEYS)
            a = Transport(KEYS[0], P2PConfig(network_id=genesis.hash, allowed=allowed, name="a"),
                          blocks=lambda n: (b.encode() if (b := honest.block(n)) else None))
            b = Transport(KEYS[1], P2PConfig(network_id=genesis.hash, allowed=allowed, name="b"),
                          blocks=lambda n: (blk.encode() if (blk := forked.block(n)) else None))

            async def fetch(node_id: bytes, number: int) -> bytes | None:
                raws = await a.request_blocks(node_id, number, 1)
                return raws[0] if raws else None

            watch = EquivocationWatch(honest, fetch, tmp_path / "evidence")
            a.on_status = lambda peer: watch.announced(peer.node_id, peer.name, *peer.head)
            await a.start()
            await b.start()
            b.add_static_peer(PeerSpec(node_id_of(KEYS[0]), "127.0.0.1", a.port))
            deadline = time.monotonic() + 20
            while not b.peer_count:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            b.announce(2, block_hash(twin.header))
            while not watch.found:
                assert time.monotonic() < deadline, "the sealed twin was not detected"
                await asyncio.sleep(0.05)
            await watch.stop()
            await b.stop()
            await a.stop()

        asyncio.run(asyncio.wait_for(go(), 60))
        files = list((tmp_path / "evidence").iterdir())
        assert len(files) == 1
        evidence = json.loads(files[0].read_text())
        assert evidence["height"] == 2
        assert {evidence["ours"]["hash"], evidence["theirs"]["hash"]} == {
            "0x" + block_hash(honest.header(2)).hex(), "0x" + block_hash(twin.header).hex()}
        assert len(evidence["theirs"]["committers"]) == 3
    finally:
        honest.close()
        forked.close()
