"""CeFiEventLedger on ape's EthTester network: the same hashes as chain/ledger, every role
check, every revert reason, all-or-nothing batches, and tampering caught by the verifier."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import ape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.abc import Attestation, AttestedEvent, LedgerDomain
from chain.attest import Eip712Scheme
from chain.attest.eip712 import EVENT_TYPEHASH, digest, domain_separator
from chain.ledger import (
    build_record,
    canonical_delta,
    data_hash,
    ledger_anchor,
    onchain,
    verify_records,
)
from chain.ledger.record import ANCHOR_TAG, RECORD_TYPEHASH

from .conftest import ADMINISTRATOR, ISIN, STRANGER, TA, Book, hexaddr, records_of

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "ledger_vectors.json").read_text())
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def b(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def bytes32(event_type: str) -> bytes:
    return event_type.encode().ljust(32, b"\0")


def expected_chain(book: Book, submitted: list[tuple[onchain.Entry, Any]], chain: Any,
                   first_seq: int = 1, previous: bytes | None = None) -> list[Any]:
    """The records chain/ledger builds for these entries in these blocks."""
    out = []
    link = previous or ledger_anchor(book.domain)
    for seq, (e, receipt) in enumerate(submitted, start=first_seq):
        r = build_record(seq=seq, actor=e.actor, event_type=e.event_type, delta=e.delta,
                         nonce=e.nonce, attestation=e.attestation, previous_hash=link,
                         timestamp=chain.blocks[receipt.block_number].timestamp,
                         block_height=receipt.block_number)
        out.append(r)
        link = r.record_hash
    return out


# --- one hash function, both sides -------------------------------------------------------

def test_contract_constants_and_hashes_equal_the_shared_known_answers(ledger, book):
    assert bytes(ledger.RECORD_TYPEHASH()) == RECORD_TYPEHASH
    assert bytes(ledger.EVENT_TYPEHASH()) == EVENT_TYPEHASH
    assert bytes(ledger.ANCHOR_TAG()) == ANCHOR_TAG
    assert bytes(ledger.anchor()) == ledger_anchor(book.domain)
    assert bytes(ledger.domainSeparator()) == domain_separator(book.domain)
    for v in VECTORS["records"]:
        assert bytes(ledger.hashRecord(v["seq"], v["actor"], bytes32(v["event_type"]),
                                       b(v["data_hash"]), v["nonce"], b(v["attestation_id"]),
                                       b(v["previous_hash"]), v["timestamp"],
                                       v["block_height"])) == b(v["record_hash"])
    for v in VECTORS["digests"]:
        event = AttestedEvent(b(v["actor"]), v["event_type"], b(v["data_hash"]), v["nonce"])
        assert bytes(ledger.eventDigest(v["actor"], bytes32(v["event_type"]), b(v["data_hash"]),
                                        v["nonce"])) == digest(event, book.domain)


def test_records_link_exactly_as_chain_ledger_computes_them(ledger, book, writer, chain):
    single = book.entry()
    r1 = book.append(single, writer)
    batch = [book.entry() for _ in range(4)] + [book.entry(ADMINISTRATOR), book.entry()]
    r2 = book.append_batch(batch, writer)

    expected = expected_chain(book, [(single, r1)] + [(e, r2) for e in batch], chain)
    count, head = ledger.head()
    assert count == 7 and bytes(head) == expected[-1].record_hash
    assert ledger.lastNonce(hexaddr(TA.address)) == 6
    assert ledger.lastNonce(hexaddr(ADMINISTRATOR.address)) == 1

    rebuilt = records_of(r1, chain) + records_of(r2, chain)
    assert [r.sealed() for r in rebuilt] == expected
    assert [r.attestation for r in rebuilt] == [e.attestation for e in [single, *batch]]
    report = verify_records(rebuilt, book.domain, require_attestation=True)
    assert report.ok, report.first_failure
    assert report.head_hash == bytes(head)


def test_each_call_emits_one_log_whatever_its_size(book, writer):
    r1 = book.append(book.entry(), writer)
    r2 = book.append_batch([book.entry() for _ in range(5)], writer)
    for receipt, first, n in ((r1, 1, 1), (r2, 2, 5)):
        (log,) = receipt.logs
        assert bytes(log["topics"][0]) == onchain.RECORDS_APPENDED_TOPIC
        assert int.from_bytes(bytes(log["topics"][1]), "big") == first
        assert len(receipt.decode_logs()[0].records) > 0
        assert receipt.decode_logs()[0].count == n


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_contract_and_chain_ledger_agree_on_arbitrary_records(ledger, writer, chain, data):
    book = Book(ledger, chain.chain_id)
    count, head = ledger.head()
    start = {a: ledger.lastNonce(hexaddr(a)) for a in (TA.address, ADMINISTRATOR.address)}
    entries = []
    for _ in range(data.draw(st.integers(1, 5))):
        who = data.draw(st.sampled_from([TA, ADMINISTRATOR]))
        start[who.address] += data.draw(st.integers(1, 2**20))
        event_type = data.draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                                       min_size=1, max_size=32))
        delta = data.draw(st.binary(min_size=1, max_size=400))
        entries.append(book.entry(who, nonce=start[who.address], event_type=event_type, delta=delta))
    receipt = book.append_batch(entries, writer)
    expected = expected_chain(book, [(e, receipt) for e in entries], chain, first_seq=count + 1,
                              previous=bytes(head))
    assert bytes(ledger.head()[1]) == expected[-1].record_hash
    assert [r.sealed() for r in records_of(receipt, chain)] == expected


def test_any_altered_field_breaks_the_recomputed_chain(book, writer, chain):
    entries = [book.entry() for _ in range(3)] + [book.entry(ADMINISTRATOR), book.entry()]
    receipt = book.append_batch(entries, writer)
    records = records_of(receipt, chain)
    assert verify_records(records, book.domain, require_attestation=True).ok

    alterations = {
        "seq": st.integers(0, 2**64 - 1),
        "actor": st.binary(min_size=20, max_size=20),
        "event_type": st.sampled_from(["ORDER_CANCELLED", "NAV_PUBLISHED", "X"]),
        "delta": st.binary(min_size=1, max_size=300),
        "nonce": st.integers(0, 2**64 - 1),
        "attestation_id": st.binary(min_size=32, max_size=32),
        "data_hash": st.binary(min_size=32, max_size=32),
        "previous_hash": st.binary(min_size=32, max_size=32),
        "timestamp": st.integers(0, 2**64 - 1),
        "block_height": st.integers(0, 2**64 - 1),
        "attestation": st.builds(Attestation, st.just(1), st.binary(min_size=65, max_size=65)),
    }

    @settings(max_examples=150, deadline=None)
    @given(st.integers(0, len(records) - 1), st.sampled_from(sorted(alterations)), st.data())
    def altered_record_is_caught(index, name, data):
        original = records[index]
        value = data.draw(alterations[name].filter(lambda v: v != getattr(original, name)))
        tampered = list(records)
        tampered[index] = replace(original, **{name: value})
        report = verify_records(tampered, book.domain, require_attestation=True)
        assert not report.ok, f"{name} of record {original.seq} altered and not caught"

    altered_record_is_caught()


# --- roles ---------------------------------------------------------------------------------

def test_only_writers_may_append(ledger, book, outsider):
    entry = book.entry()
    with ape.reverts(ledger.AccessControlUnauthorizedAccount, account=outsider.address,
                     neededRole=onchain.WRITER_ROLE):
        book.append(entry, outsider)
    with ape.reverts(ledger.AccessControlUnauthorizedAccount, account=outsider.address,
                     neededRole=onchain.WRITER_ROLE):
        book.append_batch([entry], outsider)


def test_only_the_admin_grants_and_revokes_roles(ledger, outsider, writer):
    with ape.reverts(ledger.AccessControlUnauthorizedAccount, account=outsider.address,
                     neededRole=bytes(32)):
        ledger.grantRole(onchain.WRITER_ROLE, outsider, sender=outsider)
    with ape.reverts(ledger.AccessControlUnauthorizedAccount, account=outsider.address,
                     neededRole=bytes(32)):
        ledger.revokeRole(onchain.WRITER_ROLE, writer, sender=outsider)


def test_zero_admin_is_refused_at_deployment(project, admin):
    with ape.reverts(project.CeFiEventLedger.ZeroAdmin):
        admin.deploy(project.CeFiEventLedger, "0x" + "00" * 20)


def test_actor_without_attester_role_is_rejected_naming_the_record(ledger, book, writer):
    batch = [book.entry(), book.entry(), book.entry(STRANGER)]
    with ape.reverts(ledger.ActorNotAttester, index=2, actor=hexaddr(STRANGER.address)):
        book.append_batch(batch, writer)


def test_revoked_attester_is_refused_and_the_revocation_is_logged(ledger, book, writer, admin):
    receipt = ledger.revokeRole(onchain.ATTESTER_ROLE, hexaddr(ADMINISTRATOR.address), sender=admin)
    (log,) = receipt.logs
    assert bytes(log["topics"][0]) == onchain.ROLE_REVOKED_TOPIC
    assert bytes(log["topics"][1]) == onchain.ATTESTER_ROLE
    assert bytes(log["topics"][2])[12:] == ADMINISTRATOR.address
    with ape.reverts(ledger.ActorNotAttester, index=0, actor=hexaddr(ADMINISTRATOR.address)):
        book.append(book.entry(ADMINISTRATOR), writer)


def test_pausing_is_for_pausers_and_stops_appends_never_reads(ledger, book, writer, pauser, outsider):
    book.append(book.entry(), writer)
    with ape.reverts(ledger.AccessControlUnauthorizedAccount, account=outsider.address,
                     neededRole=onchain.PAUSER_ROLE):
        ledger.pause(sender=outsider)
    ledger.pause(sender=pauser)
    entry = book.entry()
    with ape.reverts(ledger.EnforcedPause):
        book.append(entry, writer)
    with ape.reverts(ledger.EnforcedPause):
        book.append_batch([entry], writer)
    assert ledger.head()[0] == 1 and ledger.lastNonce(hexaddr(TA.address)) == 1
    assert bytes(ledger.eventDigest(hexaddr(TA.address), bytes32("X"), bytes(32), 1)) != bytes(32)
    with ape.reverts(ledger.AccessControlUnauthorizedAccount, account=outsider.address,
                     neededRole=onchain.PAUSER_ROLE):
        ledger.unpause(sender=outsider)
    ledger.unpause(sender=pauser)
    book.append(entry, writer)
    assert ledger.head()[0] == 2


def test_bls_records_need_the_offchain_attestation_role_and_verify_off_chain(
        ledger, book, writer, bls_writer, chain):
    nav = canonical_delta("NAV_PUBLISHED", {"isin": ISIN, "nav_date": "2026-11-25",
                                            "nav": "101.2345", "currency": "EUR"})
    entry = book.entry(ADMINISTRATOR, scheme=2, event_type="NAV_PUBLISHED", delta=nav)
    with ape.reverts(ledger.SchemeNeedsRole, index=0, scheme=2,
                     role=onchain.OFFCHAIN_ATTESTATION_ROLE):
        book.append(entry, writer)
    receipt = book.append(entry, bls_writer)
    (record,) = records_of(receipt, chain)
    assert record.attestation == entry.attestation
    assert record.attestation_id == entry.attestation.id
    report = verify_records([record], book.domain, require_attestation=True)
    assert report.ok, report.first_failure
    forged = replace(record, attestation=Attestation(2, entry.attestation.proof[:-1] + b"\0"))
    assert not verify_records([forged], book.domain, require_attestation=True).ok


# --- every revert reason -------------------------------------------------------------------

def test_empty_batch_is_refused(ledger, writer):
    with ape.reverts(ledger.EmptyBatch):
        ledger.appendBatch(b"", sender=writer)


def test_truncated_batch_is_refused_naming_the_record_it_ends_in(ledger, book, writer):
    first, second = book.entry(), book.entry()
    packed = onchain.pack_batch([first, second])
    at = len(onchain.pack_entry(first))
    for cut in (1, 30, 60):
        with ape.reverts(ledger.MalformedBatch, index=1, offset=at):
            ledger.appendBatch(packed[:-cut], sender=writer)
    # trailing bytes are a third record, too short to be one
    with ape.reverts(ledger.MalformedBatch, index=2, offset=2 * at):
        ledger.appendBatch(packed + b"\x01" * 10, sender=writer)


def test_event_types_outside_1_to_32_ascii_characters_are_refused(ledger, book, writer):
    good = onchain.pack_entry(book.entry())
    for type_len in (0, 33):
        bad = good[:20] + bytes([type_len]) + good[21:]
        with ape.reverts(ledger.InvalidEventType, index=1):
            ledger.appendBatch(good + bad, sender=writer)
    entry = book.entry()
    with ape.reverts(ledger.InvalidEventType, index=0):
        ledger.append(hexaddr(entry.actor), bytes(32), entry.nonce, 1, entry.delta,
                      entry.attestation.proof, sender=writer)
    with ape.reverts(ledger.InvalidEventType, index=0):
        ledger.append(hexaddr(entry.actor), b"ORD\xc9R".ljust(32, b"\0"), entry.nonce, 1,
                      entry.delta, entry.attestation.proof, sender=writer)


def test_empty_or_oversized_delta_is_refused(ledger, book, writer):
    entry = book.entry()
    with ape.reverts(ledger.EmptyDelta, index=0):
        ledger.append(hexaddr(entry.actor), bytes32(entry.event_type), entry.nonce, 1, b"",
                      entry.attestation.proof, sender=writer)
    with ape.reverts(ledger.DeltaTooLong, index=0, length=65536):
        ledger.append(hexaddr(entry.actor), bytes32(entry.event_type), entry.nonce, 1,
                      b"x" * 65536, entry.attestation.proof, sender=writer)


def test_a_record_never_reaches_the_ledger_twice(ledger, book, writer):
    batch = [book.entry() for _ in range(3)]
    book.append_batch(batch, writer)
    with ape.reverts(ledger.NonceNotIncreasing, index=0, actor=hexaddr(TA.address), nonce=1,
                     lastNonce=3):
        book.append_batch(batch, writer)
    with ape.reverts(ledger.NonceNotIncreasing, index=0, nonce=3, lastNonce=3):
        book.append(batch[-1], writer)
    # ...nor twice within one batch
    again = book.entry()
    with ape.reverts(ledger.NonceNotIncreasing, index=1, nonce=again.nonce, lastNonce=again.nonce):
        book.append_batch([again, again], writer)


def test_unknown_scheme_is_refused(ledger, book, writer):
    entry = book.entry()
    unknown = replace(entry, attestation=Attestation(7, entry.attestation.proof))
    with ape.reverts(ledger.UnknownScheme, index=0, scheme=7):
        book.append(unknown, writer)


def test_malformed_proofs_are_refused(ledger, book, writer, bls_writer):
    entry = book.entry()
    proof = entry.attestation.proof
    s = int.from_bytes(proof[32:64], "big")
    twin = proof[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - proof[64]])
    for bad in (proof[:64], proof + b"\0", proof[:64] + b"\x1d", proof[:64] + b"\x00", twin):
        with ape.reverts(ledger.MalformedProof, index=0, scheme=1, length=len(bad)):
            book.append(replace(entry, attestation=Attestation(1, bad)), writer)
    bls = book.entry(ADMINISTRATOR, scheme=2).attestation.proof
    for bad in (b"", b"\x00" + bls[1:], bls[:-1], b"\x03" + bls[1:]):
        with ape.reverts(ledger.MalformedProof, index=0, scheme=2, length=len(bad)):
            book.append(replace(entry, attestation=Attestation(2, bad)), bls_writer)


def test_signature_by_anyone_but_the_actor_or_for_another_ledger_is_refused(ledger, book, writer):
    entry = book.entry()
    event = AttestedEvent(entry.actor, entry.event_type, data_hash(entry.delta), entry.nonce)
    by_stranger = Attestation(1, _sign_as(STRANGER, event, book.domain))
    with ape.reverts(ledger.SignatureMismatch, index=0, actor=hexaddr(TA.address),
                     recovered=hexaddr(STRANGER.address)):
        book.append(replace(entry, attestation=by_stranger), writer)
    for other in (LedgerDomain(book.domain.chain_id + 1, book.domain.ledger_address),
                  LedgerDomain(book.domain.chain_id, b"\x42" * 20)):
        elsewhere = Eip712Scheme().attest(event, other, [TA])
        with ape.reverts(ledger.SignatureMismatch, index=0, actor=hexaddr(TA.address)):
            book.append(replace(entry, attestation=elsewhere), writer)
    # the same signature over other facts
    with ape.reverts(ledger.SignatureMismatch, index=0, actor=hexaddr(TA.address)):
        book.append(replace(entry, delta=entry.delta + b" "), writer)


def _sign_as(who: Any, event: AttestedEvent, domain: LedgerDomain) -> bytes:
    sig = who.sign_digest(digest(event, domain))
    return sig[:64] + bytes([sig[64] + 27])


# --- all or nothing ------------------------------------------------------------------------

def test_a_bad_record_reverts_its_whole_batch_and_changes_nothing(ledger, book, writer, chain):
    book.append(book.entry(), writer)
    before = ledger.head()
    good = [book.entry() for _ in range(3)]
    bad = replace(book.entry(), delta=b'{"tampered":true}')
    tail = book.entry()
    with ape.reverts(ledger.SignatureMismatch, index=3):
        book.append_batch([*good, bad, tail], writer)
    assert ledger.head() == before
    assert ledger.lastNonce(hexaddr(TA.address)) == 1
    receipt = book.append_batch(good, writer)
    assert ledger.head()[0] == before[0] + 3
    assert [r.seq for r in records_of(receipt, chain)] == [2, 3, 4]
