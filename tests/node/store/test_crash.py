"""A node killed with SIGKILL at any moment restarts with its chain intact.

A real process mines blocks (ten transactions each, with logs) into LMDB as fast as it can;
the test kills it at random moments, reopens the store and checks that the head names a
complete block whose state, receipts, logs and indexes are all there, that every earlier block
is intact, and that the chain goes on.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.abc import LogFilter

from ..execution.devnet import USERS, addr, genesis, open_chain, produce, signers

HERE = Path(__file__).parent
ROOT = HERE.parents[2]


def _kill_at_random(data: Path, rng: random.Random) -> None:
    proc = subprocess.Popen([sys.executable, str(HERE / "crashnode.py"), str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            raise AssertionError(f"crash node did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(rng.uniform(0.05, 0.8))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _check_consistent(data: Path) -> int:
    chain = open_chain(data, genesis(1))
    try:
        head = chain.head.number
        total = 0
        for n in range(head + 1):
            block = chain.block(n)
            receipts = chain.receipts(n)
            assert block is not None and receipts is not None, f"block {n} incomplete"
            assert len(receipts) == len(block.transactions)
            total += len(block.transactions)
        last = chain.receipts(head)
        for r in last:
            loc = chain.transaction(r.tx_hash)
            assert loc is not None and loc.block_number == head
        logs = chain.logs(LogFilter(head, head))
        assert len(logs) == sum(len(r.logs) for r in last)
        nonces = sum(chain.account(addr(u), head).nonce for u in USERS[:11])
        assert nonces == total, "state does not match the blocks"
        if head >= 1:
            probe = chain.receipts(1)[0].contract_address
            assert chain.storage_at(probe, 0, head) == total - 1  # every call bumped once
        return head
    finally:
        chain.close()


def _run(tmp_path: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    data = tmp_path / "node"
    heads = []
    for _ in range(kills):
        _kill_at_random(data, rng)
        heads.append(_check_consistent(data))
    assert heads[-1] > 0 and heads == sorted(heads)
    chain = open_chain(data, genesis(1))
    before = chain.head.number
    produce(chain, signers(1))
    assert chain.head.number == before + 1


def test_sigkill_during_block_writes_leaves_a_consistent_store(tmp_path):
    _run(tmp_path, kills=2, seed=1)


@pytest.mark.slow
def test_sigkill_soak_many_random_moments(tmp_path):
    _run(tmp_path, kills=40, seed=int(time.time()))
