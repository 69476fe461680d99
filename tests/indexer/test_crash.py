"""SIGKILL the indexer (a real process, with the real ClickHouse engine on disk) inside a batch,
at each step and at random moments, and restart PostgreSQL under it: after it resumes, both
stores hold every record once, exactly as the chain says."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chainkit import ROOT, FundScenario
from conftest import pgserver_dir
from oracle import assert_no_gaps_or_duplicates, assert_pg_matches_chain, pg_analytics_digests

from indexer.runner import FAILPOINT_ENV


def command(pg_dsn: str, schema: str, ch_dir: Path, node, ledger, *extra: str) -> list[str]:
    return [sys.executable, "-m", "indexer.cli", "indexer", "run", "--pg", pg_dsn,
            "--schema", schema, "--clickhouse", f"chdb://{ch_dir}", "--clickhouse-database",
            "idx", "--rpc", node.url, "--ledger", "0x" + ledger.address.hex(), "--quiet",
            "--batch-events", "40", "--max-range", "3", *extra]


def start(cmd: list[str], failpoint: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != FAILPOINT_ENV}
    if failpoint:
        env[FAILPOINT_ENV] = failpoint
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def clickhouse_digests(ch_dir: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "indexer.cli", "indexer", "digest", "--only",
                          "clickhouse", "--clickhouse", f"chdb://{ch_dir}",
                          "--clickhouse-database", "idx"], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=300)
    return json.loads(out.stdout)["clickhouse"]


def assert_both_stores_match(pg_dsn, schema, ch_dir, node, ledger, scenario) -> None:
    assert_pg_matches_chain(pg_dsn, schema, node.url, ledger.address, scenario)
    assert_no_gaps_or_duplicates(pg_dsn, schema)
    assert clickhouse_digests(ch_dir) == pg_analytics_digests(pg_dsn, schema)


def fill(ledger, node, scenario, batches: int, size: int) -> None:
    for _ in range(batches):
        ledger.append(scenario.events(size))
        node.mine(2)


@pytest.mark.parametrize("failpoint", ["pg-copied", "pg-committed", "ch-partial"])
def test_sigkill_at_each_step_of_a_batch_loses_and_repeats_nothing(
        failpoint, pg_dsn, schema, tmp_path, node, ledger):
    scenario = FundScenario(funds=2, investors=10, seed=31)
    fill(ledger, node, scenario, 6, 40)
    cmd = command(pg_dsn, schema, tmp_path / "ch", node, ledger, "--once")
    for nth in (1, 3):
        proc = start(cmd, f"{failpoint}:{nth}")
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, err
    proc = start(cmd)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert_both_stores_match(pg_dsn, schema, tmp_path / "ch", node, ledger, scenario)


@pytest.mark.slow
def test_sigkill_at_random_moments_again_and_again(pg_dsn, schema, tmp_path, node, ledger):
    scenario = FundScenario(funds=3, investors=40, seed=32)
    fill(ledger, node, scenario, 40, 100)
    cmd = command(pg_dsn, schema, tmp_path / "ch", node, ledger, "--once")
    rng = random.Random(32)
    kills = 0
    for _ in range(30):
        proc = start(cmd)
        time.sleep(rng.uniform(0.5, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=300)
    assert kills >= 10
    proc = start(cmd)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert_both_stores_match(pg_dsn, schema, tmp_path / "ch", node, ledger, scenario)


def test_postgresql_restarts_under_a_following_indexer(schema, tmp_path, node, ledger):
    """Our own PostgreSQL cluster (never the machine's shared one), stopped hard and started
    again while the indexer runs."""
    from pgserver.postgres_server import get_server

    server = get_server(pgserver_dir(), cleanup_mode="delete")
    try:
        dsn = server.get_uri()
        scenario = FundScenario(funds=2, investors=10, seed=33)
        fill(ledger, node, scenario, 4, 50)
        proc = start(command(dsn, schema, tmp_path / "ch", node, ledger, "--batch-events", "20",
                             "--max-range", "1"))
        try:
            time.sleep(3)
            _pg_ctl(server, "-w", "-m", "immediate", "stop")
            fill(ledger, node, scenario, 2, 50)  # the chain goes on meanwhile
            time.sleep(2)
            assert proc.poll() is None, proc.communicate()[1]  # waiting, not dead
            server.ensure_postgres_running()
            fill(ledger, node, scenario, 2, 50)
            head = node.head()
            deadline = time.monotonic() + 180
            while _indexed(dsn, schema) < head:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the indexer did not catch up after restart"
                time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        assert_both_stores_match(dsn, schema, tmp_path / "ch", node, ledger, scenario)
    finally:
        server.cleanup()


def _pg_ctl(server, *args: str) -> None:
    from pgserver._commands import pg_ctl

    pg_ctl(list(args), pgdata=server.pgdata, user=server.system_user)


def _indexed(dsn: str, schema: str) -> int:
    from oracle import pg_rows

    try:
        rows = pg_rows(dsn, f"SELECT block_number FROM {schema}.checkpoints "
                            "WHERE source LIKE 'chain:%'")
    except Exception:  # the schema may not exist yet, or the server be starting
        return -1
    return rows[0]["block_number"] if rows else -1
