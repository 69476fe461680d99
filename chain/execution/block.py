"""A block's environment and its header against the rules and against its execution.

What a validator checks before and after executing a proposal, and what an observer checks when
it replays a chain: the environment the genesis and the parent give a block (fork, base fee,
excess blob gas, where fees go), the header fields the fork fixes on a QBFT network, and the
header's roots, bloom and gas against what executing the block produced. Also the state the
genesis alloc gives block 0. Pure: the caller says where trie nodes come from and go to.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_typing import Address

from chain.execution import mpt
from chain.execution.executor import BlockEnv, Execution
from chain.execution.forks import ForkSchedule
from chain.execution.statedb import StateDB, StateSource
from chain.qbft.genesis import EMPTY_REQUESTS_HASH, Genesis
from chain.qbft.header import EMPTY_OMMERS_HASH, EMPTY_TRIE_ROOT, ZERO_HASH, BlockHeader

BLOB_TARGET = {"cancun": 393_216, "prague": 786_432}
INITIAL_BASE_FEE = 1_000_000_000


class FieldError(ValueError):
    """A header field the fork's rules fix to another value; the message names both."""


def base_fee(genesis: Genesis, parent: BlockHeader) -> int:
    """The base fee of the child of ``parent`` (EIP-1559, or 0 under Besu's ``zeroBaseFee``)."""
    if genesis.zero_base_fee:
        return 0
    base = parent.base_fee if parent.base_fee is not None else INITIAL_BASE_FEE
    target = parent.gas_limit // 2
    used = parent.gas_used
    if used == target or target == 0:
        return base
    if used > target:
        return base + max(base * (used - target) // target // 8, 1)
    return base - base * (target - used) // target // 8


def block_env(genesis: Genesis, schedule: ForkSchedule, parent: BlockHeader, timestamp: int,
              coinbase: bytes) -> BlockEnv:
    """The environment of the block after ``parent`` sealed at ``timestamp`` by ``coinbase``."""
    fork = schedule.at(timestamp)
    excess = None
    if fork.cancun:
        excess = max(0, (parent.excess_blob_gas or 0) + (parent.blob_gas_used or 0)
                     - BLOB_TARGET[fork.name])
    q = genesis.qbft
    return BlockEnv(fork, parent.number + 1, timestamp, coinbase, parent.gas_limit,
                    base_fee(genesis, parent), excess, genesis.chain_id,
                    q.mining_beneficiary or coinbase, q.block_reward)


def check_fields(header: BlockHeader, withdrawals: tuple[bytes, ...] | None, env: BlockEnv) -> None:
    """Raise FieldError unless the fields a QBFT block of ``env``'s fork fixes have their value
    (no ommers, the base fee and gas limit the parent gives, empty withdrawals, no blobs,
    no beacon root, no requests)."""
    fork = env.fork
    if header.ommers_hash != EMPTY_OMMERS_HASH:
        raise FieldError("QBFT blocks have no ommers (sha3Uncles must be the empty-list hash)")
    if header.base_fee != env.base_fee:
        raise FieldError(f"baseFeePerGas is {header.base_fee}, the {fork.name} rules give {env.base_fee}")
    if header.gas_limit != env.gas_limit:
        raise FieldError(f"gasLimit {header.gas_limit} differs from the parent's {env.gas_limit}")
    if fork.shanghai:
        if header.withdrawals_root != EMPTY_TRIE_ROOT or withdrawals != ():
            raise FieldError("a QBFT block from Shanghai on carries an empty withdrawals list")
    elif header.withdrawals_root is not None or withdrawals is not None:
        raise FieldError(f"withdrawals are not part of {fork.name} blocks")
    if fork.cancun:
        if header.blob_gas_used != 0:
            raise FieldError("blobGasUsed must be 0: this network carries no blobs")
        if header.excess_blob_gas != env.excess_blob_gas:
            raise FieldError(f"excessBlobGas is {header.excess_blob_gas}, expected {env.excess_blob_gas}")
        if header.parent_beacon_block_root != ZERO_HASH:
            raise FieldError("parentBeaconBlockRoot must be zero in a QBFT block")
    elif header.blob_gas_used is not None:
        raise FieldError(f"blob gas fields are not part of {fork.name} blocks")
    if fork.prague:
        if header.requests_hash != EMPTY_REQUESTS_HASH:
            raise FieldError("requestsHash must be the hash of no requests on a QBFT network")
    elif header.requests_hash is not None:
        raise FieldError(f"requestsHash is not part of {fork.name} blocks")


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A header field that differs from what executing the block gives."""

    field: str
    """The header field's JSON-RPC name: stateRoot, transactionsRoot, receiptsRoot, logsBloom,
    gasUsed."""
    header: bytes | int
    executed: bytes | int

    def __str__(self) -> str:
        want, got = self.header, self.executed
        if isinstance(want, bytes) and isinstance(got, bytes):
            return f"{self.field} is 0x{want.hex()}, executing the block gives 0x{got.hex()}"
        return f"{self.field} is {want!r}, executing the block uses {got!r}"


def mismatches(header: BlockHeader, execution: Execution) -> list[Mismatch]:
    """Every header field that differs from the execution's, the state root first."""
    out = [Mismatch(name, want, got) for name, want, got in (
        ("stateRoot", header.state_root, execution.state_root),
        ("transactionsRoot", header.transactions_root, execution.transactions_root),
        ("receiptsRoot", header.receipts_root, execution.receipts_root),
        ("logsBloom", header.logs_bloom, execution.logs_bloom),
    ) if want != got]
    if header.gas_used != execution.gas_used:
        out.append(Mismatch("gasUsed", header.gas_used, execution.gas_used))
    return out


def genesis_state(genesis: Genesis, source: StateSource) -> StateDB:
    """The state the genesis alloc gives block 0, committed: its ``state_root`` is the root and
    its ``nodes`` the trie nodes and code to store."""
    db = StateDB(source, mpt.BLANK_ROOT)
    for address, acct in genesis.alloc.items():
        a = Address(address)
        db.touch_account(a)
        db.set_balance(a, acct.balance)
        db.set_nonce(a, acct.nonce)
        if acct.code:
            db.set_code(a, acct.code)
        for slot, value in acct.storage.items():
            if value:
                db.set_storage(a, slot, value)
    db.make_state_root()
    return db
