"""The projection core without I/O: continuity, ledger verification in chunks, the register."""

from __future__ import annotations

from decimal import Decimal

import pytest
from chainkit import FundScenario, isin, records_log
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.abc import Attestation, LedgerDomain
from chain.ledger import build_record, canonical_delta, ledger_anchor
from indexer.abc import BlockRef, ForkError, RawLog
from indexer.project import (
    LedgerIntegrityError,
    Projector,
    Segment,
    SourceSpec,
    check_continuity,
    split,
    verify_ledger,
    weigh,
)
from indexer.runner import RangePlanner
from indexer.tokens import TRANSFER

CHAIN = 31337
LEDGER = b"\x11" * 20
TOKEN = b"\x22" * 20
DOMAIN = LedgerDomain(CHAIN, LEDGER)
ACTORS = [b"\xa1" * 20, b"\xa2" * 20]


def blocks(first: int, n: int, parent: bytes = b"\x00" * 32) -> list[BlockRef]:
    out = []
    for number in range(first, first + n):
        h = number.to_bytes(4, "big") + b"\xbb" * 28
        out.append(BlockRef(number, h, parent, 1_764_000_000 + number))
        parent = h
    return out


def ledger_segment(events: list[tuple[int, str, dict]], *, per_log: int = 7, per_block: int = 3,
                   first_block: int = 1, start: tuple[int, bytes] | None = None,
                   parent: bytes = b"\x00" * 32) -> tuple[Segment, list]:
    """Blocks and RecordsAppended logs carrying ``events``, hash-linked from ``start``."""
    seq, link = start or (0, ledger_anchor(DOMAIN))
    nonces = {a: 0 for a in ACTORS}
    records = []
    n_logs = -(-len(events) // per_log)
    bl = blocks(first_block, -(-n_logs // per_block) or 1, parent)
    logs: list[RawLog] = []
    for i in range(n_logs):
        block = bl[i // per_block]
        chunk = []
        for actor, et, fields in events[i * per_log:(i + 1) * per_log]:
            seq += 1
            who = ACTORS[actor]
            nonces[who] += 1
            r = build_record(seq=seq, actor=who, event_type=et, delta=canonical_delta(et, fields),
                             nonce=nonces[who], attestation=Attestation(1, bytes([seq % 256]) * 65),
                             previous_hash=link, timestamp=block.timestamp,
                             block_height=block.number)
            link = r.record_hash
            chunk.append(r)
        records += chunk
        logs.append(records_log(LEDGER, chunk, block_hash=block.hash, log_index=i % per_block))
    return Segment(bl, logs), records


def project_all(projector: Projector, last: BlockRef | None, segment: Segment, parts: int = 1,
                store: dict | None = None):
    decoded = projector.decode(last, segment)
    chunks = [verify_ledger(CHAIN, LEDGER, start, entries)
              for start, entries in projector.work(decoded, parts)]
    projector.attach(decoded, chunks)
    keys, refs = projector.needs(decoded)
    while keys or refs:
        store = store if store is not None else {}
        projector.load(keys, {k: store[k] for k in keys if k in store}, refs, {})
        keys, refs = projector.needs(decoded)
    return projector.project(decoded)


# ---- continuity --------------------------------------------------------------------------------

def test_blocks_that_do_not_link_to_the_indexed_block_are_a_fork():
    bl = blocks(5, 3)
    check_continuity(bl[0], bl[1:])
    other = blocks(6, 2, parent=b"\x99" * 32)
    with pytest.raises(ForkError, match="Nothing was written") as exc:
        check_continuity(bl[0], other)
    assert exc.value.height == 6
    with pytest.raises(ForkError, match="after 5"):
        check_continuity(bl[0], bl[2:])


def test_a_log_of_a_block_the_node_did_not_serve_is_refused():
    segment, _ = ledger_segment(FundScenario(seed=3).events(5))
    log = segment.logs[0]
    moved = RawLog(log.address, log.topics, log.data, log.block_number, b"\x55" * 32, log.tx_hash,
                   log.tx_index, log.log_index)
    with pytest.raises(ForkError, match="changed under the indexer"):
        Projector(SourceSpec(CHAIN, LEDGER)).decode(None, Segment(segment.blocks, [moved]))


# ---- ledger verification -----------------------------------------------------------------------

def test_chunks_verified_apart_give_exactly_the_rows_of_one_walk():
    segment, records = ledger_segment(FundScenario(seed=4).events(60))
    one = project_all(Projector(SourceSpec(CHAIN, LEDGER)), None, segment, parts=1)
    four = project_all(Projector(SourceSpec(CHAIN, LEDGER)), None, segment, parts=4)
    assert one.rows == four.rows and one.balances == four.balances
    assert [r[1] for r in one.rows["ledger_records"]] == [r.seq for r in records]
    assert [r[13] for r in one.rows["ledger_records"]] == [r.record_hash for r in records]
    assert one.ledger_head == (records[-1].seq, records[-1].record_hash)


def test_chunks_that_do_not_join_up_are_refused():
    segment, _ = ledger_segment(FundScenario(seed=5).events(40))
    projector = Projector(SourceSpec(CHAIN, LEDGER))
    decoded = projector.decode(None, segment)
    work = projector.work(decoded, 3)
    chunks = [verify_ledger(CHAIN, LEDGER, start, entries) for start, entries in work]
    with pytest.raises(LedgerIntegrityError, match="sequence"):
        projector.attach(decoded, [chunks[0], chunks[2], chunks[1]])
    assert projector.head == (0, ledger_anchor(DOMAIN))  # nothing taken


def test_a_batch_that_does_not_continue_the_indexed_head_is_refused():
    segment, _ = ledger_segment(FundScenario(seed=6).events(10), start=(7, b"\x01" * 32))
    with pytest.raises(LedgerIntegrityError):
        project_all(Projector(SourceSpec(CHAIN, LEDGER), ledger_head=(7, b"\x02" * 32)), None,
                    segment)


def _flippable(log: RawLog) -> list[int]:
    """Offsets of every byte of the packed records except the scheme bytes (the scheme is bound
    by the attestation id only, which needs the calldata's proof to check)."""
    packed_at = 32 * 5
    length = int.from_bytes(log.data[128:160], "big")
    skip, at = set(), packed_at
    while at < packed_at + length:
        type_len = log.data[at + 20]
        skip.add(at + 21 + type_len + 8)
        delta_len = int.from_bytes(log.data[at + 21 + type_len + 41:at + 21 + type_len + 43], "big")
        at += 21 + type_len + 43 + delta_len
    return [i for i in range(32, packed_at + length) if i not in skip and not 64 <= i < 160]


SEGMENT, _ = ledger_segment(FundScenario(seed=7).events(12), per_log=12)


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_any_altered_byte_of_a_served_ledger_log_stops_the_batch(data):
    log = SEGMENT.logs[0]
    at = data.draw(st.sampled_from(_flippable(log)))
    flipped = bytearray(log.data)
    flipped[at] ^= data.draw(st.integers(1, 255))
    bad = RawLog(log.address, log.topics, bytes(flipped), log.block_number, log.block_hash,
                 log.tx_hash, log.tx_index, log.log_index)
    with pytest.raises(LedgerIntegrityError):
        project_all(Projector(SourceSpec(CHAIN, LEDGER)), None, Segment(SEGMENT.blocks, [bad]))


def test_an_off_schema_delta_is_kept_with_its_finding_and_moves_no_units():
    segment, records = ledger_segment(FundScenario(seed=8).events(3), per_log=4)
    # A fourth record whose delta the contract took but the schema refuses (unknown field).
    block = segment.blocks[-1]
    seq = records[-1].seq + 1
    r = build_record(seq=seq, actor=ACTORS[0], event_type="UNITS_ISSUED",
                     delta=b'{"isin":"LU0000000009","units":"5","wallet_pin":"1234"}', nonce=99,
                     attestation=Attestation(1, b"\x01" * 65), previous_hash=records[-1].record_hash,
                     timestamp=block.timestamp, block_height=block.number)
    logs = [*segment.logs, records_log(LEDGER, [r], block_hash=block.hash, log_index=9)]
    batch = project_all(Projector(SourceSpec(CHAIN, LEDGER)), None, Segment(segment.blocks, logs))
    row = batch.rows["ledger_records"][-1]
    assert row[1] == seq and row[20].startswith("delta:") and "wallet_pin" in row[20]
    assert row[16] is None  # nothing taken from an unverified delta
    assert all(c[3] != seq for c in batch.rows.get("balance_changes", []))


# ---- the register --------------------------------------------------------------------------------

def test_register_follows_issues_redemptions_transfers_and_reinvested_distributions():
    scenario = FundScenario(funds=2, investors=8, seed=9)
    events = scenario.events(400)
    assert {"UNITS_REDEEMED", "UNITS_TRANSFERRED", "DISTRIBUTION_PAID"} <= set(scenario.counts)
    segment, _ = ledger_segment(events)
    projector = Projector(SourceSpec(CHAIN, LEDGER))
    # In two batches, the second seeing the first's balances only through "PostgreSQL".
    half = len(segment.blocks) // 2
    first = Segment(segment.blocks[:half], [lg for lg in segment.logs
                                            if lg.block_number <= segment.blocks[half - 1].number])
    second = Segment(segment.blocks[half:], segment.logs[len(first.logs):])
    b1 = project_all(projector, None, first)
    store = {row[:4]: row[4] for row in b1.balances}
    projector.forget()
    b2 = project_all(projector, first.blocks[-1], second, store=store)
    store.update({row[:4]: row[4] for row in b2.balances})
    got = {(asset, holder): bal for (kind, _, asset, holder), bal in store.items() if bal != 0}
    assert got == {k: v for k, v in scenario.register.items() if v != 0}
    navs = [(r[3], r[4].isoformat(), str(r[5])) for b in (b1, b2) for r in b.rows.get("nav_history", [])]
    assert navs == scenario.navs


def test_a_reinvested_distribution_declared_in_the_same_batch_credits_its_fund():
    events = [(0, "DISTRIBUTION_DECLARED", {"distribution": "D-1", "isin": isin(3),
                                             "record_date": "2026-11-20", "payment_date": "2026-11-25",
                                             "per_unit": "0.1", "currency": "EUR"}),
              (0, "DISTRIBUTION_PAID", {"distribution": "D-1", "investor": "inv_0123456789abcdef",
                                         "amount": "1", "currency": "EUR",
                                         "reinvested_units": "2.5"})]
    segment, _ = ledger_segment(events)
    batch = project_all(Projector(SourceSpec(CHAIN, LEDGER)), None, segment)
    assert batch.balances == [("units", CHAIN, isin(3), "inv_0123456789abcdef", Decimal("2.5"),
                               segment.blocks[0].number)]
    assert batch.rows["ledger_records"][1][16] == isin(3)  # fund filled from the declaration


def _transfer(block: BlockRef, index: int, sender: bytes, receiver: bytes, value: int) -> RawLog:
    return RawLog(TOKEN, (TRANSFER.topic, bytes(12) + sender, bytes(12) + receiver),
                  value.to_bytes(32, "big"), block.number, block.hash, b"\x09" * 32, 0, index)


def test_token_transfers_mints_and_burns_make_the_token_register():
    bl = blocks(1, 2)
    alice, bob = b"\xaa" * 20, b"\xbb" * 20
    logs = [_transfer(bl[0], 0, bytes(20), alice, 1000), _transfer(bl[0], 1, alice, bob, 300),
            _transfer(bl[1], 0, bob, bytes(20), 100),
            # a Transfer of a contract nobody configured: not ours, skipped
            RawLog(b"\x33" * 20, (TRANSFER.topic, bytes(32), bytes(12) + bob), (5).to_bytes(32, "big"),
                   2, bl[1].hash, b"\x09" * 32, 0, 1)]
    batch = project_all(Projector(SourceSpec(CHAIN, tokens=(TOKEN,))), None, Segment(bl, logs))
    assert len(batch.rows["token_transfers"]) == 3
    balances = {r[3]: r[4] for r in batch.balances}
    assert balances == {"0x" + alice.hex(): 700, "0x" + bob.hex(): 200}


# ---- batches cut out of a node's range --------------------------------------------------------------

def _split_segment() -> Segment:
    segment, _ = ledger_segment(FundScenario(funds=2, investors=5, seed=21).events(120),
                                per_log=5, per_block=2)
    return Segment(segment.blocks, segment.logs, weigh(segment.logs))


SPLIT_SEGMENT = _split_segment()


@given(st.integers(1, 130))
@settings(max_examples=40, deadline=None)
def test_a_range_cut_into_batches_projects_to_exactly_the_rows_of_the_whole(events):
    parts = split(SPLIT_SEGMENT, events)
    assert [b for p in parts for b in p.blocks] == list(SPLIT_SEGMENT.blocks)
    assert [lg for p in parts for lg in p.logs] == list(SPLIT_SEGMENT.logs)
    for p in parts:
        assert p.weight == weigh(p.logs)
        assert p.weight <= events or len(p.blocks) == 1
    whole = project_all(Projector(SourceSpec(CHAIN, LEDGER)), None, SPLIT_SEGMENT)
    projector, last, batches = Projector(SourceSpec(CHAIN, LEDGER)), None, []
    for p in parts:
        batches.append(project_all(projector, last, p))
        last = batches[-1].last or last
    assert len(parts) > 1 or events >= SPLIT_SEGMENT.weight
    for table, rows in whole.rows.items():
        assert [r for b in batches for r in b.rows.get(table, [])] == rows, table
    assert batches[-1].ledger_head == whole.ledger_head


def test_a_range_with_a_log_of_a_block_it_does_not_hold_is_not_cut():
    stray = RawLog(LEDGER, (b"\x00" * 32,), b"", 999, b"\x99" * 32, b"\x00" * 32, 0, 0)
    segment = Segment(SPLIT_SEGMENT.blocks, [*SPLIT_SEGMENT.logs, stray],
                      SPLIT_SEGMENT.weight + 1)
    assert split(segment, 10) == [segment]


# ---- range planning ------------------------------------------------------------------------------

@given(st.integers(0, 50), st.integers(0, 3000), st.lists(st.tuples(st.booleans(), st.integers(0, 20_000)),
                                                          max_size=40))
@settings(max_examples=150, deadline=None)
def test_planned_ranges_cover_every_block_once_whatever_the_node_answers(first, length, answers):
    planner = RangePlanner(first, first + length, step=100, max_step=2000)
    covered = []
    i = 0
    while planner.more():
        lo, hi = planner.take()
        assert lo <= hi and 1 <= hi - lo + 1 <= 2000
        covered.extend(range(lo, hi + 1))
        refused, events = answers[i % len(answers)] if answers else (False, 0)
        i += 1
        if refused:
            planner.refused(hi - lo + 1)
        else:
            planner.answered(hi - lo + 1, events)
    assert covered == list(range(first, first + length + 1))
