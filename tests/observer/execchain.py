"""Executed chains for the replay tests: built by our node's own ``Chain`` (real py-evm execution,
the LMDB store, the pool), sealed by a quorum of four real validator keys, and served as the
node's JSON-RPC formats them (``node.rpc``'s methods, called in process).

The chain carries what replay must get right: contract deployments (the execution tests' Probe,
and the real CeFi Event Ledger with attested records), storage writes and deletions, reverts,
value transfers, self-destruction, all three transaction types, a base fee that moves with gas
used (``zeroBaseFee`` off), a block reward to a mining beneficiary, and a fork by time (Cancun,
then Prague) in the middle of the chain.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from devchain import Chain as ServedChain
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from hostile import HostileNode

from chain.abc import AttestedEvent, LedgerDomain
from chain.attest import Eip712Scheme
from chain.attest.keys import LocalSigner
from chain.ledger import canonical_delta, data_hash, onchain
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.genesis import AllocAccount, Genesis, QbftSettings, build_genesis
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BlockHeader
from chain.qbft.quorum import quorum
from node.abc import NodeAPI, NodeStatus
from node.execution.chain import Chain
from node.rpc.dispatch import Dispatcher
from node.rpc.methods import Methods
from node.store.chaindb import ChainStore

ROOT = Path(__file__).parents[2]
PROBE = json.loads((ROOT / "tests" / "data" / "execution" / "probe.json").read_text())["contracts"]
PROBE_CODE = bytes.fromhex(PROBE["Probe"]["bytecode"][2:])
CHAIN_ID = 2026
START = 1_764_000_000
PRAGUE_AT = START + 6
KEYS = sorted((LocalSigner(bytes(keccak(b"replay validator %d" % i))) for i in range(4)),
              key=lambda s: s.address)
USERS = [Account.from_key(keccak(b"replay user %d" % i)) for i in range(8)]
WRITER = bytes(keccak(b"replay ledger writer"))
ACTOR = LocalSigner(bytes(keccak(b"replay ledger actor")))
BENEFICIARY = b"\xbe" * 20
GWEI = 10**9


def compiled_ledger() -> dict[str, Any]:
    """CeFiEventLedger as ape compiles it (the manifest in .build, compiled if missing)."""
    manifest = ROOT / ".build" / "__local__.json"
    if not manifest.exists():
        ape = Path(sys.executable).parent / "ape"
        done = subprocess.run([str(ape), "compile"], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
    return json.loads(manifest.read_text())["contractTypes"]["CeFiEventLedger"]  # type: ignore[no-any-return]


def order_entries(actor: LocalSigner, domain: LedgerDomain, count: int) -> list[onchain.Entry]:
    """``count`` ORDER_PLACED records of ``actor`` (nonces 1..count), attested with EIP-712 for
    ``domain``, ready for ``onchain.encode_batch``."""
    entries = []
    for n in range(1, count + 1):
        delta = canonical_delta("ORDER_PLACED", {
            "order": f"ORD-{n}", "investor": f"inv_{n:016x}", "isin": "LU0000000009",
            "side": "subscription", "amount": str(100 * n), "currency": "EUR",
            "dealing_date": "2026-11-25", "channel": "rest"})
        event = AttestedEvent(actor.address, "ORDER_PLACED", data_hash(delta), n)
        entries.append(onchain.Entry(actor.address, "ORDER_PLACED", n, delta,
                                     Eip712Scheme().attest(event, domain, [actor])))
    return entries


def call_data(signature: str, *args: Any) -> bytes:
    types = signature[signature.index("(") + 1:-1]
    return function_signature_to_4byte_selector(signature) + (
        abi_encode([t for t in types.split(",") if t], list(args)) if types else b"")


def genesis() -> Genesis:
    alloc = {bytes.fromhex(u.address[2:]): AllocAccount(balance=10**24) for u in USERS}
    alloc[bytes.fromhex(Account.from_key(WRITER).address[2:])] = AllocAccount(balance=10**24)
    raw = build_genesis(chain_id=CHAIN_ID, validators=[k.address for k in KEYS],
                        qbft=QbftSettings(block_reward=2 * 10**18, mining_beneficiary=BENEFICIARY),
                        alloc=alloc, fork="cancun", zero_base_fee=False, timestamp=START,
                        gas_limit=30_000_000)
    raw["config"]["pragueTime"] = PRAGUE_AT
    return Genesis(raw)


class Builder:
    """Signs transactions into the node's pool and seals each block with three of four keys."""

    def __init__(self, directory: Path) -> None:
        self.genesis = genesis()
        self.chain = Chain(self.genesis, ChainStore(directory), clock=None)
        self.nonces: dict[str, int] = {}

    def send(self, secret: bytes, *, to: bytes | None = None, data: bytes = b"", value: int = 0,
             gas: int = 3_000_000, kind: int = 2) -> bytes:
        sender = Account.from_key(secret).address
        nonce = self.nonces.get(sender, 0)
        self.nonces[sender] = nonce + 1
        tx: dict[str, Any] = {"nonce": nonce, "gas": gas, "value": value, "data": data,
                              "chainId": CHAIN_ID}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        if kind == 2:
            tx.update(maxFeePerGas=50 * GWEI, maxPriorityFeePerGas=GWEI)
        else:
            tx["gasPrice"] = 20 * GWEI
            if kind == 1:
                tx["accessList"] = []
        raw = bytes(Account.sign_transaction(tx, secret).raw_transaction)
        return self.chain.pool.add(raw)

    def seal(self) -> Block:
        head = self.chain.head
        number = head.number + 1
        proposer = KEYS[number % len(KEYS)]
        block = self.chain.create_block(head, 0, head.timestamp + 1, proposer.address, None)
        extra = xd.decode(block.header.extra_data)
        digest = commit_seal_hash(block.header, extra=extra)
        seals = tuple(k.sign_digest(digest) for k in KEYS[:quorum(len(KEYS))])
        sealed = Block(block.header.with_extra_data(xd.encode(extra.with_seals(seals))),
                       block.transactions, block.withdrawals)
        self.chain.import_block(sealed)
        return sealed

    def receipt(self, tx_hash: bytes) -> Any:
        location = self.chain.transaction(tx_hash)
        assert location is not None
        receipts = self.chain.receipts(location.block_number)
        assert receipts is not None
        return receipts[location.index]


def build(directory: Path) -> tuple[Chain, LedgerDomain, int]:
    """The executed chain, its ledger's domain and the number of records on it."""
    b = Builder(directory)
    users = [bytes(u.key) for u in USERS]
    writer = Account.from_key(WRITER).address
    probe_tx = b.send(users[0], data=PROBE_CODE)
    b.send(users[1], to=b"\x42" * 20, value=10**18, gas=21_000, kind=0)
    ledger_tx = b.send(WRITER, data=bytes.fromhex(compiled_ledger()["deploymentBytecode"]["bytecode"][2:])
                       + abi_encode(["address"], [writer]), gas=8_000_000)
    b.seal()
    probe = b.receipt(probe_tx).contract_address
    ledger = b.receipt(ledger_tx).contract_address
    assert probe is not None and ledger is not None
    b.seal()  # empty
    grant = "grantRole(bytes32,address)"
    b.send(WRITER, to=ledger, data=call_data(grant, onchain.WRITER_ROLE, writer))
    b.send(WRITER, to=ledger, data=call_data(grant, onchain.ATTESTER_ROLE, ACTOR.address))
    b.send(users[2], to=probe, data=call_data("fill(uint256)", 6), kind=1)
    b.send(users[3], to=probe, data=call_data("bump(bytes32)", b"a" * 32), kind=0)
    b.seal()
    domain = LedgerDomain(CHAIN_ID, ledger)
    entries = order_entries(ACTOR, domain, 8)
    b.send(WRITER, to=ledger, data=onchain.encode_batch(entries[:3]), gas=8_000_000)
    b.send(users[2], to=probe, data=call_data("clear(uint256)", 3))
    b.send(users[3], to=probe, data=call_data("fail(string)", "no"))
    b.seal()
    b.seal()  # empty
    b.send(WRITER, to=ledger, data=onchain.encode_batch(entries[3:]), gas=8_000_000)
    b.send(users[4], to=probe, data=call_data("spawnAndDestroy()"))
    b.send(users[5], to=probe, data=call_data("pay(address)", b"\x43" * 20), value=7)
    b.seal()
    b.send(users[6], to=probe, data=call_data("fill(uint256)", 500), gas=100_000)  # out of gas
    b.send(users[1], to=probe, data=call_data("set(uint256,uint256)", 9, 9), kind=1)
    b.seal()
    assert b.chain.schedule.at(b.chain.head.timestamp).name == "prague"
    return b.chain, domain, len(entries)


def rpc_view(chain: Chain) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]],
                                    dict[str, dict[str, Any]]]:
    """Blocks (transaction hashes only), receipts and transactions as the node serves them."""
    dispatcher = Dispatcher(Methods(NodeAPI(chain=chain, status=NodeStatus("replay", "validator",
                                                                            KEYS[0].address))))

    def call(method: str, *params: Any) -> Any:
        _status, body = asyncio.run(dispatcher.handle(json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()))
        assert body is not None
        answer = json.loads(body)
        assert "error" not in answer, answer
        return answer["result"]

    blocks, receipts, transactions = [], [], {}
    for n in range(chain.head.number + 1):
        full = call("eth_getBlockByNumber", hex(n), True)
        for tx in full["transactions"]:
            transactions[tx["hash"]] = tx
        full["transactions"] = [tx["hash"] for tx in full["transactions"]]
        blocks.append(full)
        receipts.append(call("eth_getBlockReceipts", hex(n)))
    return blocks, receipts, transactions


def serve(chain: Chain) -> HostileNode:
    """A HostileNode (not started) serving the chain as the node formats it, ready to tamper."""
    node = HostileNode(ServedChain(chain.genesis.raw, chain.genesis, {}, []))
    node.blocks, node.receipts, node.transactions = rpc_view(chain)
    return node


def reseal(node: HostileNode, start: int, keys: list[LocalSigner] = KEYS) -> None:
    """What a Byzantine quorum does after changing block ``start``: link every block from there
    on to the changed one, and seal each again with a quorum of the validators' own keys."""
    for n in range(start, len(node.blocks)):
        block = node.blocks[n]
        if n > start:
            block["parentHash"] = node.blocks[n - 1]["hash"]
        header = BlockHeader.from_rpc(block)
        extra = xd.decode(header.extra_data)
        digest = commit_seal_hash(header, extra=extra)
        seals = tuple(k.sign_digest(digest) for k in keys[:quorum(len(keys))])
        block["extraData"] = "0x" + xd.encode(extra.with_seals(seals)).hex()
        block["hash"] = "0x" + block_hash(BlockHeader.from_rpc(block)).hex()
        for item in [node.transactions[h] for h in block["transactions"] if h in node.transactions] \
                + node.receipts[n]:
            item["blockHash"] = block["hash"]
