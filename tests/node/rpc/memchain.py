"""A small in-memory ``ChainAPI``/``TxPoolAPI`` over real sealed QBFT blocks, for the RPC unit
tests: headers, hashes, seals, transactions and signatures are real (chain/qbft, eth-account);
state and receipts are whatever the test scripts. Integration tests run against node.execution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eth_account import Account
from eth_hash.auto import keccak

from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.genesis import AllocAccount, Genesis, QbftSettings, build_genesis
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BlockHeader
from chain.qbft.seals import address_of, sign
from node.abc import (
    Account as Acct,
)
from node.abc import (
    AccountProof,
    BlockId,
    CallRequest,
    CallResult,
    ChainAPI,
    Log,
    LogFilter,
    NodeAPI,
    NodeStatus,
    PoolStats,
    Receipt,
    TxLocation,
    TxPoolAPI,
    TxRejected,
    VoteProposerAPI,
)
from node.rpc.tx import decode

CHAIN_ID = 2026
VALIDATOR_KEYS = [(i + 1).to_bytes(32, "big") for i in range(4)]
VALIDATORS = sorted(address_of(k) for k in VALIDATOR_KEYS)
KEY_OF = {address_of(k): k for k in VALIDATOR_KEYS}
USER_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
USER = bytes.fromhex(Account.from_key(USER_KEY).address[2:])
REVERTER = bytes.fromhex("00000000000000000000000000000000000000ee")


def signed_tx(nonce: int, *, to: bytes | None = b"\x11" * 20, data: bytes = b"", kind: int = 2,
              key: bytes = USER_KEY) -> bytes:
    fields: dict[str, object] = {"nonce": nonce, "gas": 100_000, "value": 1, "data": data,
                                 "chainId": CHAIN_ID}
    if to is not None:
        fields["to"] = "0x" + to.hex()
    if kind == 2:
        fields.update(maxFeePerGas=10, maxPriorityFeePerGas=1, type=2)
    elif kind == 1:
        fields.update(gasPrice=3, type=1, accessList=[])
    else:
        fields.update(gasPrice=3)
    return bytes(Account.sign_transaction(fields, key).raw_transaction)


@dataclass
class Pool(TxPoolAPI):
    chain: MemChain
    txs: dict[bytes, bytes] = field(default_factory=dict)

    def add(self, raw: bytes, *, local: bool = True) -> bytes:
        try:
            tx = decode(raw)
        except ValueError as exc:
            raise TxRejected("Invalid transaction type", str(exc)) from None
        sender = tx.sender()
        expected = self.pending_nonce(sender)
        if tx.nonce < self.chain.nonces.get(sender, 0):
            raise TxRejected("Nonce too low", f"expected nonce {expected}, got {tx.nonce}")
        if tx.nonce > expected:
            raise TxRejected("Transaction nonce is too distant from current sender nonce",
                             f"expected {expected}, got {tx.nonce}")
        if tx.chain_id not in (None, CHAIN_ID):
            raise TxRejected("Wrong chainId")
        self.txs[tx.hash] = raw
        return tx.hash

    def get(self, tx_hash: bytes) -> bytes | None:
        return self.txs.get(tx_hash)

    def pending_nonce(self, address: bytes) -> int:
        pending = [decode(r) for r in self.txs.values()]
        mine = [t.nonce for t in pending if t.sender() == address]
        return max([*mine, self.chain.nonces.get(address, 0) - 1]) + 1

    def stats(self) -> PoolStats:
        return PoolStats(local_count=len(self.txs), remote_count=0, max_size=4096)


class Votes(VoteProposerAPI):
    def __init__(self) -> None:
        self.votes: dict[bytes, bool] = {}

    def propose(self, address: bytes, add: bool) -> None:
        self.votes[address] = add

    def discard(self, address: bytes) -> None:
        self.votes.pop(address, None)

    def pending(self) -> dict[bytes, bool]:
        return dict(self.votes)


class MemChain(ChainAPI):
    def __init__(self, request_timeout: int = 4, contract_mode: bool = False) -> None:
        qbft = QbftSettings(block_period_seconds=2, request_timeout_seconds=request_timeout,
                            validator_contract_address=b"\x00" * 19 + b"\x77" if contract_mode else None)
        self.genesis = Genesis(build_genesis(
            chain_id=CHAIN_ID, validators=VALIDATORS, qbft=qbft, timestamp=1_700_000_000,
            alloc={USER: AllocAccount(balance=10**21)}))
        self.blocks: list[Block] = [Block(self.genesis.header(), ())]
        self.hashes: list[bytes] = [self.genesis.hash]
        self.receipt_lists: list[list[Receipt]] = [[]]
        self.nonces: dict[bytes, int] = {}
        self.callbacks: list[Callable[[Block, list[Receipt]], None]] = []
        self.validator_sets: list[tuple[bytes, ...]] = [tuple(VALIDATORS)]

    # -- building -------------------------------------------------------------------------

    def add_block(self, txs: Sequence[bytes] = (), *, logs_per_tx: int = 1,
                  proposer: bytes | None = None, validators: Sequence[bytes] | None = None) -> Block:
        parent = self.blocks[-1].header
        number = parent.number + 1
        vset = tuple(sorted(validators)) if validators is not None else self.validator_sets[-1]
        coinbase = proposer or vset[number % len(vset)]
        extra = xd.ExtraData(bytes(32), vset, None, 0, ())
        header = BlockHeader(
            parent_hash=self.hashes[-1], ommers_hash=parent.ommers_hash, coinbase=coinbase,
            state_root=keccak(number.to_bytes(8, "big")), transactions_root=parent.transactions_root,
            receipts_root=parent.receipts_root, logs_bloom=bytes(256), difficulty=1, number=number,
            gas_limit=parent.gas_limit, gas_used=21_000 * len(txs), timestamp=parent.timestamp + 2,
            extra_data=xd.encode(extra), mix_hash=parent.mix_hash, nonce=bytes(8),
            base_fee=parent.base_fee, withdrawals_root=parent.withdrawals_root,
            blob_gas_used=parent.blob_gas_used, excess_blob_gas=parent.excess_blob_gas,
            parent_beacon_block_root=parent.parent_beacon_block_root,
        )
        digest = commit_seal_hash(header)
        seals = tuple(sign(KEY_OF[v], digest) for v in vset[:3] if v in KEY_OF)
        header = header.with_extra_data(xd.encode(extra.with_seals(seals)))
        bh = block_hash(header)
        receipts: list[Receipt] = []
        cumulative = 0
        log_index = 0
        for i, raw in enumerate(txs):
            tx = decode(raw)
            sender = tx.sender()
            self.nonces[sender] = tx.nonce + 1
            cumulative += 21_000
            logs = []
            for k in range(logs_per_tx):
                logs.append(Log(address=tx.to or b"\x22" * 20,
                                topics=(keccak(b"Recorded(uint256)"), (i + k).to_bytes(32, "big")),
                                data=b"\x00" * 31 + bytes([k]), block_number=number, block_hash=bh,
                                tx_hash=tx.hash, tx_index=i, log_index=log_index))
                log_index += 1
            receipts.append(Receipt(
                tx_hash=tx.hash, tx_index=i, tx_type=tx.type, block_hash=bh, block_number=number,
                sender=sender, to=tx.to,
                contract_address=None if tx.to else keccak(sender + bytes([tx.nonce]))[12:],
                status=1, cumulative_gas_used=cumulative, gas_used=21_000,
                effective_gas_price=tx.effective_gas_price(header.base_fee),
                logs_bloom=bytes(256), logs=tuple(logs)))
        block = Block(header, tuple(txs), () if parent.withdrawals_root is not None else None)
        self.blocks.append(block)
        self.hashes.append(bh)
        self.receipt_lists.append(receipts)
        self.validator_sets.append(vset)
        for cb in self.callbacks:
            cb(block, receipts)
        return block

    # -- ChainAPI -------------------------------------------------------------------------

    def _index(self, block: BlockId) -> int | None:
        if isinstance(block, int):
            return block if 0 <= block < len(self.blocks) else None
        return self.hashes.index(block) if block in self.hashes else None

    @property
    def head(self) -> BlockHeader:
        return self.blocks[-1].header

    def header(self, block: BlockId) -> BlockHeader | None:
        i = self._index(block)
        return None if i is None else self.blocks[i].header

    def block(self, block: BlockId) -> Block | None:
        i = self._index(block)
        return None if i is None else self.blocks[i]

    def receipts(self, block: BlockId) -> list[Receipt] | None:
        i = self._index(block)
        return None if i is None else self.receipt_lists[i]

    def transaction(self, tx_hash: bytes) -> TxLocation | None:
        for n, rs in enumerate(self.receipt_lists):
            for r in rs:
                if r.tx_hash == tx_hash:
                    return TxLocation(tx_hash, self.blocks[n].transactions[r.tx_index], r.sender,
                                      self.hashes[n], n, r.tx_index)
        return None

    def logs(self, flt: LogFilter) -> list[Log]:
        out = []
        for n in range(flt.from_block, min(flt.to_block, len(self.blocks) - 1) + 1):
            for r in self.receipt_lists[n]:
                for entry in r.logs:
                    if flt.addresses and entry.address not in flt.addresses:
                        continue
                    if any(w is not None and (i >= len(entry.topics) or entry.topics[i] not in w)
                           for i, w in enumerate(flt.topics)):
                        continue
                    out.append(entry)
        return out

    def account(self, address: bytes, block: BlockId) -> Acct:
        balance = 10**21 if address == USER else 0
        return Acct(self.nonces.get(address, 0), balance, keccak(b""), bytes(32))

    def code(self, address: bytes, block: BlockId) -> bytes:
        return b"\x60\x00" if address == REVERTER else b""

    def storage_at(self, address: bytes, slot: int, block: BlockId) -> int:
        return slot * 2

    def proof(self, address: bytes, slots: Sequence[int], block: BlockId) -> AccountProof:
        return AccountProof(address, self.account(address, block), (b"\xc0",),
                            tuple((s, s * 2, (b"\x80",)) for s in slots))

    def call(self, request: CallRequest, block: BlockId) -> CallResult:
        if request.to == REVERTER:
            reason = b"not allowed"
            output = (bytes.fromhex("08c379a0") + (32).to_bytes(32, "big")
                      + len(reason).to_bytes(32, "big") + reason.ljust(32, b"\x00"))
            return CallResult(output, 25_000, "execution reverted")
        return CallResult(request.data[::-1], 21_000)

    def estimate_gas(self, request: CallRequest, block: BlockId) -> int:
        if request.to == REVERTER:
            raise ValueError("execution reverted")
        return 21_000 + 16 * len(request.data)

    def validators_for(self, number: int) -> tuple[bytes, ...]:
        if number < len(self.validator_sets):
            return self.validator_sets[number]
        return self.validator_sets[-1]

    def on_new_head(self, callback: Callable[[Block, list[Receipt]], None]) -> None:
        self.callbacks.append(callback)


def node_api(chain: MemChain | None = None, *, role: str = "validator", dev: object = None,
             peers: int = 3) -> NodeAPI:
    from node.abc import PeerInfo

    chain = chain or MemChain()
    status = NodeStatus(name="validator-1", role=role, address=VALIDATORS[0],
                        peers=[PeerInfo(bytes([i]) * 64, f"validator-{i + 2}", f"127.0.0.1:{30304 + i}",
                                        VALIDATORS[i + 1]) for i in range(peers)])
    return NodeAPI(chain=chain, status=status, pool=Pool(chain),
                   votes=Votes() if role == "validator" else None, dev=dev)  # type: ignore[arg-type]
