"""Small real chains for the execution tests: a genesis, funded keys, the Probe contract, and
helpers to sign transactions and seal blocks with real validator keys."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from chain.attest.keys import LocalSigner
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.genesis import AllocAccount, Genesis, QbftSettings, build_genesis
from chain.qbft.hashing import commit_seal_hash
from chain.qbft.quorum import quorum
from node.execution.chain import Chain
from node.store.chaindb import ChainStore

DATA = Path(__file__).parents[2] / "data" / "execution"
PROBE = json.loads((DATA / "probe.json").read_text())["contracts"]
PROBE_CODE = bytes.fromhex(PROBE["Probe"]["bytecode"][2:])
CHAIN_ID = 2026
VALIDATOR_KEYS = [bytes([0x70 + i]) * 32 for i in range(4)]
USERS = [Account.from_key(keccak(i.to_bytes(32, "big"))) for i in range(1, 41)]
FUNDS = 10**24


def addr(account: Any) -> bytes:
    return bytes.fromhex(account.address[2:])


def signers(n: int) -> list[LocalSigner]:
    return sorted((LocalSigner(k) for k in VALIDATOR_KEYS[:n]), key=lambda s: s.address)


def genesis(validators: int = 1, *, fork: str = "cancun", alloc: dict[bytes, AllocAccount] | None = None,
            qbft: QbftSettings | None = None, **kwargs: Any) -> Genesis:
    funded = {addr(u): AllocAccount(balance=FUNDS) for u in USERS[:30]}
    funded.update(alloc or {})
    return Genesis(build_genesis(chain_id=CHAIN_ID, validators=[s.address for s in signers(validators)],
                                 qbft=qbft or QbftSettings(), alloc=funded, fork=fork, **kwargs))


def open_chain(path: Path, g: Genesis, **kwargs: Any) -> Chain:
    kwargs.setdefault("clock", None)
    return Chain(g, ChainStore(path), **kwargs)


def call_data(signature: str, *args: Any) -> bytes:
    types = signature[signature.index("(") + 1:-1]
    return function_signature_to_4byte_selector(signature) + (
        encode([t for t in types.split(",") if t], list(args)) if types else b"")


def sign(account: Any, *, nonce: int, to: bytes | None = None, data: bytes = b"", value: int = 0,
         gas: int = 500_000, type: int = 2, price: int = 0, tip: int | None = None,
         chain_id: int = CHAIN_ID, access_list: Sequence[dict[str, Any]] = ()) -> bytes:
    tx: dict[str, Any] = {"nonce": nonce, "gas": gas, "value": value, "data": data,
                          "chainId": chain_id}
    if to is not None:
        tx["to"] = to_checksum_address(to)
    if type == 0:
        tx["gasPrice"] = price
    elif type == 1:
        tx["gasPrice"] = price
        tx["accessList"] = list(access_list)
    else:
        tx["maxFeePerGas"] = price
        tx["maxPriorityFeePerGas"] = price if tip is None else tip
        if access_list:
            tx["accessList"] = list(access_list)
    return bytes(account.sign_transaction(tx).raw_transaction)


def seal_with(block: Block, keys: Sequence[LocalSigner], round: int | None = None) -> Block:
    header = block.header
    extra = xd.decode(header.extra_data)
    if round is not None:
        extra = extra.with_seals((), round)
    digest = commit_seal_hash(header.with_extra_data(xd.encode(extra)), extra=extra)
    seals = tuple(k.sign_digest(digest) for k in keys)
    return Block(header.with_extra_data(xd.encode(extra.with_seals(seals))), block.transactions,
                 block.withdrawals)


def produce(chain: Chain, keys: Sequence[LocalSigner], *, timestamp: int | None = None,
            proposer: LocalSigner | None = None) -> Block:
    """Build, seal with a quorum of ``keys`` and import the next block; the sealed block."""
    head = chain.head
    period = chain.genesis.qbft.block_period_seconds
    proposer = proposer or keys[0]
    block = chain.create_block(head, 0, timestamp or head.timestamp + period, proposer.address, None)
    sealed = seal_with(block, keys[:quorum(len(keys))])
    chain.import_block(sealed)
    return sealed
