"""The ledger record: canonical delta, personal-data guard, hash chain and its verifier."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.abc import AttestedEvent, LedgerDomain
from chain.attest import Eip712Scheme
from chain.attest.keys import LocalSigner
from chain.ledger import (
    DeltaError,
    LedgerRecord,
    LedgerWalker,
    PersonalDataError,
    build_record,
    canonical_delta,
    data_hash,
    ledger_anchor,
    parse_delta,
    verify_records,
)
from chain.ledger.schema import isin_check_digit

ACTOR = LocalSigner((21).to_bytes(32, "big"))
INTRUDER = LocalSigner((22).to_bytes(32, "big"))
DOMAIN = LedgerDomain(2026, b"\x77" * 20)
ISIN = "LU000000000" + isin_check_digit("LU000000000")
INVESTOR = "inv_0123456789abcdef"


def _order(n: int) -> dict[str, object]:
    return {"order": f"ORD-{n}", "investor": INVESTOR, "isin": ISIN, "side": "subscription",
            "amount": f"{1000 + n}.5", "currency": "EUR", "dealing_date": "2026-11-25",
            "channel": "rest"}


def _ledger(n: int, signer: LocalSigner = ACTOR) -> list[LedgerRecord]:
    records, previous = [], ledger_anchor(DOMAIN)
    for seq in range(1, n + 1):
        delta = canonical_delta("ORDER_PLACED", _order(seq))
        att = Eip712Scheme().attest(AttestedEvent(signer.address, "ORDER_PLACED", data_hash(delta), seq),
                                    DOMAIN, [signer])
        r = build_record(seq=seq, actor=signer.address, event_type="ORDER_PLACED", delta=delta,
                         nonce=seq, attestation=att, previous_hash=previous,
                         timestamp=1_764_000_000 + seq, block_height=10 + seq)
        records.append(r)
        previous = r.record_hash
    return records


def test_delta_encoding_is_rfc8785_canonical_and_order_independent():
    a = canonical_delta("NAV_PUBLISHED", {"nav": "101.25", "isin": ISIN, "currency": "EUR",
                                          "nav_date": "2026-11-24"})
    b = canonical_delta("NAV_PUBLISHED", {"nav_date": "2026-11-24", "currency": "EUR", "isin": ISIN,
                                          "nav": "101.25"})
    assert a == b == (b'{"currency":"EUR","isin":"' + ISIN.encode() +
                      b'","nav":"101.25","nav_date":"2026-11-24"}')
    assert parse_delta(a)["nav"] == "101.25"


def test_non_canonical_delta_bytes_are_refused():
    with pytest.raises(DeltaError, match="canonical"):
        parse_delta(b'{"b": "1", "a": "2"}')


@pytest.mark.parametrize("field", ["name", "email", "tax_id", "date_of_birth", "iban", "Name"])
def test_personal_fields_never_reach_the_chain(field):
    delta = {"investor": INVESTOR, "country": "LU", "category": "retail", field: "x"}
    with pytest.raises(PersonalDataError, match="personal"):
        canonical_delta("INVESTOR_ONBOARDED", delta)


def test_personal_data_hidden_in_a_reference_is_caught():
    with pytest.raises(PersonalDataError, match="e-mail|IBAN"):
        canonical_delta("ORDER_CANCELLED", {"order": "ORD-1", "reason": "jane.doe@example.com"})
    with pytest.raises(PersonalDataError):
        canonical_delta("ORDER_CANCELLED", {"order": "ORD-1", "reason": "LU280019400644750000"})


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"amount": "1000.50"}, "trailing zeros"),
        ({"amount": 1000.5}, "decimal string"),
        ({"isin": "LU0000000000"}, "check digit"),
        ({"dealing_date": "2026-13-01"}, "ISO date"),
        ({"side": "buy"}, "one of"),
        ({"surprise": "x"}, "unknown field"),
    ],
)
def test_deltas_off_schema_are_refused_with_a_hint(patch, reason):
    with pytest.raises(DeltaError, match=reason):
        canonical_delta("ORDER_PLACED", {**_order(1), **patch})


def test_missing_required_field_and_unknown_event_type():
    order = _order(1)
    del order["isin"]
    with pytest.raises(DeltaError, match="lacks required fields: isin"):
        canonical_delta("ORDER_PLACED", order)
    with pytest.raises(DeltaError, match="unknown event type"):
        canonical_delta("ORDER_TELEPORTED", {})


def test_a_clean_ledger_verifies_from_the_anchor():
    records = _ledger(5)
    assert records[0].previous_hash == ledger_anchor(DOMAIN)
    report = verify_records(records, DOMAIN, require_attestation=True)
    assert report.ok and report.checked == 5 and report.head_hash == records[-1].record_hash


def test_changed_delta_is_named_at_its_sequence_number():
    records = _ledger(5)
    records[2] = replace(records[2], delta=records[2].delta.replace(b"EUR", b"USD"))
    report = verify_records(records, DOMAIN)
    assert (report.first_failure.seq, report.first_failure.check) == (3, "data_hash")
    assert len(report.findings) == 1


def test_changed_delta_with_matching_data_hash_breaks_the_record_hash():
    records = _ledger(4)
    delta = records[1].delta.replace(b"EUR", b"USD")
    records[1] = replace(records[1], delta=delta, data_hash=data_hash(delta))
    f = verify_records(records, DOMAIN).first_failure
    assert (f.seq, f.check) == (2, "record_hash")


def test_changed_delta_rehashed_all_the_way_down_still_fails_the_attestation():
    records = _ledger(4)
    delta = records[1].delta.replace(b"EUR", b"USD")
    forged = [records[0]]
    previous = records[0].record_hash
    for r in records[1:]:
        d = delta if r.seq == 2 else r.delta
        nr = replace(r, delta=d, data_hash=data_hash(d), previous_hash=previous, record_hash=None).sealed()
        forged.append(nr)
        previous = nr.record_hash
    f = verify_records(forged, DOMAIN).first_failure
    assert (f.seq, f.check) == (2, "attestation")


def test_removed_record_from_the_middle_is_a_sequence_gap():
    records = _ledger(5)
    del records[2]
    f = verify_records(records, DOMAIN).first_failure
    assert (f.seq, f.check) == (4, "sequence") and "3 are missing" in f.message


def test_broken_link_is_named():
    records = _ledger(3)
    records[2] = replace(records[2], previous_hash=b"\x00" * 32, record_hash=None).sealed()
    f = verify_records(records, DOMAIN).first_failure
    assert (f.seq, f.check) == (3, "link")


def test_off_schema_delta_does_not_hide_a_broken_link():
    records = _ledger(3)
    delta = b'{"unknown":"field"}'
    records[1] = replace(records[1], delta=delta, data_hash=data_hash(delta),
                         previous_hash=b"\x01" * 32, record_hash=None)
    f = verify_records(records, DOMAIN).first_failure
    assert (f.seq, f.check) == (2, "link")


def test_a_record_that_cannot_be_hashed_is_named_not_raised():
    records = _ledger(3)
    records[1] = replace(records[1], event_type="\xc9NVESTOR_ONBOARDED", record_hash=None)
    report = verify_records(records, DOMAIN)
    assert (report.first_failure.seq, report.first_failure.check) == (2, "record_hash")
    assert report.checked == 3


def test_forged_attestation_is_named():
    records = _ledger(3)
    forged = _ledger(3, signer=INTRUDER)[1].attestation
    records[1] = replace(records[1], attestation=forged)
    f = verify_records(records, DOMAIN).first_failure
    assert (f.seq, f.check) == (2, "attestation")


def test_ledger_of_another_contract_does_not_link():
    records = _ledger(2)
    f = verify_records(records, LedgerDomain(2026, b"\x78" * 20)).first_failure
    assert (f.seq, f.check) == (1, "link")


def test_unauthorised_actor_is_named_when_the_caller_knows_the_attesters():
    records = _ledger(2)
    report = verify_records(records, DOMAIN,
                            authorise=lambda r: None if r.seq == 1 else "actor lost ATTESTER_ROLE")
    assert (report.first_failure.seq, report.first_failure.check) == (2, "authorisation")


def test_json_round_trip_keeps_every_field():
    r = _ledger(1)[0]
    assert LedgerRecord.from_json(r.to_json()) == r
    assert LedgerRecord.from_json(r.to_json()).attestation == r.attestation


FIELDS = ["seq", "actor", "event_type", "delta", "nonce", "attestation_id", "data_hash",
          "previous_hash", "timestamp", "block_height"]


@given(st.sampled_from(FIELDS), st.integers(0, 3), st.data())
@settings(max_examples=120, deadline=None)
def test_any_altered_field_breaks_the_recomputed_chain(field, index, data):
    records = _ledger(4)
    r = records[index]
    value = getattr(r, field)
    if isinstance(value, int):
        new = value + data.draw(st.integers(1, 1000))
    elif isinstance(value, str):
        new = "ORDER_CANCELLED"
    else:
        pos = data.draw(st.integers(0, len(value) - 1))
        new = value[:pos] + bytes([value[pos] ^ data.draw(st.integers(1, 255))]) + value[pos + 1:]
    records[index] = replace(r, **{field: new})
    assert not verify_records(records, DOMAIN).ok


u64 = st.integers(0, 2**64 - 1)


@given(seq=u64, actor=st.binary(min_size=20, max_size=20), nonce=u64, timestamp=u64, height=u64,
       hashes=st.lists(st.binary(min_size=32, max_size=32), min_size=3, max_size=3),
       event_type=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                          max_size=32))
@settings(max_examples=200, deadline=None)
def test_record_hash_by_hand_equals_the_abi_encoding(seq, actor, nonce, timestamp, height, hashes,
                                                      event_type):
    from eth_abi.abi import encode as abi_encode
    from eth_hash.auto import keccak

    from chain.attest.eip712 import event_type_bytes32
    from chain.ledger.record import _RECORD_ABI, RECORD_TYPEHASH, record_hash

    r = LedgerRecord(seq=seq, actor=actor, event_type=event_type, delta=b"{}", nonce=nonce,
                     attestation_id=hashes[0], data_hash=hashes[1], previous_hash=hashes[2],
                     timestamp=timestamp, block_height=height)
    expected = keccak(abi_encode(_RECORD_ABI, [RECORD_TYPEHASH, seq, actor,
                                               event_type_bytes32(event_type), hashes[1], nonce,
                                               hashes[0], hashes[2], timestamp, height]))
    assert record_hash(r) == expected


json_scalars = st.one_of(
    st.text(), st.booleans(), st.none(),
    st.integers(-(2**53) + 1, 2**53 - 1), st.integers(), st.floats(allow_nan=False,
                                                                   allow_infinity=False))


@given(st.dictionaries(st.text(max_size=8), json_scalars, max_size=6))
@settings(max_examples=400, deadline=None)
def test_fast_canonical_form_is_rfc8785_whenever_it_answers(value):
    import rfc8785

    from chain.ledger.record import _plain_canonical

    fast = _plain_canonical(value)
    if fast is None:
        return
    assert fast == rfc8785.dumps(value)
    assert parse_delta(fast) == value


@pytest.mark.parametrize("raw", [b'{"a":"\\u00e9"}', b'{"a":1.0}', b'{"a":1,"a":2}',
                                 b'{"b":1,"a":2}', b'{"a":"\\ud800"}', b'{"a": 1}',
                                 b'{"a":9007199254740993}'])
def test_non_canonical_or_unrepresentable_deltas_are_still_refused(raw):
    with pytest.raises(DeltaError):
        parse_delta(raw)



def test_the_walker_hands_over_each_checked_delta_and_none_for_one_off_schema():
    records = _ledger(2)
    walker = LedgerWalker(DOMAIN)
    assert walker.check(records[0]) is None and walker.delta == _order(1)
    off = b'{"unknown":"field"}'  # hashed and linked correctly, but off its schema
    changed = replace(records[1], delta=off, data_hash=data_hash(off), record_hash=None)
    finding = walker.check(changed)
    assert finding is not None and finding.check == "delta" and walker.delta is None
