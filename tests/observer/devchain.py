"""Sealed QBFT chains for the observer's tests, built with chain/ and real keys (no execution).

A chain has a real Besu genesis (``build_genesis``), validators who vote others in and out
through extraData, and blocks sealed by a quorum of the right set. Blocks may carry
transactions and receipts (given as JSON-RPC objects); their roots are computed with
chain/proofs, so the headers commit to them exactly as a real node's would.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_hash.auto import keccak

from chain import proofs
from chain.qbft import extra_data as xd
from chain.qbft.genesis import Genesis, QbftSettings, build_genesis
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BFT_MIX_HASH, EMPTY_OMMERS_HASH, BlockHeader
from chain.qbft.proposer import select_proposer
from chain.qbft.quorum import quorum
from chain.qbft.seals import address_of, sign
from chain.qbft.votes import ValidatorHistory

CHAIN_ID = 2026


def secrets_for(labels: Sequence[str]) -> dict[bytes, bytes]:
    out = {}
    for label in labels:
        secret = bytes(keccak(b"observer test key: " + label.encode()))
        out[address_of(secret)] = secret
    return out


Signers = Callable[[int, tuple[bytes, ...]], Sequence[bytes]]


def rotating_quorum(number: int, validators: tuple[bytes, ...]) -> list[bytes]:
    """A quorum that changes from block to block, so every validator shows signing activity."""
    q = quorum(len(validators))
    return [validators[(number + i) % len(validators)] for i in range(q)]


@dataclass
class Block:
    header: BlockHeader
    hash: bytes
    transactions: list[dict[str, Any]] = field(default_factory=list)
    receipts: list[dict[str, Any]] = field(default_factory=list)

    def rpc(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.header.to_rpc())
        out["hash"] = "0x" + self.hash.hex()
        out["size"] = hex(len(self.header.encode()))
        out["totalDifficulty"] = hex(self.header.number + 1)
        out["transactions"] = [t["hash"] for t in self.transactions]
        out["uncles"] = []
        if self.header.withdrawals_root is not None:
            out["withdrawals"] = []
        return out


@dataclass
class Chain:
    genesis_json: dict[str, Any]
    genesis: Genesis
    keys: dict[bytes, bytes]
    blocks: list[Block]

    def copy(self) -> Chain:
        return copy.deepcopy(self)


BodyMaker = Callable[[int, BlockHeader], tuple[list[dict[str, Any]], list[dict[str, Any]]]]
"""(number, parent) -> (transactions, receipts) as JSON-RPC objects, without block fields."""


class ChainBuilder:
    def __init__(self, validators: int = 4, spare: int = 2, *, epoch: int = 30000,
                 period: int = 1, signers: Signers = rotating_quorum,
                 transitions: dict[int, Sequence[bytes]] | None = None) -> None:
        everyone = secrets_for([f"validator-{i}" for i in range(validators + spare)])
        addrs = list(everyone)
        self.keys = everyone
        self.genesis_validators = addrs[:validators]
        self.spare = addrs[validators:]
        self.genesis_json = build_genesis(
            chain_id=CHAIN_ID, validators=self.genesis_validators,
            qbft=QbftSettings(block_period_seconds=period, epoch_length=epoch,
                              request_timeout_seconds=2),
            timestamp=1_764_000_000, validator_transitions=transitions)
        self.genesis = Genesis(self.genesis_json)
        self.signers = signers
        self.period = period
        self.history = ValidatorHistory(self.genesis.qbft.epoch, self.genesis.validator_overrides)
        g = self.genesis.header()
        self.history.apply(0, g.coinbase, self.genesis.extra)
        self.blocks = [Block(g, self.genesis.hash)]

    def add(self, *, vote: xd.Vote | None = None, body: BodyMaker | None = None,
            round: int = 0, signers: Sequence[bytes] | None = None,
            validators: Sequence[bytes] | None = None, salt: bytes = b"") -> Block:
        """The next block; ``salt`` changes its state root (a fork of the same height)."""
        parent = self.blocks[-1].header
        number = parent.number + 1
        expected = self.history.validators_for(number)
        listed = tuple(sorted(validators)) if validators is not None else expected
        txs, receipts = body(number, parent) if body is not None else ([], [])
        proposer = select_proposer(expected, parent.coinbase, round)
        gas_used = int(receipts[-1]["cumulativeGasUsed"], 16) if receipts else 0
        bloom = bytes(256)
        for r in receipts:
            bloom = bytes(a | b for a, b in zip(bloom, bytes.fromhex(r["logsBloom"][2:]), strict=True))
        extra = xd.ExtraData(bytes(32), listed, vote, round, ())
        header = BlockHeader(
            parent_hash=block_hash(parent), ommers_hash=EMPTY_OMMERS_HASH, coinbase=proposer,
            state_root=bytes(keccak(b"state %d" % number + salt)),
            transactions_root=proofs.trie_root([bytes.fromhex(t["raw"][2:]) for t in txs]),
            receipts_root=proofs.trie_root([proofs.encode_receipt(r) for r in receipts]),
            logs_bloom=bloom, difficulty=1, number=number, gas_limit=parent.gas_limit,
            gas_used=gas_used, timestamp=parent.timestamp + self.period,
            extra_data=xd.encode(extra), mix_hash=BFT_MIX_HASH, nonce=bytes(8),
            base_fee=parent.base_fee, withdrawals_root=parent.withdrawals_root,
            blob_gas_used=parent.blob_gas_used, excess_blob_gas=parent.excess_blob_gas,
            parent_beacon_block_root=parent.parent_beacon_block_root,
            requests_hash=parent.requests_hash,
        )
        digest = commit_seal_hash(header)
        who = signers if signers is not None else self.signers(number, listed)
        sealed = header.with_extra_data(xd.encode(extra.with_seals(
            tuple(sign(self.keys[a], digest) for a in who))))
        h = block_hash(sealed)
        for i, (t, r) in enumerate(zip(txs, receipts, strict=True)):
            for obj in (t, r):
                obj.update({"blockHash": "0x" + h.hex(), "blockNumber": hex(number),
                            "transactionIndex": hex(i)})
            for log in r["logs"]:
                log.update({"blockHash": "0x" + h.hex(), "blockNumber": hex(number),
                            "transactionIndex": hex(i), "transactionHash": t["hash"]})
        block = Block(sealed, h, txs, receipts)
        self.history.apply(number, proposer, xd.decode(sealed.extra_data))
        self.blocks.append(block)
        return block

    def extend(self, count: int) -> None:
        for _ in range(count):
            self.add()

    def vote_in(self, subject: bytes, add: bool = True) -> None:
        """Blocks with votes for ``subject`` until the set has changed."""
        before = set(self.history.validators_for(self.blocks[-1].header.number + 1))
        for _ in range(3 * len(before)):
            self.add(vote=xd.Vote(subject, add))
            now = set(self.history.validators_for(self.blocks[-1].header.number + 1))
            if now != before:
                return
        raise AssertionError("the votes did not change the validator set")

    def chain(self) -> Chain:
        return Chain(self.genesis_json, self.genesis, dict(self.keys), list(self.blocks))


def standard_chain(blocks: int = 16) -> Chain:
    """Four validators; a fifth voted in around block 5; plain blocks after."""
    b = ChainBuilder()
    b.extend(3)
    b.vote_in(b.spare[0])
    b.extend(max(0, blocks - len(b.blocks) + 1))
    return b.chain()
