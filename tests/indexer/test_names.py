"""Names the indexer puts into SQL are checked to the end of the string."""

from __future__ import annotations

import pytest

from indexer.abc import IndexerError
from indexer.outbox import check_table
from indexer.pg import StoreError, check_schema


def test_schema_names_end_at_the_end_of_the_string():
    assert check_schema("smartta_indexer") == "smartta_indexer"
    # `$` would have accepted a final newline, which then reaches SQL as part of the name
    for bad in ("smartta_indexer\n", "Smartta", "1abc", "a;drop"):
        with pytest.raises(StoreError, match="schema name"):
            check_schema(bad)


def test_outbox_table_names_end_at_the_end_of_the_string():
    assert check_table("ta.outbox") == "ta.outbox"
    for bad in ("ta.outbox\n", "ta.out box", "ta.outbox.x"):
        with pytest.raises(IndexerError, match="outbox table"):
            check_table(bad)
