"""The projection core: a verified stretch of blocks and logs in, table rows out. No I/O.

1. ``Projector.decode`` checks continuity (each block's parent is the block before, every log
   belongs to the block the node served) and decodes the ERC-3643 and ONCHAINID events.
2. ``verify_ledger`` decodes RecordsAppended logs and walks their records with
   ``chain.ledger.LedgerWalker`` (sequence, data hash, link, record hash, delta schema). It is
   a pure function of picklable values, so the shell may run chunks of a batch in worker
   processes: each chunk starts from the link its first log claims, and ``Projector.attach``
   checks every seam (chunk k starts where chunk k-1 ends, the first where the ledger's head
   is), which makes the chunks exactly one sequential walk.
3. ``Projector.project`` turns the result into rows. Before it, the shell loads what the
   projector has not seen yet (balances, distribution references) from PostgreSQL until
   ``Projector.needs`` asks for nothing more (at most twice: a distribution's fund is known
   only once its reference is loaded).
"""

from __future__ import annotations

import datetime as dt
import decimal
import gc
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from chain.abc import LedgerDomain
from chain.ledger import LedgerWalker, ledger_anchor
from chain.ledger.onchain import RECORDS_APPENDED_TOPIC, OnchainFormatError, decode_log
from indexer import tokens
from indexer.abc import BlockRef, ForkError, IndexerError, LogFilter, RawLog
from indexer.tables import LEDGER_RECORDS

# Sums of balances must never round: 28 digits (the default) is less than a uint256 has.
EXACT = decimal.Context(prec=200, traps=[decimal.InvalidOperation, decimal.Inexact,
                                         decimal.Overflow])
ZERO_ADDRESS = bytes(20)
INTEGRITY_CHECKS = frozenset({"sequence", "data_hash", "link", "record_hash"})
"""Walker findings that mean the node (or the decoder) is wrong: the indexer stops on them.
The others (an off-schema delta) describe a record that really is on chain: it is kept, with
its finding, and takes no part in the register."""

BalanceKey = tuple[str, int, str, str]  # kind, chain id, asset, holder
RefKey = tuple[int, str]  # chain id, distribution reference


class LedgerIntegrityError(IndexerError):
    """The ledger as the node serves it does not verify; nothing of the batch is written."""


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What the indexer reads from one chain."""

    chain_id: int
    ledger: bytes | None = None
    """The CeFi Event Ledger contract, if this chain carries it."""
    tokens: tuple[bytes, ...] = ()
    """ERC-3643 contracts to read: tokens, identity registries, compliance, the T-REX factory."""
    claims: bool = False
    """Read ONCHAINID claim events from any contract (identities are created per investor)."""

    @property
    def name(self) -> str:
        return f"chain:{self.chain_id}"

    def filters(self) -> list[LogFilter]:
        out = []
        if self.ledger is not None:
            out.append(LogFilter((self.ledger,), (RECORDS_APPENDED_TOPIC,)))
        if self.tokens:
            out.append(LogFilter(tuple(self.tokens), tokens.TOKEN_TOPICS))
        if self.claims:
            out.append(LogFilter(None, tokens.CLAIM_TOPICS))
        return out


FACT_TYPES = frozenset({
    "UNITS_ISSUED", "UNITS_REDEEMED", "UNITS_TRANSFERRED", "NAV_PUBLISHED",
    "DISTRIBUTION_DECLARED", "DISTRIBUTION_PAID", "TOKEN_MINTED", "TOKEN_BURNED",
    "TOKEN_FORCED_TRANSFER"})
"""Event types whose deltas change derived tables (register, NAV, distributions, bridge)."""

ROW_FACTS = frozenset({"UNITS_ISSUED", "UNITS_REDEEMED", "UNITS_TRANSFERRED",
                       "DISTRIBUTION_DECLARED"})
"""Fact types whose ledger row holds every field the projection reads (fund, investor,
counterparty, reference, units): their delta does not travel back from a verifying worker."""

_FUND, _INVESTOR, _COUNTERPARTY, _REFERENCE, _UNITS = (
    LEDGER_RECORDS.index(c) for c in ("fund", "investor", "counterparty", "reference", "units"))


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive blocks of one chain and their logs, as fetched."""

    blocks: Sequence[BlockRef]
    logs: Sequence[RawLog]
    weight: int = 0
    """Events in ``logs`` (a ledger log holds many records), for sizing batches."""


def split(segment: Segment, events: int) -> list[Segment]:
    """``segment`` cut between blocks into parts of at most ``events`` events, where blocks
    allow (a block holding more is a part of its own). Logs keep their order within a part. A
    segment with a log of a block it does not hold stays whole, for ``Projector.decode`` to
    refuse."""
    if segment.weight <= events or len(segment.blocks) < 2:
        return [segment]
    weights = [weigh((log,)) for log in segment.logs]
    per_block: dict[int, int] = {}
    for log, w in zip(segment.logs, weights, strict=True):
        per_block[log.block_number] = per_block.get(log.block_number, 0) + w
    if not per_block.keys() <= {b.number for b in segment.blocks}:
        return [segment]
    bounds: list[list[BlockRef]] = [[]]
    part_of: dict[int, int] = {}
    filled = 0
    for b in segment.blocks:
        w = per_block.get(b.number, 0)
        if bounds[-1] and filled + w > events:
            bounds.append([])
            filled = 0
        bounds[-1].append(b)
        filled += w
        part_of[b.number] = len(bounds) - 1
    logs: list[list[RawLog]] = [[] for _ in bounds]
    loads = [0] * len(bounds)
    for log, w in zip(segment.logs, weights, strict=True):
        k = part_of[log.block_number]
        logs[k].append(log)
        loads[k] += w
    return [Segment(bs, ls, n) for bs, ls, n in zip(bounds, logs, loads, strict=True)]


def weigh(logs: Sequence[RawLog]) -> int:
    """Events in ``logs``: a RecordsAppended log counts its records (its first data word)."""
    return sum(int.from_bytes(lg.data[:32], "big") if lg.topics and lg.topics[0] ==
               RECORDS_APPENDED_TOPIC and len(lg.data) >= 32 else 1 for lg in logs)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A RecordsAppended log and the block it is in."""

    log: RawLog
    block: BlockRef


@dataclass(slots=True)
class LedgerChunk:
    """What ``verify_ledger`` returns for consecutive ledger logs."""

    start: tuple[int, bytes]
    """(seq, hash) the first record links to: the ledger head before the chunk."""
    end: tuple[int, bytes]
    rows: list[tuple[Any, ...]]
    """``ledger_records`` rows (indexer.tables order); ``units`` is the delta's canonical
    decimal text, which both drivers parse (a Decimal would cost a reduce call to pickle)."""
    facts: list[tuple[int, str, dict[str, Any] | None]]
    """(index in rows, event type, delta) of records in ``FACT_TYPES``; the delta is None for
    ``ROW_FACTS``, whose row says all."""


def claimed_start(entry: LedgerEntry) -> tuple[int, bytes]:
    """The head a RecordsAppended log says it continues: (firstSeq - 1, previousHash)."""
    log = entry.log
    if len(log.topics) != 2 or len(log.data) < 96:
        raise LedgerIntegrityError(f"RecordsAppended log {log.log_index} of block "
                                   f"{log.block_number} is malformed (topics or data too short)")
    return int.from_bytes(log.topics[1], "big") - 1, log.data[32:64]


GC_THRESHOLDS = (100_000, 50, 100)
"""Collector thresholds while indexing. A batch allocates millions of rows that live until they
are written and hold no cycles; at Python's default (700, 10, 10) the collector walks them
again and again (about a tenth of the CPU of a backfill); these let it run a hundred times
less often."""


def start_verifier() -> None:
    """Initializer of a process that runs ``verify_ledger``: what it has imported is frozen
    out of the collector's walks, and ``GC_THRESHOLDS`` apply."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def verify_ledger(chain_id: int, ledger: bytes, start: tuple[int, bytes] | None,
                  entries: Sequence[LedgerEntry], url: str = "the node") -> LedgerChunk:
    """Decode and verify the records of ``entries`` from ``start`` (None: from the head the
    first log claims; the caller checks that seam). Raises LedgerIntegrityError on a record
    whose sequence, data hash, link or record hash does not hold."""
    domain = LedgerDomain(chain_id, ledger)
    if start is None:
        start = claimed_start(entries[0])
    walker = LedgerWalker(domain, head_seq=start[0], head_hash=start[1])
    rows: list[tuple[Any, ...]] = []
    facts: list[tuple[int, str, dict[str, Any] | None]] = []
    times: dict[int, dt.datetime] = {}
    # One object per distinct actor, type, fund and investor: the rows travel back from a
    # worker process pickled, and pickle sends an object it has seen as a reference.
    same: dict[Any, Any] = {}
    one = same.setdefault
    head = start[1]
    for entry in entries:
        log, block = entry.log, entry.block
        where = f"RecordsAppended log {log.log_index} of block {log.block_number}"
        try:
            appended = decode_log(log.topics, log.data, block_number=log.block_number,
                                  timestamp=block.timestamp)
        except OnchainFormatError as exc:
            raise LedgerIntegrityError(f"{where} from {url} does not decode ({exc}); the node "
                                       "serves corrupt data. Nothing was written") from None
        time = times.get(block.number)
        if time is None:
            time = times[block.number] = block.time
        for record, scheme, decoded in zip(appended.records, appended.schemes, appended.hashes,
                                           strict=True):
            # decoded: the record hash decode_log computed from these bytes (see check)
            finding = walker.check(record, decoded=decoded)
            if finding is not None and finding.check in INTEGRITY_CHECKS:
                raise LedgerIntegrityError(
                    f"{finding} (in {where} from {url}). The ledger as served does not verify, "
                    "so nothing of this batch was written; compare with another node")
            fund = investor = counterparty = reference = units = None
            event_type = one(record.event_type, record.event_type)
            if finding is None:
                # The walker has checked the delta is canonical and fits its schema, and hands
                # over the object it parsed.
                d = walker.delta
                assert d is not None
                for key in ("isin", "investor", "from_investor", "to_investor", "currency"):
                    if key in d:
                        d[key] = one(d[key], d[key])
                fund = d.get("isin")
                investor = d.get("investor", d.get("from_investor"))
                counterparty = d.get("to_investor")
                reference = d.get("order", d.get("transfer", d.get("distribution")))
                units = d.get("units")
                if event_type in FACT_TYPES:
                    facts.append((len(rows), event_type,
                                  None if event_type in ROW_FACTS else d))
            # The link held, so previousHash is the row before's hash: the same object, which
            # pickle then sends as a reference.
            previous = head if record.previous_hash == head else record.previous_hash
            head = walker.report.head_hash  # the walker's head is now this record's hash
            rows.append((
                chain_id, record.seq, block.number, block.hash, log.tx_hash, log.log_index,
                one(record.actor, record.actor), event_type, record.nonce, scheme,
                record.attestation_id, record.data_hash, previous, head,
                time, record.delta, fund, investor, counterparty, reference,
                None if finding is None else f"{finding.check}: {finding.message}", units))
    rep = walker.report
    return LedgerChunk(start, (rep.head_seq, rep.head_hash), rows, facts)


@dataclass(slots=True)
class Item:
    """A decoded token-chain event, in chain order."""

    block: BlockRef
    log: RawLog
    event: tokens.EventSpec
    args: dict[str, Any]


@dataclass(slots=True)
class Decoded:
    blocks: Sequence[BlockRef]
    ledger: list[LedgerEntry]
    items: list[Item]
    chunks: list[LedgerChunk] = field(default_factory=list)
    ledger_head: tuple[int, bytes] | None = None

    @property
    def events(self) -> int:
        return len(self.items) + sum(len(c.rows) for c in self.chunks)


@dataclass(slots=True)
class Batch:
    """Rows for one transaction: the projection of ``blocks`` (or of bus events)."""

    source: str
    chain_id: int | None
    last: BlockRef | None
    rows: dict[str, list[tuple[Any, ...]]]
    balances: list[tuple[Any, ...]] = field(default_factory=list)
    ledger_head: tuple[int, bytes] | None = None
    bus_cursor: tuple[int, int] | None = None
    events: int = 0

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.rows.values())


def check_continuity(last: BlockRef | None, blocks: Sequence[BlockRef], *, url: str = "the node",
                     ) -> None:
    """ForkError unless ``blocks`` extend ``last`` one parent link at a time."""
    previous = last
    for b in blocks:
        if previous is not None:
            if b.number != previous.number + 1:
                raise ForkError(f"{url} served block {b.number} after {previous.number}",
                                height=b.number)
            if b.parent_hash != previous.hash:
                raise ForkError(
                    f"{url} serves block {b.number} with parent 0x{b.parent_hash.hex()}, but "
                    f"block {previous.number} is 0x{previous.hash.hex()}: the node switched "
                    "chains or lies. Nothing was written. Check the node (and its genesis); on a "
                    "non-final chain set --confirmations so reorgs are rolled back",
                    height=b.number)
        previous = b


class Projector:
    def __init__(self, spec: SourceSpec, *, ledger_head: tuple[int, bytes] | None = None,
                 url: str = "the node") -> None:
        self.spec = spec
        self.url = url
        self.head: tuple[int, bytes] | None = None
        if spec.ledger is not None:
            self.head = ledger_head or (0, ledger_anchor(LedgerDomain(spec.chain_id,
                                                                       spec.ledger)))
        self.balances: dict[BalanceKey, Decimal] = {}
        self.refs: dict[RefKey, str | None] = {}
        self._times: dict[int, dt.datetime] = {}
        self.skipped = 0

    # ---- phase 1: check and decode -----------------------------------------------------------

    def decode(self, last: BlockRef | None, segment: Segment) -> Decoded:
        blocks = segment.blocks
        check_continuity(last, blocks, url=self.url)
        by_number = {b.number: b for b in blocks}
        decoded = Decoded(blocks, [], [])
        ledger = self.spec.ledger
        tokens_set = set(self.spec.tokens)
        for log in segment.logs:
            block = by_number.get(log.block_number)
            if block is None or block.hash != log.block_hash:
                raise ForkError(
                    f"{self.url} answered a log of block {log.block_number} with block hash "
                    f"0x{log.block_hash.hex()}, not the block it served: the node changed "
                    "under the indexer (a reorg, or a load balancer across nodes). Retry; "
                    "nothing was written", height=log.block_number)
            topic = log.topics[0] if log.topics else b""
            if log.address == ledger and topic == RECORDS_APPENDED_TOPIC:
                decoded.ledger.append(LedgerEntry(log, block))
                continue
            spec = tokens.BY_TOPIC.get(topic)
            if spec is None:
                continue
            from_config = log.address in tokens_set
            try:
                if spec is tokens.TRANSFER:
                    sender, receiver, value = tokens.decode_transfer(log)
                    args: dict[str, Any] = {"from": sender, "to": receiver, "value": value}
                else:
                    args = tokens.decode(spec, log)
            except tokens.TokenEventError as exc:
                if from_config:
                    raise IndexerError(f"{exc}: contract 0x{log.address.hex()} is configured as "
                                       "ERC-3643 but emits a different event layout; check "
                                       "--token") from None
                self.skipped += 1  # another kind of contract reusing the event name
                continue
            if spec is tokens.TRANSFER and not from_config:
                continue
            decoded.items.append(Item(block, log, spec, args))
        return decoded

    def work(self, decoded: Decoded, parts: int) -> list[tuple[tuple[int, bytes] | None,
                                                                list[LedgerEntry]]]:
        """Split the ledger logs into up to ``parts`` chunks of similar record counts, for
        ``verify_ledger``; the first starts from the ledger head, the others from their claim."""
        entries = decoded.ledger
        if not entries:
            return []
        total = weigh([e.log for e in entries])
        size = max(1, -(-total // max(1, parts)))
        chunks: list[list[LedgerEntry]] = [[]]
        filled = 0
        for e in entries:
            n = weigh([e.log])
            if filled >= size and len(chunks) < parts:
                chunks.append([])
                filled = 0
            chunks[-1].append(e)
            filled += n
        return [(self.head if i == 0 else None, c) for i, c in enumerate(chunks)]

    def verify(self, decoded: Decoded) -> None:
        """``verify_ledger`` in this process, then ``attach``."""
        assert self.spec.ledger is not None or not decoded.ledger
        self.attach(decoded, [verify_ledger(self.spec.chain_id, self.spec.ledger or b"", start,
                                            entries, self.url)
                              for start, entries in self.work(decoded, 1)])

    def attach(self, decoded: Decoded, chunks: Sequence[LedgerChunk]) -> None:
        """Take verified chunks (in order); LedgerIntegrityError unless they join up."""
        expected = self.head
        for c in chunks:
            if c.start != expected:
                assert expected is not None
                check = "sequence" if c.start[0] != expected[0] else "link"
                raise LedgerIntegrityError(
                    f"record {c.start[0] + 1}: {check}: the log says it follows record "
                    f"{c.start[0]} (0x{c.start[1].hex()}), but the ledger's head is record "
                    f"{expected[0]} (0x{expected[1].hex()}) (from {self.url}). The ledger as "
                    "served does not verify, so nothing of this batch was written")
            expected = c.end
        decoded.chunks = list(chunks)
        if self.spec.ledger is not None:
            self.head = expected
            decoded.ledger_head = expected

    def needs(self, decoded: Decoded) -> tuple[set[BalanceKey], set[RefKey]]:
        """Balances and distribution references ``project`` will read that are not cached."""
        chain = self.spec.chain_id
        have = self.balances
        keys: set[BalanceKey] = set()
        refs: set[RefKey] = set()
        declared: dict[str, str] = {}
        for item in decoded.items:
            if item.event is tokens.TRANSFER:
                token = "0x" + item.log.address.hex()
                for holder in (item.args["from"], item.args["to"]):
                    if holder != ZERO_ADDRESS:
                        key = ("token", chain, token, "0x" + holder.hex())
                        if key not in have:
                            keys.add(key)
        for chunk in decoded.chunks:
            rows = chunk.rows
            for index, et, d in chunk.facts:
                if et == "UNITS_ISSUED" or et == "UNITS_REDEEMED":
                    row = rows[index]
                    key = ("units", chain, row[_FUND], row[_INVESTOR])
                    if key not in have:
                        keys.add(key)
                elif et == "UNITS_TRANSFERRED":
                    row = rows[index]
                    for who in (row[_INVESTOR], row[_COUNTERPARTY]):
                        key = ("units", chain, row[_FUND], who)
                        if key not in have:
                            keys.add(key)
                elif et == "DISTRIBUTION_DECLARED":
                    row = rows[index]
                    ref = (chain, row[_REFERENCE])
                    if ref not in self.refs:
                        refs.add(ref)
                    elif self.refs[ref] is None:
                        declared.setdefault(row[_REFERENCE], row[_FUND])
                elif et == "DISTRIBUTION_PAID" and d is not None and "reinvested_units" in d:
                    ref = (chain, d["distribution"])
                    if ref not in self.refs:
                        refs.add(ref)
                        continue
                    fund = self.refs[ref] or declared.get(d["distribution"])
                    if fund is not None:
                        key = ("units", chain, fund, d["investor"])
                        if key not in have:
                            keys.add(key)
        return keys, refs

    def load(self, keys: set[BalanceKey], balances: Mapping[BalanceKey, Decimal],
             refs: set[RefKey], found: Mapping[RefKey, str | None]) -> None:
        """What PostgreSQL holds for what ``needs`` asked (absent: zero, no such reference)."""
        for key in keys:
            self.balances[key] = balances.get(key, Decimal(0))
        for ref in refs:
            self.refs[ref] = found.get(ref)

    def forget(self) -> None:
        """Drop cached balances (call only when no projected batch is still unwritten)."""
        self.balances.clear()

    # ---- phase 2: rows ----------------------------------------------------------------------

    def _time(self, block: BlockRef) -> dt.datetime:
        t = self._times.get(block.number)
        if t is None:
            if len(self._times) > 50_000:
                self._times.clear()
            t = self._times[block.number] = block.time
        return t

    def project(self, decoded: Decoded) -> Batch:
        chain = self.spec.chain_id
        ledger_rows = [r for c in decoded.chunks for r in c.rows]
        rows: dict[str, list[tuple[Any, ...]]] = {
            "blocks": [], "ledger_records": ledger_rows, "balance_changes": [], "nav_history": [],
            "distributions": [], "bridge_links": [], "token_transfers": [], "token_events": []}
        touched: dict[BalanceKey, int] = {}
        changes = rows["balance_changes"]
        balances = self.balances

        def change(kind: str, block_number: int, time: dt.datetime, ordinal: int, leg: int,
                   asset: str, holder: str, amount: Decimal) -> None:
            key = (kind, chain, asset, holder)
            balance = EXACT.add(balances[key], amount)
            balances[key] = balance
            touched[key] = block_number
            changes.append((kind, chain, block_number, ordinal, leg, asset, holder, amount,
                            balance, time))

        offset = 0
        for chunk in decoded.chunks:
            for index, et, d in chunk.facts:
                i = offset + index
                self._fact(i, et, d, ledger_rows, rows, change)
            offset += len(chunk.rows)
        log_counts: dict[int, int] = {}
        for e in decoded.ledger:
            log_counts[e.block.number] = log_counts.get(e.block.number, 0) + 1
        for item in decoded.items:
            block, log = item.block, item.log
            log_counts[block.number] = log_counts.get(block.number, 0) + 1
            time = self._time(block)
            if item.event is tokens.TRANSFER:
                sender, receiver, value = item.args["from"], item.args["to"], item.args["value"]
                rows["token_transfers"].append((chain, block.number, log.log_index, log.tx_hash,
                                                log.address, sender, receiver, value, time))
                asset, amount = "0x" + log.address.hex(), Decimal(value)
                if sender != ZERO_ADDRESS:
                    change("token", block.number, time, log.log_index, 0, asset,
                           "0x" + sender.hex(), -amount)
                if receiver != ZERO_ADDRESS:
                    change("token", block.number, time, log.log_index, 1, asset,
                           "0x" + receiver.hex(), amount)
            else:
                rows["token_events"].append((chain, block.number, log.log_index, log.tx_hash,
                                             log.address, item.event.name,
                                             json.dumps(item.args, sort_keys=True), time))
        for b in decoded.blocks:
            rows["blocks"].append((chain, b.number, b.hash, b.parent_hash, self._time(b),
                                   log_counts.get(b.number, 0)))
        upserts = [(kind, c, asset, holder, balances[(kind, c, asset, holder)], height)
                   for (kind, c, asset, holder), height in touched.items()]
        return Batch(self.spec.name, chain, decoded.blocks[-1] if decoded.blocks else None,
                     {k: v for k, v in rows.items() if v}, upserts, decoded.ledger_head,
                     events=decoded.events)

    def _fact(self, i: int, et: str, d: dict[str, Any] | None,
              ledger_rows: list[tuple[Any, ...]], rows: dict[str, list[tuple[Any, ...]]],
              change: Any) -> None:
        row = ledger_rows[i]
        chain, seq, block_number, time, fund = row[0], row[1], row[2], row[14], row[_FUND]
        if et == "UNITS_ISSUED":
            change("units", block_number, time, seq, 0, fund, row[_INVESTOR], Decimal(row[_UNITS]))
        elif et == "UNITS_REDEEMED":
            change("units", block_number, time, seq, 0, fund, row[_INVESTOR],
                   -Decimal(row[_UNITS]))
        elif et == "UNITS_TRANSFERRED":
            units = Decimal(row[_UNITS])
            change("units", block_number, time, seq, 0, fund, row[_INVESTOR], -units)
            change("units", block_number, time, seq, 1, fund, row[_COUNTERPARTY], units)
        elif et == "DISTRIBUTION_DECLARED":
            key = (chain, row[_REFERENCE])
            if self.refs.get(key) is None:
                self.refs[key] = fund
                rows["distributions"].append((chain, row[_REFERENCE], fund, seq, block_number))
        elif d is None:
            raise AssertionError(f"record {seq}: {et} travelled without its delta")
        elif et == "NAV_PUBLISHED":
            rows["nav_history"].append((
                chain, seq, block_number, fund, dt.date.fromisoformat(d["nav_date"]),
                Decimal(d["nav"]), d["currency"], _opt_decimal(d.get("net_assets")),
                _opt_decimal(d.get("units_outstanding")), time))
        elif et == "DISTRIBUTION_PAID":
            fund = self.refs.get((chain, d["distribution"]))
            if fund is not None:
                # The record names the distribution; its fund comes from the declaration.
                ledger_rows[i] = (*row[:16], fund, *row[17:])
                reinvested = d.get("reinvested_units")
                if reinvested is not None:
                    change("units", block_number, time, seq, 0, fund, d["investor"],
                           Decimal(reinvested))
        elif et in _BRIDGE_KINDS:
            rows["bridge_links"].append((
                chain, seq, block_number, _BRIDGE_KINDS[et], d["token_chain"],
                bytes.fromhex(d["token"][2:]), bytes.fromhex(d["tx"][2:]), Decimal(d["amount"])))


_BRIDGE_KINDS = {"TOKEN_MINTED": "mint", "TOKEN_BURNED": "burn",
                 "TOKEN_FORCED_TRANSFER": "forced_transfer"}


def _opt_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)
