"""The LMDB store: one transaction per block, indexes that follow rewinds, refusals that say
what to do."""

from __future__ import annotations

import dataclasses

import pytest

from chain.qbft.header import BlockHeader
from node.store.chaindb import BlockRecord, ChainStore, StoredReceipt, StoreError

from ..execution.devnet import genesis


def _record(parent: BlockHeader, number: int, logs: int) -> BlockRecord:
    header = dataclasses.replace(parent, number=number, timestamp=parent.timestamp + number)
    h = bytes([number]) * 32
    tx_hash = bytes([number, 1]) * 16
    receipts = [StoredReceipt(tx_hash, 2, 1, 21_000, 21_000, 0, b"\x01" * 20, b"\x02" * 20, None,
                              None, 0, logs)]
    entries = [(bytes([0xA0 + i % 2]) * 20, (bytes([0xB0 + i]) * 32,), b"data", 0, tx_hash)
               for i in range(logs)]
    return BlockRecord(header, h, (b"\x02raw",), (), receipts, entries, {h + b"n": b"node"}, b"{}")


@pytest.fixture
def store(tmp_path):
    s = ChainStore(tmp_path)
    g = genesis(1).header()
    s.write_block(BlockRecord(g, b"\x00" * 32, (), (), [], [], {}, b"{}"))
    for n in range(1, 6):
        s.write_block(_record(g, n, logs=n))
    yield s
    s.close()


def test_a_block_is_readable_in_full_after_write(store):
    assert store.head() == bytes([5]) * 32
    assert store.header(bytes([3]) * 32).number == 3
    assert store.body(bytes([3]) * 32) == ((b"\x02raw",), ())
    assert store.receipts(bytes([3]) * 32)[0].log_count == 3
    assert store.tx_location(bytes([3, 1]) * 16) == (3, 0)
    assert store.node(bytes([3]) * 32 + b"n") == b"node"
    assert [lg.log_index for lg in store.block_logs(4)] == [0, 1, 2, 3]


def test_log_queries_use_the_address_and_topic_indexes(store):
    a0, a1 = b"\xa0" * 20, b"\xa1" * 20
    by_address = list(store.logs(0, 5, [a1], []))
    assert {lg.address for lg in by_address} == {a1}
    assert [lg.block_number for lg in by_address] == [2, 3, 4, 4, 5, 5]
    topic = b"\xb2" * 32
    assert [lg.block_number for lg in store.logs(0, 5, [], [[topic]])] == [3, 4, 5]
    assert list(store.logs(0, 2, [], [[topic]])) == []
    assert [lg.block_number for lg in store.logs(4, 4, [a0], [[topic]])] == [4]
    assert len(list(store.logs(0, 5, [], []))) == 15


def test_rewind_drops_blocks_and_every_index_entry_above(store):
    store.rewind(2, b'{"head": 2}')
    assert store.head() == bytes([2]) * 32 and store.hash_at(3) is None
    assert store.header(bytes([4]) * 32) is None and store.tx_location(bytes([4, 1]) * 16) is None
    assert [lg.block_number for lg in store.logs(0, 10, [], [])] == [1, 2, 2]
    assert list(store.logs(0, 10, [], [[b"\xb2" * 32]])) == []
    assert store.meta(b"validators") == b'{"head": 2}'


def test_a_store_of_another_schema_is_refused(tmp_path):
    s = ChainStore(tmp_path)
    with s.env.begin(write=True) as txn:
        txn.put(b"schema", b"99", db=s._meta)
    s.close()
    with pytest.raises(StoreError, match="schema"):
        ChainStore(tmp_path)
