"""The in-memory node store keeps exactly what the latest state reaches: after pruning, every
account, slot and code of that state still reads back, older states are gone, and a store
missing a node the state needs is refused rather than pruned into a wrong state."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.execution import mpt
from chain.execution.memstore import MemoryNodes, reachable
from chain.execution.statedb import StateDB, StateSource

ADDRESSES = [bytes([i]) * 20 for i in range(1, 9)]

change = st.tuples(st.sampled_from(ADDRESSES), st.integers(0, 5), st.integers(0, 3),
                   st.sampled_from([b"", b"\x60\x00", b"\x60\x01\x60\x02"]))


def _commit(store: MemoryNodes, root: bytes, changes) -> bytes:
    db = StateDB(StateSource(store.read), root)
    for address, slot, value, code in changes:
        db.touch_account(address)
        db.set_balance(address, db.get_balance(address) + 1)
        db.set_storage(address, slot, value)
        if code:
            db.set_code(address, code)
    new = bytes(db.make_state_root())
    store.write(db.nodes)
    return new


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(change, min_size=1, max_size=6), min_size=2, max_size=8))
def test_pruned_store_still_holds_every_value_of_the_latest_state(blocks):
    store = MemoryNodes()
    root = mpt.BLANK_ROOT
    roots = []
    for changes in blocks:
        root = _commit(store, root, changes)
        roots.append(root)
    before = {a: _read(store, root, a) for a in ADDRESSES}
    size = len(store)
    store.prune(root)
    assert len(store) <= size
    assert {a: _read(store, root, a) for a in ADDRESSES} == before
    assert reachable(root, store.read) == set(store._items)
    for old in roots[:-1]:
        if old != root and old != mpt.BLANK_ROOT:
            assert store.read(old) is None


def _read(store: MemoryNodes, root: bytes, address: bytes):
    db = StateDB(StateSource(store.read), root)
    return (db.get_balance(address), db.get_nonce(address), db.get_code(address),
            tuple(db.get_storage(address, s) for s in range(6)))


def test_store_missing_a_node_of_the_state_is_refused_not_pruned():
    store = MemoryNodes()
    root = _commit(store, mpt.BLANK_ROOT, [(a, 1, 7, b"\x60\x00") for a in ADDRESSES])
    lost = next(h for h in store._items if h != root)
    del store._items[lost]
    with pytest.raises(mpt.MissingNode):
        store.prune(root)
    assert len(store) > 0


def test_pruning_is_due_when_the_store_doubles_since_the_last_prune():
    store = MemoryNodes(prune_floor=10)
    root = mpt.BLANK_ROOT
    while not store.due():
        root = _commit(store, root, [(ADDRESSES[len(store) % 8], len(store) % 6, len(store), b"")])
    store.prune(root)
    kept = len(store)
    assert not store.due()
    while len(store) <= max(10, 2 * kept):
        assert not store.due()
        root = _commit(store, root, [(ADDRESSES[len(store) % 8], len(store) % 6, len(store), b"")])
    assert store.due()
