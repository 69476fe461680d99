"""Every role inside the node, in one place (after py-evm's ``eth/abc.py``).

The node is four parts around these interfaces:

- ``node.execution`` (with ``node.store`` and ``node.txpool``) implements ``ChainAPI``,
  ``BlockSource`` and ``TxPoolAPI``: py-evm execution, the persistent chain, the pool;
- ``node.consensus`` is the pure QBFT state machine; it sees blocks only through
  ``BlockSource`` and the chain only through ``ChainAPI``;
- ``node.p2p`` carries consensus messages and block sync between node processes;
- ``node.rpc`` serves Besu-compatible JSON-RPC, health and metrics over ``NodeAPI``.

Keep these small; a method lands here when two parts need it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# Execution's own vocabulary lives in chain/ (the observer re-executes blocks too); the node
# names it here as well, so every role the node's parts share stays in this one module.
from chain.abc import CallRequest as CallRequest
from chain.abc import CallResult as CallResult
from chain.abc import TxRejected as TxRejected
from chain.qbft.block import Block
from chain.qbft.extra_data import Vote
from chain.qbft.genesis import Genesis
from chain.qbft.header import BlockHeader
from chain.qbft.votes import VoteTally

BlockId = int | bytes
"""A block number, or a 32-byte block hash."""


class BlockInvalid(ValueError):
    """A block that fails validation or execution; the message names the rule it broke."""


@dataclass(frozen=True, slots=True)
class Log:
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    tx_index: int
    log_index: int


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: bytes
    tx_index: int
    tx_type: int
    block_hash: bytes
    block_number: int
    sender: bytes
    to: bytes | None
    contract_address: bytes | None
    status: int
    cumulative_gas_used: int
    gas_used: int
    effective_gas_price: int
    logs_bloom: bytes
    logs: tuple[Log, ...]
    revert_reason: bytes | None = None


@dataclass(frozen=True, slots=True)
class TxLocation:
    tx_hash: bytes
    raw: bytes
    sender: bytes
    block_hash: bytes
    block_number: int
    index: int


@dataclass(frozen=True, slots=True)
class Account:
    nonce: int
    balance: int
    code_hash: bytes
    storage_root: bytes


@dataclass(frozen=True, slots=True)
class AccountProof:
    address: bytes
    account: Account
    account_proof: tuple[bytes, ...]
    storage: tuple[tuple[int, int, tuple[bytes, ...]], ...]
    """(slot, value, proof nodes) per requested slot."""


@dataclass(frozen=True, slots=True)
class LogFilter:
    from_block: int
    to_block: int
    addresses: tuple[bytes, ...] = ()
    topics: tuple[tuple[bytes, ...] | None, ...] = ()
    """Per position: None matches anything, else any of the listed topics."""
    block_hash: bytes | None = None


class ChainAPI(ABC):
    """The persistent, verified chain and its state; reads are safe from any thread."""

    genesis: Genesis

    @property
    @abstractmethod
    def head(self) -> BlockHeader: ...

    @abstractmethod
    def header(self, block: BlockId) -> BlockHeader | None: ...

    @abstractmethod
    def block(self, block: BlockId) -> Block | None:
        """The block with the commit seals this node holds."""

    @abstractmethod
    def receipts(self, block: BlockId) -> list[Receipt] | None: ...

    @abstractmethod
    def transaction(self, tx_hash: bytes) -> TxLocation | None: ...

    @abstractmethod
    def logs(self, flt: LogFilter) -> list[Log]: ...

    @abstractmethod
    def account(self, address: bytes, block: BlockId) -> Account: ...

    @abstractmethod
    def code(self, address: bytes, block: BlockId) -> bytes: ...

    @abstractmethod
    def storage_at(self, address: bytes, slot: int, block: BlockId) -> int: ...

    @abstractmethod
    def proof(self, address: bytes, slots: Sequence[int], block: BlockId) -> AccountProof: ...

    @abstractmethod
    def call(self, request: CallRequest, block: BlockId) -> CallResult: ...

    @abstractmethod
    def estimate_gas(self, request: CallRequest, block: BlockId) -> int: ...

    @abstractmethod
    def validators_for(self, number: int) -> tuple[bytes, ...]:
        """Sorted validators that seal block ``number`` (up to head + 1)."""

    @abstractmethod
    def on_new_head(self, callback: Callable[[Block, list[Receipt]], None]) -> None:
        """Call ``callback`` after each block is imported and is the new head."""


class BlockSource(ABC):
    """What consensus asks of execution."""

    @abstractmethod
    def create_block(self, parent: BlockHeader, round: int, timestamp: int,
                     coinbase: bytes, vote: Vote | None) -> Block:
        """Execute pending transactions on ``parent`` into an unsealed block whose extraData
        holds vanity, the validators after ``parent``, ``vote`` and ``round``, and no seals."""

    @abstractmethod
    def validate_block(self, block: Block) -> None:
        """Raise BlockInvalid unless the proposed block executes to the roots it claims.
        The result is kept, so importing the same block does not execute it again."""

    @abstractmethod
    def import_block(self, block: Block) -> None:
        """Persist a sealed block atomically and make it the head. Raises BlockInvalid if its
        seals do not reach a quorum of the validators after its parent."""


class ValidatorView(ABC):
    """What consensus reads about validator sets, as Besu's ``ValidatorProvider``: the set that
    seals the child of a block, and (block-header mode) the votes outstanding after it."""

    @abstractmethod
    def validators_after(self, header: BlockHeader) -> tuple[bytes, ...]:
        """Sorted validators that seal block ``header.number + 1``."""

    @abstractmethod
    def votes_after(self, header: BlockHeader) -> VoteTally | None:
        """The vote tally after ``header``; None where votes do not apply (contract mode)."""


@dataclass
class PoolStats:
    local_count: int = 0
    remote_count: int = 0
    max_size: int = 0


class TxPoolAPI(ABC):
    @abstractmethod
    def add(self, raw: bytes, *, local: bool = True) -> bytes:
        """Validate and queue a transaction; its hash, or TxRejected with Besu's reason."""

    @abstractmethod
    def get(self, tx_hash: bytes) -> bytes | None: ...

    @abstractmethod
    def pending_nonce(self, address: bytes) -> int: ...

    @abstractmethod
    def stats(self) -> PoolStats: ...


@dataclass
class PeerInfo:
    node_id: bytes
    name: str
    address: str
    validator: bytes | None = None


@dataclass
class NodeStatus:
    """What RPC, health checks and metrics read about the node as a whole."""

    name: str
    role: str
    """"validator" or "observer"."""
    address: bytes
    peers: list[PeerInfo] = field(default_factory=list)
    syncing: tuple[int, int, int] | None = None
    """(starting, current, highest) block while catching up, else None."""
    round_changes: dict[tuple[int, int], int] = field(default_factory=dict)
    missed_proposals: dict[bytes, int] = field(default_factory=dict)
    equivocations: int = 0
    """Conflicting blocks at one height, each with a quorum of seals, seen so far (evidence)."""


class VoteProposerAPI(ABC):
    """This validator's own validator-vote proposals (``qbft_proposeValidatorVote`` and
    friends), kept by consensus and cast in the blocks it proposes, as Besu's ``VoteProposer``."""

    @abstractmethod
    def propose(self, address: bytes, add: bool) -> None: ...

    @abstractmethod
    def discard(self, address: bytes) -> None: ...

    @abstractmethod
    def pending(self) -> dict[bytes, bool]:
        """Subject address -> True to add it, False to drop it."""


class DevChainAPI(ABC):
    """Development-network controls (anvil/Hardhat style) for a single-validator network whose
    definition enables dev mode; RPC exposes them only when the node has one."""

    @abstractmethod
    def snapshot(self) -> int:
        """Remember the head and state; an id for ``revert``."""

    @abstractmethod
    def revert(self, snapshot_id: int) -> bool:
        """Rewind to the snapshot (dropping it and every later one); False if it is unknown."""

    @abstractmethod
    def mine(self, blocks: int = 1, timestamp: int | None = None, interval: int = 1) -> None:
        """Seal ``blocks`` blocks now, the first at ``timestamp`` if given, then ``interval``
        seconds apart."""

    @abstractmethod
    def increase_time(self, seconds: int) -> int:
        """Move the clock used for new blocks forward; the total offset so far, in seconds."""

    @abstractmethod
    def set_next_block_timestamp(self, timestamp: int) -> None:
        """Use exactly ``timestamp`` for the next block; ValueError if it is not after the head."""


@dataclass
class NodeAPI:
    """Everything the RPC server, health checks and metrics read or drive; the node process
    builds one and hands it to ``node.rpc``. Parts a node does not have are None (an observer
    has no pool writes to offer and no votes; dev controls exist only on dev networks)."""

    chain: ChainAPI
    status: NodeStatus
    pool: TxPoolAPI | None = None
    votes: VoteProposerAPI | None = None
    dev: DevChainAPI | None = None
