"""The record walk takes decode_log's hashes instead of hashing each record again; with them
the walker names every finding it names without them, for honest and tampered logs."""

from __future__ import annotations

import dataclasses

import pytest
from devchain import ChainBuilder
from ledgerchain import DOMAIN, Ledger, order_fact
from tampers import vectors

from chain.abc import Attestation
from chain.ledger import LedgerWalker, onchain

TAMPERS = [None] + [v["ledger"] for v in vectors("records") if "ledger" in v] + [
    {"kind": "event_type"}]


def _calls(tamper):
    """Three appendBatch calls of three records each, the second one tampered."""
    ledger = Ledger(ChainBuilder())
    out = []
    for k in range(3):
        facts = [order_fact("ta", 3 * k + i) for i in range(3)]
        calldata, [log] = ledger._call(facts, 10 + k, 1_700_000_000 + k,
                                       tamper if k == 1 else None)
        data = log.data
        if k == 1 and tamper == {"kind": "event_type"}:
            # Not ASCII: decode_log cannot hash the record, the walker must say so.
            data = data.replace(b"ORDER_PLACED", b"ORDER_PLACE\xe9", 1)
        out.append((calldata, log.topics, data, 10 + k, 1_700_000_000 + k))
    return out


def _walk(calls, *, use_decoded):
    walker = LedgerWalker(DOMAIN, require_attestation=True)
    for calldata, topics, data, number, timestamp in calls:
        got = onchain.decode_log(topics, data, block_number=number, timestamp=timestamp)
        records = onchain.with_proofs(got.records, onchain.decode_calldata(calldata))
        for record, decoded in zip(records, got.hashes, strict=True):
            walker.check(record, decoded=decoded if use_decoded else None)
    return walker.report


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda t: t["kind"] if t else "honest")
def test_decode_log_hashes_change_no_finding(tamper):
    calls = _calls(tamper)
    fast, slow = _walk(calls, use_decoded=True), _walk(calls, use_decoded=False)
    assert fast.findings == slow.findings
    assert (fast.checked, fast.head_seq, fast.head_hash) == (
        slow.checked, slow.head_seq, slow.head_hash)
    assert (tamper is None) == fast.ok, [str(f) for f in fast.findings]
    if tamper == {"kind": "event_type"}:
        assert [f.check for f in fast.findings][:1] == ["record_hash"]


def test_with_proofs_keeps_every_field_but_the_attestation():
    _, topics, data, number, timestamp = _calls(None)[0]
    got = onchain.decode_log(topics, data, block_number=number, timestamp=timestamp)
    proof = Attestation(1, b"\x01" * 65)
    entries = [onchain.Entry(r.actor, r.event_type, r.nonce, r.delta, proof) for r in got.records]
    for before, after in zip(got.records, onchain.with_proofs(got.records, entries), strict=True):
        assert after.attestation is proof
        for f in dataclasses.fields(before):
            if f.name != "attestation":
                assert getattr(after, f.name) == getattr(before, f.name)


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda t: t["kind"] if t else "honest")
def test_decode_log_joins_proofs_as_with_proofs_does(tamper):
    """decode_log(proofs=...) (the walk's one pass) gives the records, proofs and hashes that
    decode_log and then with_proofs give, including for records with no entry."""
    for calldata, topics, data, number, timestamp in _calls(tamper):
        entries = onchain.decode_calldata(calldata)[1:]  # the first record has no proof
        plain = onchain.decode_log(topics, data, block_number=number, timestamp=timestamp)
        joined = onchain.decode_log(topics, data, block_number=number, timestamp=timestamp,
                                    proofs={(e.actor, e.nonce): e.attestation for e in entries})
        assert joined.hashes == plain.hashes
        expected = onchain.with_proofs(plain.records, entries)
        assert joined.records == tuple(expected)
        assert [r.attestation for r in joined.records] == [r.attestation for r in expected]
        assert joined.records[0].attestation is None
        assert all(r.attestation is not None for r in joined.records[1:])
