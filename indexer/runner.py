"""``Indexer``: follows the chains and the event bus and keeps PostgreSQL and ClickHouse in step.

Per chain, a pipeline: block ranges are fetched concurrently (headers and logs), taken in
order, checked and decoded by the ``Projector``, and handed to one writer. The writer commits
each batch to PostgreSQL together with its checkpoint, then inserts the same rows into
ClickHouse and moves ClickHouse's own checkpoint. On start, ClickHouse is brought level with
PostgreSQL from PostgreSQL's rows, so a crash between the two commits loses nothing.

PostgreSQL restarts and unreachable nodes are waited out (with backoff, reported in the status);
a fork on a final chain, a ledger that does not verify, or a second writer stop the indexer
with the reason, and nothing of the offending batch is written.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from indexer import pg
from indexer.abc import (
    AnalyticsStore,
    BlockRef,
    BusCursor,
    ForkError,
    IndexerError,
    RangeTooLarge,
    SourceError,
)
from indexer.analytics import AnalyticsError
from indexer.outbox import DEFAULT_CHANNEL, DEFAULT_TABLE, PgOutbox, event_rows
from indexer.pg import CONNECTION_ERRORS, Checkpoint, PgWriter
from indexer.project import (
    GC_THRESHOLDS,
    Batch,
    Decoded,
    Projector,
    Segment,
    SourceSpec,
    split,
    start_verifier,
    verify_ledger,
    weigh,
)
from indexer.rpc import JsonRpcSource
from indexer.tables import ANALYTICS_TABLES

log = logging.getLogger("smartta.indexer")

FAILPOINT_ENV = "SMARTTA_INDEXER_FAILPOINT"
"""``name[:n]``: SIGKILL this process the n-th time (default 1st) it passes failpoint ``name``
(``pg-copied``, ``pg-committed``, ``ch-partial``). For the crash tests only."""


class _Failpoints:
    def __init__(self, spec: str | None) -> None:
        self.name, self.count = None, 0
        if spec:
            name, _, n = spec.partition(":")
            self.name, self.count = name, int(n or 1)

    def hit(self, name: str) -> None:
        if name == self.name:
            self.count -= 1
            if self.count <= 0:
                os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class ChainConfig:
    url: str
    ws_url: str | None = None
    ledger: bytes | None = None
    tokens: tuple[bytes, ...] = ()
    claims: bool = False
    confirmations: int = 0
    """0 for a final chain (QBFT): any fork stops the indexer. N > 0: index only blocks N deep
    and roll back reorgs deeper than that."""
    from_block: int = 0
    chain_id: int | None = None
    """If set, the node must report this chain id."""


@dataclass(frozen=True, slots=True)
class BusConfig:
    dsn: str
    table: str = DEFAULT_TABLE
    channel: str = DEFAULT_CHANNEL
    name: str = "outbox"

    @property
    def source(self) -> str:
        return f"bus:{self.name}"


@dataclass(frozen=True, slots=True)
class IndexerConfig:
    pg_dsn: str
    chains: tuple[ChainConfig, ...]
    schema: str = pg.DEFAULT_SCHEMA
    bus: BusConfig | None = None
    batch_events: int = 20_000
    """Write a batch once it holds this many events (or ``batch_blocks`` blocks)."""
    batch_blocks: int = 20_000
    max_range: int = 2_000
    """Most blocks per eth_getLogs call (the node may ask for fewer)."""
    concurrency: int = 4
    """Block ranges fetched at once per chain."""
    poll_interval: float = 1.0
    workers: int = 0
    """Processes that verify ledger records while the writer writes (0: verify in-process)."""
    bulk: bool = True
    """A fresh index backfills with its secondary indexes dropped, and builds them when every
    chain reaches its head (``indexer.pg.DEFERRABLE_INDEXES``)."""


@dataclass
class Status:
    source: str
    url: str = ""
    head: int = -1
    indexed: int = -1
    events: int = 0
    rows: int = 0
    started: float = field(default_factory=time.monotonic)
    state: str = "starting"
    seconds: dict[str, float] = field(default_factory=dict)
    """Time spent per stage (wait, decode, project, pg, clickhouse), for tuning."""

    def spent(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - since
        return now

    @property
    def lag(self) -> int:
        return max(0, self.head - self.indexed) if self.head >= 0 else 0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.events / elapsed if elapsed > 0 else 0.0


Progress = Callable[[Status], None]
TRANSIENT: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, SourceError)


class RangePlanner:
    """Hands out consecutive block ranges, growing them while answers stay small and shrinking
    them when the node refuses (pure: no I/O)."""

    def __init__(self, first: int, last: int, *, step: int, max_step: int,
                 target_events: int = 5_000) -> None:
        self.next_block = first
        self.last = last
        self.step = max(1, min(step, max_step))
        self.max_step = max_step
        self.target_events = target_events

    def more(self) -> bool:
        return self.next_block <= self.last

    def take(self) -> tuple[int, int]:
        lo = self.next_block
        hi = min(self.last, lo + self.step - 1)
        self.next_block = hi + 1
        return lo, hi

    def answered(self, blocks: int, events: int) -> None:
        if events < self.target_events // 2 and blocks >= self.step:
            self.step = min(self.max_step, self.step * 2)
        elif events > self.target_events * 2:
            self.step = max(1, self.step // 2)

    def refused(self, blocks: int) -> None:
        self.step = max(1, min(self.step, blocks) // 2)


class Indexer:
    def __init__(self, config: IndexerConfig, analytics: AnalyticsStore, *,
                 progress: Progress | None = None) -> None:
        self.config = config
        self.analytics = analytics
        self.progress = progress or (lambda status: None)
        self.status: dict[str, Status] = {}
        self._lock = asyncio.Lock()
        self._failpoints = _Failpoints(os.environ.get(FAILPOINT_ENV))
        self._pool: ProcessPoolExecutor | None = None
        self._stopping = asyncio.Event()
        self._deferred = False
        self._caught_up: set[str] = set()
        self._claimed: dict[str, ChainConfig] = {}

    def stop(self) -> None:
        """Finish the batches in hand, then return from ``run`` (a signal handler calls it)."""
        self._stopping.set()

    async def _until_stopped(self, waiting: Awaitable[Any]) -> None:
        """Await ``waiting`` unless ``stop`` comes first."""
        task = asyncio.ensure_future(waiting)
        stop = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, stop):
                if not t.done():
                    t.cancel()
            await asyncio.gather(task, stop, return_exceptions=True)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    # ---- supervision ------------------------------------------------------------------------

    async def run(self, *, follow: bool = True,
                  targets: dict[str, tuple[int, int]] | None = None) -> None:
        """Index until stopped (``follow``) or until every source reaches the head (or its
        ``targets`` position). Transient failures are retried forever, with backoff."""
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            await self._run(follow, targets)
        finally:
            gc.set_threshold(*thresholds)

    async def _run(self, follow: bool, targets: dict[str, tuple[int, int]] | None) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await self._run_once(follow, targets)
                return
            except TRANSIENT as exc:
                reason = ("PostgreSQL unavailable" if isinstance(exc, CONNECTION_ERRORS)
                          else "node unavailable")
                self._all_states(f"{reason}: {exc}; retrying in {delay:.0f}s")
                log.warning("%s: %s; retrying in %.0fs", reason, exc, delay)
                await self._until_stopped(asyncio.sleep(delay))
                delay = min(delay * 2, 30.0)

    def _all_states(self, state: str) -> None:
        for status in self.status.values():
            status.state = state
            self.progress(status)

    async def _run_once(self, follow: bool, targets: dict[str, tuple[int, int]] | None) -> None:
        writer = await PgWriter.open(self.config.pg_dsn, self.config.schema)
        readers = await asyncpg.create_pool(self.config.pg_dsn, min_size=1, max_size=3)
        if self.config.workers > 0 and self._pool is None:
            # spawn, not fork: the parent runs threads (chdb, asyncio) that fork would copy.
            self._pool = ProcessPoolExecutor(self.config.workers,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=start_verifier)
            # Workers spawn on demand and take ~0.7 s to import what they need: start them now,
            # while the stores are opened, not when the first batch is waiting for them.
            for _ in range(self.config.workers):
                self._pool.submit(int)
        try:
            await asyncio.to_thread(self.analytics.migrate)
            await self._catch_up_analytics(writer, readers)
            await self._maybe_defer_indexes(writer)
            jobs = [self._follow_chain(c, writer, readers, follow, targets)
                    for c in self.config.chains]
            if self.config.bus is not None:
                jobs.append(self._follow_bus(self.config.bus, writer, follow, targets))
            tasks = [asyncio.create_task(j) for j in jobs]
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await readers.close()
            await writer.close()
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None

    # ---- bulk backfill ------------------------------------------------------------------------

    async def _maybe_defer_indexes(self, writer: PgWriter) -> None:
        self._caught_up = set()
        self._claimed = {}
        async with self._lock:
            fresh = not await writer.conn.fetchval(
                f"SELECT exists(SELECT 1 FROM {writer.schema}.checkpoints)")
            if fresh and self.config.bulk and self.config.chains:
                dropped = await pg.defer_indexes(writer.conn, writer.schema)
                log.info("fresh index: %d secondary indexes deferred to the end of the "
                         "backfill", dropped)
            deferred = await pg.deferred_indexes(writer.conn, writer.schema)
            self._deferred = bool(deferred)
            writer.balances_deferred = pg.BALANCES in deferred
            if writer.balances_deferred and not fresh:
                # A bulk backfill stopped before its end: its balances are behind, and the
                # projector is about to read them.
                started = time.perf_counter()
                await writer.conn.execute(pg.rebuild_balances_sql(writer.schema))
                log.info("resuming a bulk backfill: current balances computed again in %.1fs",
                         time.perf_counter() - started)
        if self._deferred and not self.config.chains:
            await self._restore_indexes(writer)

    async def _chain_caught_up(self, source: str, writer: PgWriter) -> None:
        self._caught_up.add(source)
        if self._deferred and len(self._caught_up) >= len(self.config.chains):
            await self._restore_indexes(writer)

    async def _restore_indexes(self, writer: PgWriter) -> None:
        for status in self.status.values():
            status.state = "building indexes"
            self.progress(status)
        async with self._lock:
            started = time.perf_counter()
            helper = await pg.connect(self.config.pg_dsn)
            try:
                built = await pg.restore_indexes([writer.conn, helper], writer.schema)
            finally:
                await helper.close()
            self._deferred = False
            writer.balances_deferred = False
        log.info("built %d deferred indexes in %.1fs", built, time.perf_counter() - started)
        for status in self.status.values():
            status.seconds["indexes"] = status.seconds.get("indexes", 0.0) + \
                time.perf_counter() - started

    # ---- ClickHouse catch-up ------------------------------------------------------------------

    async def _catch_up_analytics(self, writer: PgWriter, readers: asyncpg.Pool) -> None:
        sources = await writer.conn.fetch(
            f"SELECT source, chain_id FROM {writer.schema}.checkpoints ORDER BY source")
        for row in sources:
            source, chain_id = row["source"], row["chain_id"]
            cp = await writer.checkpoint(source)
            target = cp.bus if source.startswith("bus:") else (cp.height, 0)
            have = await asyncio.to_thread(self.analytics.position, source)
            if have == target:
                continue
            base = have if have is not None else ((0, 0) if source.startswith("bus:")
                                                  else (-1, 0))
            # Rows past ClickHouse's checkpoint are what a crashed insert left: remove them,
            # then copy what PostgreSQL committed since.
            await asyncio.to_thread(self.analytics.delete_after, source, chain_id, base)
            if base < target:
                log.info("ClickHouse %s at %s, PostgreSQL at %s: copying", source, base, target)
                async with readers.acquire() as conn:
                    for table in ANALYTICS_TABLES:
                        if table.bus != source.startswith("bus:"):
                            continue
                        async for chunk in pg.table_rows(conn, writer.schema, table,
                                                         chain_id=chain_id, after=base,
                                                         upto=target):
                            await asyncio.to_thread(self.analytics.insert, source,
                                                    {table.name: chunk}, None)
            await asyncio.to_thread(self.analytics.set_position, source, target)

    # ---- chains -------------------------------------------------------------------------------

    async def _follow_chain(self, chain: ChainConfig, writer: PgWriter, readers: asyncpg.Pool,
                            follow: bool, targets: dict[str, tuple[int, int]] | None) -> None:
        source = JsonRpcSource(chain.url, ws_url=chain.ws_url, concurrency=self.config.concurrency,
                               poll_interval=self.config.poll_interval)
        try:
            chain_id = await source.chain_id()
            if chain.chain_id is not None and chain.chain_id != chain_id:
                raise IndexerError(f"{chain.url} is chain {chain_id}, not {chain.chain_id} as "
                                   "configured; check the URL")
            spec = SourceSpec(chain_id, chain.ledger, chain.tokens, chain.claims)
            if self._claimed.get(spec.name, chain) is not chain:
                raise IndexerError(f"two configured sources are chain {chain_id}; index its "
                                   "ledger and its tokens as one source (--token without "
                                   "--token-rpc)")
            self._claimed[spec.name] = chain
            status = self.status.setdefault(spec.name, Status(spec.name, chain.url))
            status.url = chain.url
            async with self._lock:
                cp = await writer.checkpoint(spec.name)
            status.indexed = cp.height
            cp = await self._check_checkpoint(source, chain, spec, cp, writer, follow)
            projector = self._projector(spec, cp, source.url)
            target_pos = None if targets is None else targets.get(spec.name)
            while not self._stopping.is_set():
                head = await source.head()
                status.head = head
                target = head - chain.confirmations
                if target_pos is not None:
                    target = min(target, target_pos[0])
                if cp.height >= target:
                    await self._chain_caught_up(spec.name, writer)
                    if target_pos is not None and cp.height >= target_pos[0]:
                        status.state = "done"
                        self.progress(status)
                        return
                    if not follow:
                        status.state = "at head"
                        self.progress(status)
                        return
                    status.state = "following"
                    self.progress(status)
                    await self._until_stopped(
                        source.wait_for_head(cp.height + chain.confirmations, timeout=10.0))
                    continue
                status.state = "backfill" if target - cp.height > 100 else "following"
                try:
                    cp = await self._index(source, spec, projector, cp, target, writer, readers,
                                           status)
                except ForkError:
                    if chain.confirmations == 0:
                        status.state = "stopped: fork"
                        self.progress(status)
                        raise
                    cp = await self._rollback(source, chain, spec, cp, writer)
                    projector = self._projector(spec, cp, source.url)
        finally:
            await source.close()

    def _projector(self, spec: SourceSpec, cp: Checkpoint, url: str) -> Projector:
        head = (cp.ledger_seq, cp.ledger_head) if cp.ledger_head is not None else None
        return Projector(spec, ledger_head=head, url=url)

    async def _check_checkpoint(self, source: JsonRpcSource, chain: ChainConfig,
                                spec: SourceSpec, cp: Checkpoint, writer: PgWriter,
                                follow: bool) -> Checkpoint:
        """The node must hold the indexed block at the indexed height."""
        if cp.block is None:
            return cp
        status = self.status[spec.name]
        while True:
            head = await source.head()
            status.head = head
            if head >= cp.height:
                break
            status.state = (f"waiting: {source.url} is at block {head}, behind the indexed "
                            f"{cp.height} (syncing? another chain?)")
            self.progress(status)
            if not follow:
                raise IndexerError(status.state.removeprefix("waiting: "))
            await source.wait_for_head(cp.height - 1, timeout=10.0)
        (served,) = await source.blocks(cp.height, cp.height)
        if served.hash == cp.block.hash:
            return cp
        message = (f"{source.url} serves block {cp.height} as 0x{served.hash.hex()}, but the "
                   f"indexer holds 0x{cp.block.hash.hex()} at that height: a different chain or "
                   "a lying node. Nothing was written; point the indexer at a node of the "
                   "indexed chain (or rebuild for a new one)")
        if chain.confirmations == 0:
            status.state = "stopped: fork"
            self.progress(status)
            raise ForkError(message, height=cp.height)
        return await self._rollback(source, chain, spec, cp, writer)

    async def _rollback(self, source: JsonRpcSource, chain: ChainConfig, spec: SourceSpec,
                        cp: Checkpoint, writer: PgWriter) -> Checkpoint:
        """Find the last block the node and the index agree on and undo everything above it."""
        height = cp.height
        lowest = max(chain.from_block - 1, cp.height - 10_000)
        while height > lowest:
            lo = max(lowest + 1, height - 99)
            served = await source.blocks(lo, height)
            for block in reversed(served):
                async with self._lock:
                    stored = await writer.stored_block(spec.chain_id, block.number)
                if stored == block.hash:
                    height = block.number
                    break
            else:
                height = lo - 1
                continue
            break
        if height <= lowest and height >= chain.from_block:
            raise IndexerError(f"reorg on {source.url} deeper than {cp.height - lowest} blocks; "
                               "rebuild the index")
        log.warning("reorg on %s: rolling back from %d to %d", source.url, cp.height, height)
        async with self._lock:
            cp = await writer.rollback(spec.chain_id, height, cp)
            await asyncio.to_thread(self.analytics.delete_after, spec.name, spec.chain_id,
                                    (height, 0))
            await asyncio.to_thread(self.analytics.set_position, spec.name, (height, 0))
        status = self.status[spec.name]
        status.indexed = cp.height
        status.state = f"rolled back to {height} (reorg)"
        self.progress(status)
        return cp

    async def _fetch(self, source: JsonRpcSource, spec: SourceSpec, planner: RangePlanner,
                     lo: int, hi: int) -> Segment:
        filters = spec.filters()
        try:
            blocks, logs = await asyncio.gather(source.blocks(lo, hi),
                                                source.logs(lo, hi, filters))
        except RangeTooLarge:
            if lo == hi:
                raise
            planner.refused(hi - lo + 1)
            mid = (lo + hi) // 2
            first = await self._fetch(source, spec, planner, lo, mid)
            second = await self._fetch(source, spec, planner, mid + 1, hi)
            return Segment([*first.blocks, *second.blocks], [*first.logs, *second.logs],
                           first.weight + second.weight)
        segment = Segment(blocks, logs, weigh(logs))
        planner.answered(hi - lo + 1, segment.weight)
        return segment

    async def _index(self, source: JsonRpcSource, spec: SourceSpec, projector: Projector,
                     cp: Checkpoint, target: int, writer: PgWriter, readers: asyncpg.Pool,
                     status: Status) -> Checkpoint:
        """Index blocks ``cp.height + 1`` .. ``target``; returns the new checkpoint."""
        first = max(cp.height + 1, 0) if cp.block is not None else self._start(spec)
        planner = RangePlanner(first, target, step=min(100, self.config.max_range),
                               max_step=self.config.max_range)
        inflight: collections.deque[asyncio.Task[Segment]] = collections.deque()
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=2)
        state = {"cp": cp}
        writer_task = asyncio.create_task(self._write_loop(queue, writer, state, status))
        last: BlockRef | None = cp.block
        pending: list[Segment] = []
        pending_events = pending_blocks = 0
        fork: ForkError | None = None
        try:
            while (planner.more() or inflight) and not self._stopping.is_set():
                while planner.more() and len(inflight) < self.config.concurrency:
                    lo, hi = planner.take()
                    inflight.append(asyncio.create_task(self._fetch(source, spec, planner, lo, hi)))
                waited = time.perf_counter()
                segment = await inflight.popleft()
                status.spent("wait", waited)
                pending.append(segment)
                pending_events += segment.weight
                pending_blocks += len(segment.blocks)
                if (pending_events < self.config.batch_events
                        and pending_blocks < self.config.batch_blocks
                        and (planner.more() or inflight)):
                    continue
                merged = Segment([b for s in pending for b in s.blocks],
                                 [lg for s in pending for lg in s.logs], pending_events)
                pending, pending_events, pending_blocks = [], 0, 0
                # A node's range can hold far more than a batch (a thousand records a log):
                # cut it, so that the workers verify one part while the writer writes the last.
                for part in split(merged, self.config.batch_events):
                    try:
                        batch = await self._project(projector, last, part, readers, status)
                    except ForkError as exc:
                        fork = exc
                        break
                    if batch.last is not None:
                        last = batch.last
                    await self._put(queue, batch, writer_task)
                    if self._stopping.is_set():
                        break
                if fork is not None:
                    break
        finally:
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
            if not writer_task.done():
                await queue.put(None)
            await writer_task  # re-raises a write failure
        if fork is not None:
            raise fork
        if queue.empty() and len(projector.balances) > 2_000_000:
            if writer.balances_deferred:  # the projector will read the table from now on
                async with self._lock:
                    await writer.conn.execute(pg.rebuild_balances_sql(writer.schema))
            projector.forget()
        return state["cp"]

    def _start(self, spec: SourceSpec) -> int:
        for c in self.config.chains:
            if c.ledger == spec.ledger and c.tokens == spec.tokens:
                return c.from_block
        return 0

    async def _project(self, projector: Projector, last: BlockRef | None, segment: Segment,
                       readers: asyncpg.Pool, status: Status) -> Batch:
        t = time.perf_counter()
        decoded: Decoded = projector.decode(last, segment)
        work = projector.work(decoded, max(1, self.config.workers))
        if self._pool is None or sum(len(e) for _, e in work) < 4:
            chunks = [verify_ledger(projector.spec.chain_id, projector.spec.ledger or b"", start,
                                    entries, projector.url) for start, entries in work]
        else:
            loop = asyncio.get_running_loop()
            chunks = list(await asyncio.gather(*(
                loop.run_in_executor(self._pool, verify_ledger, projector.spec.chain_id,
                                     projector.spec.ledger or b"", start, entries, projector.url)
                for start, entries in work)))
        projector.attach(decoded, chunks)
        t = status.spent("decode", t)
        keys, refs = projector.needs(decoded)
        while keys or refs:
            async with readers.acquire() as conn:
                balances, found = await pg.PgWriter(conn, self.config.schema).load(keys, refs)
            projector.load(keys, balances, refs, found)
            if not refs:
                break  # every reference was known: nothing new to ask
            keys, refs = projector.needs(decoded)
        t = status.spent("load", t)
        batch = projector.project(decoded)
        status.spent("project", t)
        return batch

    @staticmethod
    async def _put(queue: asyncio.Queue[Batch | None], batch: Batch,
                   writer_task: asyncio.Task[None]) -> None:
        put = asyncio.create_task(queue.put(batch))
        done, _ = await asyncio.wait({put, writer_task}, return_when=asyncio.FIRST_COMPLETED)
        if put not in done:
            put.cancel()
            await writer_task  # raises the writer's failure
            raise IndexerError("the writer stopped")

    async def _write_loop(self, queue: asyncio.Queue[Batch | None], writer: PgWriter,
                          state: dict[str, Checkpoint], status: Status) -> None:
        """PostgreSQL takes batch k+1 while ClickHouse takes batch k: ClickHouse still gets
        only committed rows, in order, one insert at a time."""
        analytics: asyncio.Task[None] | None = None
        try:
            while True:
                batch = await queue.get()
                if batch is None:
                    break
                async with self._lock:
                    t = time.perf_counter()
                    new = await self._write_pg(batch, state["cp"], writer)
                    status.spent("pg", t)
                self._failpoints.hit("pg-committed")
                state["cp"] = new
                status.indexed = new.height
                status.events += batch.events
                status.rows += batch.row_count
                self.progress(status)
                if analytics is not None:
                    await analytics  # raises its failure
                analytics = asyncio.create_task(self._insert_analytics(
                    batch, (new.height, 0), status))
        except BaseException:
            if analytics is not None:  # let it land: its rows are committed
                await asyncio.gather(analytics, return_exceptions=True)
            raise
        if analytics is not None:
            await analytics

    async def _insert_analytics(self, batch: Batch, position: tuple[int, int],
                                status: Status) -> None:
        t = time.perf_counter()
        await asyncio.to_thread(self._write_analytics, batch, position)
        status.spent("clickhouse", t)

    async def _write(self, batch: Batch, cp: Checkpoint, writer: PgWriter, status: Status,
                     ) -> Checkpoint:
        async with self._lock:
            t = time.perf_counter()
            new = await self._write_pg(batch, cp, writer)
            t = status.spent("pg", t)
            self._failpoints.hit("pg-committed")
            position = new.bus if batch.bus_cursor is not None else (new.height, 0)
            await asyncio.to_thread(self._write_analytics, batch, position)
            status.spent("clickhouse", t)
        return new

    async def _write_pg(self, batch: Batch, cp: Checkpoint, writer: PgWriter) -> Checkpoint:
        if self._failpoints.name != "pg-copied":
            return await writer.write(batch, cp)
        # Crash inside the transaction, after a COPY: PostgreSQL must roll it all back.
        return await writer.write(batch, cp, lambda: self._failpoints.hit("pg-copied"))

    def _write_analytics(self, batch: Batch, position: tuple[int, int]) -> None:
        tables = [(name, rows) for name, rows in batch.rows.items() if rows]
        try:
            if self._failpoints.name == "ch-partial" and len(tables) > 1:
                self.analytics.insert(batch.source, dict(tables[:1]), None)
                self._failpoints.hit("ch-partial")
                self.analytics.insert(batch.source, dict(tables[1:]), position)
            else:
                self.analytics.insert(batch.source, dict(tables), position)
        except AnalyticsError:
            raise
        except Exception as exc:  # the ClickHouse client raises assorted types
            raise AnalyticsError(f"ClickHouse insert failed: {exc}") from exc

    # ---- event bus ----------------------------------------------------------------------------

    async def _follow_bus(self, config: BusConfig, writer: PgWriter, follow: bool,
                          targets: dict[str, tuple[int, int]] | None) -> None:
        bus = PgOutbox(config.dsn, config.table, config.channel)
        status = self.status.setdefault(config.source, Status(config.source, config.table))
        target = None if targets is None else targets.get(config.source)
        try:
            async with self._lock:
                cp = await writer.checkpoint(config.source)
            while not self._stopping.is_set():
                if target is not None and cp.bus >= target:
                    status.state = "done"
                    self.progress(status)
                    return
                events = await bus.fetch(BusCursor(*cp.bus), 5_000)
                if target is not None:
                    events = [e for e in events if (e.xid, e.id) <= target]
                if not events:
                    if not follow:
                        status.state = "at head"
                        self.progress(status)
                        return
                    status.state = "following"
                    self.progress(status)
                    await self._until_stopped(bus.wait(timeout=5.0))
                    continue
                status.state = "consuming"
                last = events[-1]
                batch = Batch(config.source, None, None, {"domain_events": event_rows(events)},
                              bus_cursor=(last.xid, last.id), events=len(events))
                cp = await self._write(batch, cp, writer, status)
                status.indexed = last.id
                status.events += len(events)
                status.rows += len(events)
                self.progress(status)
        finally:
            await bus.close()


def targets_from(checkpoints: Sequence[Checkpoint]) -> dict[str, tuple[int, int]]:
    """Positions to rebuild up to: where the given checkpoints are."""
    return {cp.source: (cp.bus if cp.source.startswith("bus:") else (cp.height, 0))
            for cp in checkpoints}


async def read_checkpoints(dsn: str, schema: str) -> list[Checkpoint]:
    conn = await pg.connect(dsn)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1)", f"{pg.check_schema(schema)}.checkpoints")
        if exists is None:
            return []
        sources = [r[0] for r in await conn.fetch(f"SELECT source FROM {schema}.checkpoints")]
        w = PgWriter(conn, schema)
        return [await w.checkpoint(s) for s in sources]
    finally:
        await conn.close()


