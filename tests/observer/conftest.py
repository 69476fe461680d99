"""Fixtures for the observer: sealed chains, hostile nodes serving them, and a verifier run.

``node_factory`` yields a started HostileNode for a chain; the real-node variants (our node,
Besu) plug in the same way once a network can be started from the tests: anything that gives
an RPC URL and the genesis file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from devchain import Chain, standard_chain
from hostile import HostileNode

from chain.abc import LedgerDomain
from chain.qbft.genesis import Genesis
from observer.checkpoint import CheckpointStore
from observer.records import LedgerWalk
from observer.rpc import RpcSource
from observer.verify import Report, Verifier


@pytest.fixture(scope="session")
def chain16() -> Chain:
    return standard_chain(16)


@pytest.fixture
def node_factory() -> Iterator[Callable[[Chain], HostileNode]]:
    started: list[HostileNode] = []

    def make(chain: Chain) -> HostileNode:
        node = HostileNode(chain).__enter__()
        started.append(node)
        return node

    yield make
    for node in started:
        node.__exit__(None, None, None)


def write_genesis(chain: Chain, directory: Path) -> Path:
    path = directory / "genesis.json"
    path.write_text(json.dumps(chain.genesis_json, indent=1))
    return path


def run_verifier(genesis: Genesis, urls: list[str], *, store: CheckpointStore | None = None,
                 jobs: int = 1, to: int | None = None, chunk: int = 200,
                 from_block: int | None = None, ledger: LedgerDomain | None = None) -> Report:
    sources = [RpcSource(u) for u in urls]
    walk = LedgerWalk(sources[0], ledger) if ledger is not None else None
    verifier = Verifier(genesis, sources, store=store, jobs=jobs, chunk=chunk, records=walk)
    try:
        return verifier.advance(to, from_block)
    finally:
        verifier.close()
