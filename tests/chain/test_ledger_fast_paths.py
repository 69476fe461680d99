"""The verifier's per-record shortcuts decide exactly what the general code decides: the
personal-data pre-filters, the string-only kind checks, the direct keccak256, the cached
event-type encoding."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.abc import AttestationError
from chain.attest.eip712 import event_type_bytes32, keccak256
from chain.ledger import DeltaError, PersonalDataError
from chain.ledger.schema import _EMAIL, _IBAN, KINDS, SCHEMAS, Field, check_delta

# Text that often comes close to an e-mail address or an IBAN: plain text finds them rarely.
near_misses = st.text(alphabet="AZLUDEaz09@. _-\n\t\u00e9\u0130\u01c5", max_size=40)
texts = st.one_of(st.text(max_size=40), near_misses, st.from_regex(_EMAIL),
                  st.from_regex(_IBAN),
                  st.builds(lambda a, b: a + b, st.from_regex(_IBAN, fullmatch=True), near_misses))


@given(texts)
@settings(max_examples=600, deadline=None)
def test_personal_data_prefilters_refuse_exactly_what_the_patterns_find(value):
    looks_personal = bool(_EMAIL.search(value) or _IBAN.search(value))
    try:
        check_delta("ORDER_CANCELLED", {"order": "ORD-1", "reason": value})
    except PersonalDataError:
        assert looks_personal
    except DeltaError:
        assert not looks_personal
    else:
        assert not looks_personal


kind_samples = st.one_of(
    st.text(max_size=70), st.from_regex(r"^0x[0-9a-f]{40}$"), st.from_regex(r"^0x[0-9a-f]{64}$"),
    st.from_regex(r"^[a-z]{2,12}_[0-9a-f]{16,64}$"), st.from_regex(r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"),
    st.from_regex(r"^[A-Z]{2,3}$"), st.sampled_from(["LU0000000009", "US0378331005", "-0",
                                                     "2026-11-24", "2026-11-24T12:00:00Z",
                                                     "daily", "retail", "subscription"]),
    st.dates().map(str))
fields = [Field(kind) for kind in KINDS] + [
    f for schema in SCHEMAS.values() for f in schema.fields.values() if f.choices]


@pytest.mark.parametrize("spec", fields, ids=lambda f: f.kind + "/".join(f.choices))
@given(value=kind_samples)
@settings(max_examples=150, deadline=None)
def test_string_kind_checks_agree_with_the_kind_checks(spec, value):
    assert bool(spec.accepts_text(value)) == spec.accepts(value)


@given(st.binary(max_size=300))
def test_direct_keccak256_is_eth_hash_keccak(data):
    assert keccak256(data) == bytes(keccak(data))


def test_cached_event_type_encoding_still_refuses_bad_types_every_time():
    assert event_type_bytes32("ORDER_PLACED") == b"ORDER_PLACED".ljust(32, b"\x00")
    for _ in range(2):
        with pytest.raises(AttestationError):
            event_type_bytes32("X" * 33)
        with pytest.raises(AttestationError):
            event_type_bytes32("ORDER_PLAC\u00e9")



ORDER = {"order": "ORD-1", "investor": "inv_8f3a9c2e1b7d4a60", "isin": "US0378331005",
         "side": "subscription", "amount": "100.5", "currency": "EUR",
         "dealing_date": "2026-11-24", "channel": "rest"}


@pytest.mark.parametrize("field, value", [
    ("order", "ORD-1\n"), ("isin", "US0378331005\n"), ("investor", "inv_8f3a9c2e1b7d4a60\n"),
    ("amount", "100.5\n"), ("currency", "EUR\n"),
])
def test_a_trailing_newline_is_not_a_valid_value(field, value):
    # `$` in a pattern matches before a final "\n": every kind must end at the string's end
    check_delta("ORDER_PLACED", ORDER)
    with pytest.raises(DeltaError, match=field):
        check_delta("ORDER_PLACED", {**ORDER, field: value})
