"""chain.fastrlp gives pyrlp's bytes and refuses what pyrlp's strict decoder refuses."""

from __future__ import annotations

import pytest
import rlp
from hypothesis import given, settings
from hypothesis import strategies as st
from rlp.exceptions import DecodingError

from chain import fastrlp

items = st.recursive(st.binary(max_size=70) | st.integers(0, 2**256),
                     lambda children: st.lists(children, max_size=6), max_leaves=25)


@given(items)
@settings(max_examples=400)
def test_encoding_matches_pyrlp_and_decodes_back(item):
    encoded = fastrlp.encode(item)
    assert encoded == rlp.encode(item)
    assert fastrlp.decode(encoded) == rlp.decode(encoded)


@given(st.binary(max_size=80))
@settings(max_examples=600)
def test_arbitrary_bytes_are_accepted_exactly_when_pyrlp_accepts_them(data):
    try:
        expected = rlp.decode(data, strict=True)
    except (DecodingError, IndexError):
        expected = None
    try:
        ours = fastrlp.decode(data)
    except fastrlp.RLPError:
        ours = None
    assert ours == expected


@pytest.mark.parametrize("bad", ["8100", "b800", "b90001" + "00", "c2", "8180" + "00", "00" + "00", ""])
def test_non_canonical_or_truncated_input_is_refused(bad):
    with pytest.raises(fastrlp.RLPError):
        fastrlp.decode(bytes.fromhex(bad))


def test_booleans_and_negatives_are_refused():
    with pytest.raises(TypeError):
        fastrlp.encode(True)
    with pytest.raises(ValueError):
        fastrlp.encode(-1)
