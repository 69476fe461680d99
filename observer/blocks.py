"""Block verification, split into its sequential part and its parallel part.

``ChainTracker`` (sequential, cheap) parses each served block, checks it is the block asked
for, decodes its extraData and follows the validator set from the genesis with
``chain.qbft.votes.ValidatorHistory``; it turns a run of blocks into a ``Job`` that carries,
with each header, the validator set that must have sealed it. ``verify_job`` (pure, the cost:
two hashes and a signature recovery per seal) checks every header of a job with
``chain.qbft.verify.verify_header`` — parent link, QBFT header rules, listed validators, a
quorum of distinct valid seals — so jobs run in parallel on all cores. A job's first parent is
the last header of the job before, so the links hold across jobs too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chain import proofs
from chain.qbft import extra_data as xd
from chain.qbft.genesis import Genesis
from chain.qbft.header import BlockHeader, HeaderError
from chain.qbft.verify import verify_header
from chain.qbft.votes import ValidatorHistory
from observer.abc import RpcBlock


@dataclass(frozen=True, slots=True)
class Failure:
    """The first thing found wrong: where, which check, and why (with what to do, if any)."""

    block: int
    check: str
    message: str
    record: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        where = f"block {self.block}"
        if self.record is not None:
            where += f", record {self.record}"
        return f"{where}: {self.check}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {"block": self.block, "record": self.record, "check": self.check,
                "message": self.message, "source": self.source}


def served_transactions(header: BlockHeader, txs: Sequence[Mapping[str, Any]] | None,
                        source: str, why: str) -> list[bytes] | Failure:
    """The transactions a node served for ``header`` in their signed encoding, or the Failure
    that says how they differ from the sealed transactionsRoot (``why``: why the block must have
    transactions, for the node that serves none)."""
    n = header.number
    if txs is None:
        return Failure(n, "transactions", f"the node has no transactions for this block, {why}",
                       source=source)
    try:
        raws = [proofs.encode_transaction(t) for t in txs]
    except proofs.ProofError as exc:
        return Failure(n, "transactions", str(exc), source=source)
    failure = root_mismatch(n, "transactions", raws, header.transactions_root, "a transaction",
                            source)
    return raws if failure is None else failure


def root_mismatch(n: int, what: str, encoded: Sequence[bytes], sealed_root: bytes, one: str,
                  source: str) -> Failure | None:
    """None if the trie of a node's ``encoded`` items (``what``: transactions, receipts) has
    the root block ``n``'s sealed header commits to; else the Failure naming both roots."""
    root = proofs.trie_root(encoded)
    if root == sealed_root:
        return None
    return Failure(n, what, f"the node's {len(encoded)} {what} hash to 0x{root.hex()}, but the "
                   f"sealed header commits to 0x{sealed_root.hex()}: the node added, altered, "
                   f"reordered or withheld {one}", source=source)


def _check_of(message: str) -> str:
    if "commit seal" in message:
        return "seals"
    if "parentHash" in message or "does not follow its parent" in message:
        return "link"
    if "validators in extraData" in message or "coinbase" in message:
        return "validators"
    if "extraData" in message:
        return "extra-data"
    return "header"


def _strip(message: str, number: int) -> str:
    return message.removeprefix(f"block {number}: ")


@dataclass(frozen=True, slots=True)
class Job:
    parent: BlockHeader
    parent_hash: bytes | None
    """None when the parent is still being verified (in the job before): recomputed here."""
    headers: tuple[BlockHeader, ...]
    claimed: tuple[bytes | None, ...]
    """The hash each block was served with, to hold against the hash it really has."""
    set_index: tuple[int, ...]
    sets: tuple[tuple[bytes, ...], ...]
    period: int
    seals: bool = True
    """False: every rule but the commit seals (blocks before ``--from``, taken on trust)."""


@dataclass(frozen=True, slots=True)
class Sealed:
    number: int
    hash: bytes
    coinbase: bytes
    round: int
    committers: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class JobResult:
    sealed: tuple[Sealed, ...]
    failure: Failure | None


def verify_job(job: Job) -> JobResult:
    """Verify every header of ``job`` in order; stop at the first that fails."""
    out: list[Sealed] = []
    parent, parent_hash = job.parent, job.parent_hash
    for header, claimed, idx in zip(job.headers, job.claimed, job.set_index, strict=True):
        n = header.number
        try:
            sealed = verify_header(header, parent, job.sets[idx], block_period_seconds=job.period,
                                   parent_hash=parent_hash, seals=job.seals)
        except HeaderError as exc:
            message = _strip(str(exc), n)
            return JobResult(tuple(out), Failure(n, _check_of(message), message))
        if claimed is not None and claimed != sealed.hash:
            return JobResult(tuple(out), Failure(
                n, "served-hash",
                f"the node calls this block 0x{claimed.hex()}, but its header hashes to "
                f"0x{sealed.hash.hex()}: the node altered the header or its hash"))
        out.append(Sealed(n, sealed.hash, header.coinbase, sealed.extra.round, sealed.committers))
        parent, parent_hash = header, sealed.hash
    return JobResult(tuple(out), None)


def parse_block(number: int, raw: RpcBlock | None) -> tuple[BlockHeader, xd.ExtraData, bytes | None]:
    """Header, decoded extraData and served hash of the block served for ``number``.

    Raises ``BlockFault`` naming what is wrong with what the node served.
    """
    if raw is None:
        raise BlockFault(Failure(number, "missing", "the node has no such block"))
    try:
        header = BlockHeader.from_rpc(raw)
    except HeaderError as exc:
        raise BlockFault(Failure(number, "header", str(exc))) from None
    if header.number != number:
        raise BlockFault(Failure(number, "header",
                                 f"the node answered with block {header.number} instead"))
    try:
        extra = xd.decode(header.extra_data)
    except xd.ExtraDataError as exc:
        raise BlockFault(Failure(number, "extra-data", str(exc))) from None
    claimed: bytes | None = None
    served = raw.get("hash")
    if isinstance(served, str) and served.startswith("0x"):
        try:
            claimed = bytes.fromhex(served[2:])
        except ValueError:
            raise BlockFault(Failure(number, "header", "the served block hash is not hex")) from None
    return header, extra, claimed


class BlockFault(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure


@dataclass
class TrackerState:
    """Where a tracker stands after some block: enough to go on from there."""

    header: BlockHeader
    hash: bytes
    history: dict[str, object]


@dataclass
class ChainTracker:
    """The sequential half of block verification (see the module docstring)."""

    genesis: Genesis
    history: ValidatorHistory
    last: BlockHeader
    last_hash: bytes | None
    vote_blocks: list[int] = field(default_factory=list)
    """Blocks that carried a validator vote (a proof of the validator lineage needs them)."""

    @classmethod
    def start(cls, genesis: Genesis) -> ChainTracker:
        if genesis.contract_mode or any(
                "validatorcontractaddress" in str(t).lower()
                for t in (genesis.config.get("transitions") or {}).get("qbft", []) or []):
            raise ValueError(
                "this genesis selects validators with a contract; the observer verifies "
                "block-header (vote) validator selection only, so it cannot check this chain")
        history = ValidatorHistory(genesis.qbft.epoch, genesis.validator_overrides)
        header = genesis.header()
        history.apply(0, header.coinbase, genesis.extra)
        return cls(genesis, history, header, genesis.hash)

    @classmethod
    def resume(cls, genesis: Genesis, state: TrackerState, vote_blocks: list[int]) -> ChainTracker:
        history = ValidatorHistory.from_json(genesis.qbft.epoch, genesis.validator_overrides,
                                             state.history)
        return cls(genesis, history, state.header, state.hash, list(vote_blocks))

    def check_genesis(self, raw: RpcBlock | None) -> Failure | None:
        """Block 0 as served must be the genesis file's block."""
        try:
            header, _, claimed = parse_block(0, raw)
        except BlockFault as fault:
            return fault.failure
        if header.raw_hash() != self.genesis.hash:
            return Failure(0, "genesis",
                           f"the node's genesis block hashes to 0x{header.raw_hash().hex()}, the "
                           f"genesis file to 0x{self.genesis.hash.hex()}: the node runs another "
                           "network, or the genesis file is not this network's")
        if claimed is not None and claimed != self.genesis.hash:
            return Failure(0, "served-hash", f"the node calls its genesis block 0x{claimed.hex()}, "
                           f"but it hashes to 0x{self.genesis.hash.hex()}")
        return None

    def prepare(self, start: int, raws: list[RpcBlock | None]
                ) -> tuple[Job | None, Failure | None, dict[str, object]]:
        """A job for blocks ``start``.. as served (which must follow the last prepared block).

        Blocks up to the first one that cannot be parsed go into the job; the failure of that
        one comes back beside it (it counts only if the job's blocks verify). The third item is
        the validator history after the job's last block, for a checkpoint there.
        """
        if start != self.history.head + 1:
            raise ValueError(f"blocks from {start} prepared after block {self.history.head}")
        parent, parent_hash = self.last, self.last_hash
        headers: list[BlockHeader] = []
        claimed: list[bytes | None] = []
        index: list[int] = []
        sets: list[tuple[bytes, ...]] = []
        failure: Failure | None = None
        for offset, raw in enumerate(raws):
            number = start + offset
            try:
                header, extra, served = parse_block(number, raw)
            except BlockFault as fault:
                failure = fault.failure
                break
            validators = self.history.validators_for(number)
            if not sets or sets[-1] != validators:
                sets.append(validators)
            self.history.apply(number, header.coinbase, extra)
            if extra.vote is not None:
                self.vote_blocks.append(number)
            headers.append(header)
            claimed.append(served)
            index.append(len(sets) - 1)
        job = None
        if headers:
            self.last = headers[-1]
            self.last_hash = None  # known once the job is verified
            job = Job(parent, parent_hash, tuple(headers), tuple(claimed), tuple(index),
                      tuple(sets), self.genesis.qbft.block_period_seconds)
        return job, failure, self.history.to_json()
