"""The batch trie gives the roots, values and proofs of Ethereum's trie (py-trie as reference)."""

from __future__ import annotations

import rlp
from eth.db.trie import make_trie_root_and_nodes
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from chain.execution import mpt

keys = st.one_of(st.binary(min_size=32, max_size=32), st.binary(min_size=1, max_size=6))
values = st.binary(min_size=1, max_size=70)
ops = st.lists(st.tuples(keys, st.one_of(st.none(), values)), max_size=60)


def _load_from(store: dict[bytes, bytes]) -> mpt.Loader:
    def load(h: bytes) -> mpt.Node:
        return mpt.decode_node(store[h])
    return load


@settings(max_examples=120, deadline=None)
@given(first=ops, second=ops)
def test_root_values_and_stored_nodes_match_py_trie_across_two_commits(first, second):
    reference = HexaryTrie({})
    store: dict[bytes, bytes] = {}
    load = _load_from(store)
    root: mpt.Child = None
    expected: dict[bytes, bytes] = {}
    for batch in (first, second):
        for key, value in batch:
            if value is None:
                root = mpt.delete(root, key, load)
                if key in reference:
                    del reference[key]
                expected.pop(key, None)
            else:
                root = mpt.put(root, key, value, load)
                reference[key] = value
                expected[key] = value
        root_hash = mpt.commit(root, store)
        assert root_hash == reference.root_hash
        # reopen from the hash alone: every node the trie needs was returned by commit
        reopened: mpt.Child = None if root_hash == mpt.BLANK_ROOT else root_hash
        for key, value in expected.items():
            assert mpt.get(reopened, key, load) == value
        root = reopened


@settings(max_examples=80, deadline=None)
@given(items=st.dictionaries(st.binary(min_size=32, max_size=32), values, min_size=1, max_size=40),
       probe=st.binary(min_size=32, max_size=32))
def test_proofs_verify_with_py_trie_for_present_and_absent_keys(items, probe):
    root_hash, nodes = mpt.root_of(items.items())
    load = _load_from(nodes)
    for key in [*items, probe]:
        proof = mpt.prove(root_hash, key, load)
        assert HexaryTrie.get_from_proof(root_hash, key, [rlp.decode(p) for p in proof]) == \
            items.get(key, b"")


@settings(max_examples=50, deadline=None)
@given(st.lists(values, max_size=300))
def test_ordered_root_is_py_evm_transactions_root(items):
    class Item:
        def __init__(self, b: bytes) -> None:
            self.b = b

        def encode(self) -> bytes:
            return self.b

    assert mpt.ordered_root(items) == make_trie_root_and_nodes([Item(i) for i in items])[0]


def test_old_root_is_unchanged_by_later_writes():
    store: dict[bytes, bytes] = {}
    load = _load_from(store)
    r1 = mpt.put(None, b"\x01" * 32, b"one", load)
    h1 = mpt.commit(r1, store)
    r2 = mpt.put(r1, b"\x01" * 32, b"two", load)
    mpt.commit(r2, store)
    assert mpt.get(r1, b"\x01" * 32, load) == b"one"
    assert mpt.get(h1, b"\x01" * 32, load) == b"one"


def test_a_missing_node_is_reported_not_read_as_empty():
    root_hash, _nodes = mpt.root_of([(bytes([i]) * 32, b"v" * 40) for i in range(20)])

    def load(h: bytes) -> mpt.Node:
        raise mpt.MissingNode(h)

    try:
        mpt.get(root_hash, b"\x05" * 32, load)
    except mpt.MissingNode as exc:
        assert exc.args[0] == root_hash
    else:
        raise AssertionError("a lookup through a missing node must fail")
