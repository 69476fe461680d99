"""``smartta-observer verify``: walk a chain from the genesis (or a trusted checkpoint) and check
every block, comparing nodes when given several.

The run is a pipeline: a thread fetches ranges of blocks from every node ahead of time; the
main thread parses them and follows the validator set (``ChainTracker``); a pool of processes,
one per core, checks the headers and recovers the seals (``verify_job``); results are taken
back in block order, compared across nodes, executed again (``--replay``, in the main
process, ``observer.replay``), handed to the ledger record walk, counted and checkpointed. The
first failure stops the run and is reported exactly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from chain.qbft.genesis import Genesis
from chain.qbft.hashing import block_hash
from chain.qbft.header import BlockHeader, HeaderError
from chain.qbft.verify import verify_header
from observer.abc import ChainSource, RpcBlock, SourceError
from observer.blocks import (
    BlockFault,
    ChainTracker,
    Failure,
    Job,
    JobResult,
    Sealed,
    TrackerState,
    parse_block,
    verify_job,
)
from observer.checkpoint import Checkpoint, CheckpointStore
from observer.records import RecordJob, RecordResult, check_records


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two different blocks at one height, each sealed by a quorum of its validators."""

    height: int
    first: tuple[str, RpcBlock, Sealed]
    second: tuple[str, RpcBlock, Sealed]

    def to_json(self) -> dict[str, Any]:
        def side(item: tuple[str, RpcBlock, Sealed]) -> dict[str, Any]:
            name, raw, sealed = item
            header = BlockHeader.from_rpc(raw)
            return {"node": name, "hash": "0x" + sealed.hash.hex(), "round": sealed.round,
                    "committers": ["0x" + c.hex() for c in sealed.committers],
                    "headerRlp": "0x" + header.encode().hex(), "block": raw}

        return {"kind": "qbft-equivocation", "height": self.height,
                "explanation": "two different blocks at one height, each carrying a quorum of "
                               "valid commit seals from the validators of that height: at least "
                               "the validators who sealed both signed conflicting blocks",
                "double_signers": sorted({"0x" + c.hex() for c in self.first[2].committers}
                                         & {"0x" + c.hex() for c in self.second[2].committers}),
                "blocks": [side(self.first), side(self.second)]}


class RecordWalk(Protocol):
    """The ledger record walk (``observer.records.LedgerWalk``), fed the blocks in order once
    their seals verify; it hands back jobs of records to check in parallel, whose results come
    back to it in order."""

    def blocks_verified(self, headers: Sequence[BlockHeader], sealed: Sequence[Sealed]
                        ) -> Iterator[RecordJob | Failure]: ...

    def job_done(self, job: RecordJob, result: RecordResult) -> Failure | None: ...

    def state(self) -> dict[str, Any]: ...

    def resume(self, state: dict[str, Any]) -> None: ...

    def skip(self, headers: Sequence[BlockHeader], sealed: Sequence[Sealed]) -> Failure | None: ...

    @property
    def records(self) -> int: ...


class BlockReplay(Protocol):
    """Re-execution of the blocks (``observer.replay.Replay``), fed every block in order once
    its seals verify, from block 1."""

    def blocks_verified(self, headers: Sequence[BlockHeader], sealed: Sequence[Sealed]
                        ) -> Failure | None: ...

    def summary(self) -> dict[str, Any]: ...


@dataclass
class Report:
    genesis_hash: bytes
    chain_id: int
    sources: list[str]
    first: int = 0
    last: int = -1
    blocks: int = 0
    seals: int = 0
    records: int = 0
    resumed_from: tuple[int, str] | None = None
    """(block, when) of the checkpoint this run went on from."""
    unsealed_prefix: tuple[int, int] | None = None
    """Blocks linked and tallied for --from, without their seals being checked."""
    replay: dict[str, Any] | None = None
    """What ``--replay`` executed (blocks, transactions, gas, seconds, state root); None without."""
    failure: Failure | None = None
    evidence: list[Evidence] = field(default_factory=list)
    activity: dict[bytes, list[int]] = field(default_factory=dict)
    set_changes: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    head_hash: bytes = b""

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.evidence

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "genesis": "0x" + self.genesis_hash.hex(), "chainId": self.chain_id,
            "nodes": self.sources, "from": self.first, "to": self.last,
            "blocksVerified": self.blocks, "sealsVerified": self.seals,
            "recordsVerified": self.records,
            "replay": self.replay,
            "resumedFrom": None if self.resumed_from is None else
            {"block": self.resumed_from[0], "verifiedAt": self.resumed_from[1]},
            "unsealedPrefix": None if self.unsealed_prefix is None else list(self.unsealed_prefix),
            "headHash": "0x" + self.head_hash.hex() if self.head_hash else None,
            "failure": None if self.failure is None else self.failure.to_json(),
            "equivocations": [e.to_json() for e in self.evidence],
            "validatorSetChanges": self.set_changes,
            "activity": {"0x" + a.hex(): {"proposed": v[0], "sealed": v[1]}
                         for a, v in sorted(self.activity.items())},
            "seconds": round(self.seconds, 3),
        }


Progress = Callable[[int, int, Report], None]
"""Called with (blocks done, blocks in this run, the report so far)."""


def _noop(done: int, total: int, report: Report) -> None:
    pass


class _InlineExecutor(Executor):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def _warm(_: int) -> int:
    return os.getpid()


class _Prefetch:
    """Fetches ranges from every node in a thread, a few ranges ahead of the verifier."""

    def __init__(self, sources: Sequence[ChainSource], ranges: list[tuple[int, int]],
                 depth: int = 4) -> None:
        self._sources = sources
        self._ranges = ranges
        self._queue: queue.Queue[Any] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for start, end in self._ranges:
                if self._stop.is_set():
                    return
                numbers = list(range(start, end + 1))
                fetched = [s.blocks(numbers) for s in self._sources]
                self._queue.put((start, fetched))
            self._queue.put(None)
        except BaseException as exc:
            self._queue.put(exc)

    def __iter__(self) -> Iterator[tuple[int, list[list[RpcBlock | None]]]]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)


class Verifier:
    """Verifies a chain from its genesis, or from this installation's checkpoint, onward.

    ``advance`` may be called again (``watch`` does): it goes on from where it stopped.
    """

    def __init__(self, genesis: Genesis, sources: Sequence[ChainSource], *,
                 store: CheckpointStore | None = None, jobs: int | None = None,
                 chunk: int = 200, progress: Progress = _noop,
                 records: RecordWalk | None = None, replay: BlockReplay | None = None,
                 checkpoint_every: float = 5.0) -> None:
        if not sources:
            raise ValueError("at least one node to read from is needed")
        self.genesis = genesis
        self.sources = list(sources)
        self.store = store
        self.jobs = jobs if jobs is not None else (os.cpu_count() or 1)
        self.chunk = chunk
        self.progress = progress
        self.records = records
        self.replay = replay
        self.checkpoint_every = checkpoint_every
        self.report = Report(genesis.hash, genesis.chain_id, [s.name for s in sources])
        self._tracker: ChainTracker | None = None
        self._state: TrackerState | None = None
        self._compared: dict[str, bool] = {s.name: True for s in self.sources[1:]}
        self._executor: Executor | None = None
        self._records_pending: deque[tuple[RecordJob, Future[RecordResult]]] = deque()
        self._current: Executor = _InlineExecutor()

    # --- start ----------------------------------------------------------------------------

    def _begin(self, from_block: int | None) -> int:
        """Set up the tracker; the first block to verify with its seals."""
        primary = self.sources[0]
        for source in self.sources:
            chain_id = source.chain_id()
            if chain_id != self.genesis.chain_id:
                raise _Stop(Failure(0, "chain-id", f"{source.name} serves chain id {chain_id}, the "
                                    f"genesis file says {self.genesis.chain_id}", source=source.name))
        checkpoint = self.store.load(self.genesis.hash) if self.store is not None else None
        if self.replay is not None:
            checkpoint = None  # execution needs every block's state from the genesis on
        if (checkpoint is not None and self.records is not None and (
                checkpoint.ledger is None
                or checkpoint.ledger.get("ledger") != self.records.state().get("ledger"))):
            checkpoint = None  # it did not walk this ledger: walk it from the genesis
        if checkpoint is not None and (from_block is None or from_block > checkpoint.block):
            [raw] = primary.blocks([checkpoint.block])
            try:
                header, _, _ = parse_block(checkpoint.block, raw)
                served = block_hash(header)
            except (BlockFault, HeaderError) as exc:
                raise _Stop(Failure(checkpoint.block, "history",
                                    f"the node no longer serves a valid block at verified height "
                                    f"{checkpoint.block}: {exc}", source=primary.name)) from None
            if served != checkpoint.hash:
                raise _Stop(Failure(
                    checkpoint.block, "history",
                    f"the node serves block 0x{served.hex()} at height {checkpoint.block}, but "
                    f"0x{checkpoint.hash.hex()} was verified there on {checkpoint.verified_at}: the "
                    "node rewrote verified history or follows another chain", source=primary.name))
            self._state = TrackerState(checkpoint.header, checkpoint.hash, checkpoint.history)
            self._tracker = ChainTracker.resume(self.genesis, self._state, checkpoint.vote_blocks)
            self.report.resumed_from = (checkpoint.block, checkpoint.verified_at)
            self.report.activity = {bytes.fromhex(a[2:]): list(v)
                                    for a, v in checkpoint.activity.items()}
            if self.records is not None and checkpoint.ledger is not None:
                self._resume_records(checkpoint.ledger)
            self.report.head_hash = checkpoint.hash
            return checkpoint.block + 1
        [raw] = primary.blocks([0])
        self._tracker = ChainTracker.start(self.genesis)
        failure = self._tracker.check_genesis(raw)
        if failure is not None:
            raise _Stop(Failure(failure.block, failure.check, failure.message, source=primary.name))
        self._state = TrackerState(self._tracker.last, self.genesis.hash,
                                   self._tracker.history.to_json())
        self.report.head_hash = self.genesis.hash
        return 1

    def _resume_records(self, state: dict[str, Any]) -> None:
        if self.records is not None:
            self.records.resume(state)

    # --- the run --------------------------------------------------------------------------

    def advance(self, to_block: int | None = None, from_block: int | None = None) -> Report:
        """Verify up to ``to_block`` (the node's head if None). Stops at the first failure."""
        started = time.perf_counter()
        report = self.report
        try:
            if self._tracker is None:
                if from_block is not None and self.replay is not None:
                    raise ValueError("--replay executes every block from the genesis; it cannot "
                                     "start at --from")
                start = self._begin(from_block)
                if from_block is not None and from_block > start:
                    self._unsealed(start, from_block - 1)
                    start = from_block
            else:
                start = self._tracker.history.head + 1
            head = self.sources[0].head()
            end = head if to_block is None else to_block
            if end > head:
                raise SourceError(f"{self.sources[0].name} has blocks up to {head}, not up to {end}")
            if report.blocks == 0:
                report.first = start
            if end >= start:
                self._run(start, end, seals=True)
        except _Stop as stop:
            report.failure = stop.failure
        finally:
            report.seconds += time.perf_counter() - started
        return report

    def _unsealed(self, start: int, end: int) -> None:
        """--from N without a checkpoint before N: link and tally blocks start..end, no seals."""
        self.report.unsealed_prefix = (start, end)
        self._run(start, end, seals=False)

    def _pool(self) -> Executor:
        if self._executor is None:
            if self.jobs <= 1:
                self._executor = _InlineExecutor()
            else:
                pool = ProcessPoolExecutor(self.jobs)
                # Start the workers now, before the fetch thread exists (they are forked).
                list(pool.map(_warm, range(self.jobs)))
                self._executor = pool
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None
        for source in self.sources:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def _run(self, start: int, end: int, *, seals: bool) -> None:
        assert self._tracker is not None
        tracker = self._tracker
        # A short run of blocks is not worth the workers, unless records come with it.
        parallel = seals and (end - start + 1 > 2 * self.chunk or self.records is not None)
        executor = self._pool() if parallel else _InlineExecutor()
        self._current = executor
        ranges = [(s, min(s + self.chunk - 1, end)) for s in range(start, end + 1, self.chunk)]
        total = end - start + 1
        done = 0
        fetch = _Prefetch(self.sources if seals else self.sources[:1], ranges)
        pending: deque[tuple[Job, dict[str, Any], list[list[RpcBlock | None]], Future[JobResult]]] = deque()
        inflight = max(2, 2 * self.jobs)
        last_save = time.monotonic()
        parse_failure: Failure | None = None
        try:
            for first, fetched in fetch:
                job, parse_failure, history = tracker.prepare(first, fetched[0])
                if job is not None:
                    if not seals:
                        job = Job(job.parent, job.parent_hash, job.headers, job.claimed,
                                  job.set_index, job.sets, job.period, seals=False)
                    pending.append((job, history, fetched[1:], executor.submit(verify_job, job)))
                while pending and (len(pending) >= inflight or parse_failure is not None):
                    done += self._take(pending.popleft(), seals)
                    self.progress(done, total, self.report)
                if parse_failure is not None:
                    break
                self._drain_records(block=False)
                if seals and time.monotonic() - last_save > self.checkpoint_every:
                    self._drain_records(block=True)
                    self._save()
                    last_save = time.monotonic()
            while pending:
                done += self._take(pending.popleft(), seals)
                self.progress(done, total, self.report)
            self._drain_records(block=True)
        finally:
            fetch.close()
            for *_, future in pending:
                future.cancel()
            for _, record_future in self._records_pending:
                record_future.cancel()
            self._records_pending.clear()
        if parse_failure is not None:
            raise _Stop(Failure(parse_failure.block, parse_failure.check, parse_failure.message,
                                source=self.sources[0].name))
        if seals:
            self._save()

    def _take(self, item: tuple[Job, dict[str, Any], list[list[RpcBlock | None]],
                                Future[JobResult]], seals: bool) -> int:
        job, history, others, future = item
        result = future.result()
        report = self.report
        sealed = result.sealed
        if sealed:
            verified = len(sealed)
            self._state = TrackerState(job.headers[verified - 1], sealed[-1].hash,
                                       history if result.failure is None else {})
            report.head_hash = sealed[-1].hash
            report.last = sealed[-1].number
            if seals:
                report.blocks += verified
                for s in sealed:
                    report.seals += len(s.committers)
                    report.activity.setdefault(s.coinbase, [0, 0])[0] += 1
                    for c in s.committers:
                        report.activity.setdefault(c, [0, 0])[1] += 1
        if not seals and self.records is not None and sealed:
            failure = self.records.skip(job.headers[:len(sealed)], sealed)
            if failure is not None:
                raise _Stop(failure)
        replayed: Failure | None = None
        if seals and self.replay is not None and sealed:
            replayed = self.replay.blocks_verified(job.headers[:len(sealed)], sealed)
            report.replay = self.replay.summary()
            if replayed is not None:  # the records of the blocks before it are still walked
                sealed = sealed[:max(0, replayed.block - sealed[0].number)]
        if seals and self.records is not None and sealed:
            for got in self.records.blocks_verified(job.headers[:len(sealed)], sealed):
                if isinstance(got, Failure):
                    self._drain_records(block=True)  # an earlier record may have failed first
                    raise _Stop(got)
                self._records_pending.append((got, self._current.submit(check_records, got)))
                # Take what is done, and wait once 4 jobs a worker are queued: the records in
                # flight stay bounded however many a chunk of blocks holds.
                self._drain_records(block=False)
        if replayed is not None:
            self._drain_records(block=True)
            raise _Stop(replayed)
        if result.failure is not None:
            self._drain_records(block=True)
            raise _Stop(Failure(result.failure.block, result.failure.check, result.failure.message,
                                source=self.sources[0].name))
        if seals:
            for source, raws in zip(self.sources[1:], others, strict=True):
                self._compare(source, job, raws, sealed)
        return len(sealed)

    def _drain_records(self, *, block: bool) -> None:
        """Take record results in order: all of them, or those already done."""
        walk = self.records
        if walk is None:
            return
        limit = 0 if block else 4 * max(self.jobs, 1)
        while self._records_pending and (len(self._records_pending) > limit
                                         or self._records_pending[0][1].done()):
            record_job, future = self._records_pending.popleft()
            failure = walk.job_done(record_job, future.result())
            self.report.records = walk.records
            if failure is not None:
                raise _Stop(failure)

    def _compare(self, source: ChainSource, job: Job, raws: list[RpcBlock | None],
                 sealed: Sequence[Sealed]) -> None:
        """Hashes only: equal hashes with other seal sets are the same block, as QBFT allows."""
        if not self._compared.get(source.name):
            return
        for i, (raw, ours) in enumerate(zip(raws, sealed, strict=False)):
            n = ours.number
            if raw is None:
                self._compared[source.name] = False  # behind the first node: compare no further
                return
            try:
                header, _, _ = parse_block(n, raw)
                theirs = block_hash(header)
            except (BlockFault, HeaderError, ValueError) as exc:
                raise _Stop(Failure(n, "fork", f"{source.name} serves a malformed block here: {exc}",
                                    source=source.name)) from None
            if theirs == ours.hash:
                continue
            self._compared[source.name] = False
            parent = job.parent if i == 0 else job.headers[i - 1]
            parent_hash = job.parent_hash if i == 0 and job.parent_hash else block_hash(parent)
            try:
                other = verify_header(header, parent, job.sets[job.set_index[i]],
                                      block_period_seconds=job.period, parent_hash=parent_hash)
            except HeaderError as exc:
                raise _Stop(Failure(
                    n, "fork",
                    f"{source.name} serves another block here, 0x{theirs.hex()}, which is not "
                    f"validly sealed on this chain ({exc}); the first node's block 0x{ours.hash.hex()} "
                    "verifies: that node is faulty or lies", source=source.name)) from None
            primary = self.sources[0]
            [primary_raw] = primary.blocks([n])
            assert primary_raw is not None
            self.report.evidence.append(Evidence(
                n, (primary.name, primary_raw, ours),
                (source.name, raw, Sealed(n, other.hash, header.coinbase, other.extra.round,
                                          other.committers))))
            return

    def _save(self) -> None:
        if (self.store is None or self._state is None or not self._state.history
                or self.report.unsealed_prefix is not None):
            return  # a checkpoint says "verified": never after blocks taken on trust
        state = self._state
        tracker = self._tracker
        assert tracker is not None
        self.store.save(Checkpoint(
            genesis_hash=self.genesis.hash, chain_id=self.genesis.chain_id,
            block=state.header.number, hash=state.hash, header=state.header,
            history=state.history,
            vote_blocks=[b for b in tracker.vote_blocks if b <= state.header.number],
            ledger=self.records.state() if self.records is not None else None,
            activity={"0x" + a.hex(): v for a, v in self.report.activity.items()},
            verified_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ))

    def set_changes(self) -> list[dict[str, Any]]:
        if self._tracker is None:
            return []
        return [{"block": c.block, "validators": ["0x" + v.hex() for v in c.validators],
                 "added": ["0x" + v.hex() for v in c.added],
                 "removed": ["0x" + v.hex() for v in c.removed]}
                for c in self._tracker.history.changes]


class _Stop(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(str(failure))
        self.failure = failure
