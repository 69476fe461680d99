"""`smartta indexer …` and `smartta api` from the command line."""

from __future__ import annotations

import json

from chainkit import FundScenario
from click.testing import CliRunner
from oracle import pg_rows

from indexer.cli import indexer


def test_run_then_status_and_digest_report_the_indexed_height(pg_dsn, schema, tmp_path, node,
                                                              ledger):
    scenario = FundScenario(seed=61)
    ledger.append(scenario.events(30))
    ch = ["--clickhouse", f"chdb://{tmp_path / 'ch'}"]
    store = ["--pg", pg_dsn, "--schema", schema, *ch]
    runner = CliRunner()
    result = runner.invoke(indexer, ["run", *store, "--rpc", node.url, "--ledger",
                                     "0x" + ledger.address.hex(), "--once", "--quiet"])
    assert result.exit_code == 0, result.output
    status = runner.invoke(indexer, ["status", *store, "--json"])
    assert status.exit_code == 0, status.output
    (row,) = json.loads(status.output)
    assert row["block"] == node.head() and row["clickhouse"] == [node.head(), 0]
    assert row["ledgerSeq"] == sum(scenario.counts.values())
    digest = runner.invoke(indexer, ["digest", *store, "--analytics-columns"])
    both = json.loads(digest.output)
    assert both["pg"] == both["clickhouse"]


def test_a_bad_ledger_address_is_refused_before_anything_runs(pg_dsn, schema):
    result = CliRunner().invoke(indexer, ["run", "--pg", pg_dsn, "--schema", schema, "--rpc",
                                          "http://127.0.0.1:9", "--ledger", "0x1234", "--once"])
    assert result.exit_code == 2 and "an address is 20" in result.output


def test_credentials_are_issued_listed_and_revoked(pg_dsn, schema):
    runner = CliRunner()
    issued = runner.invoke(indexer, ["credentials", "issue", "--pg", pg_dsn, "--schema", schema,
                                     "--org", "CSSF", "--role", "observer"])
    assert issued.exit_code == 0, issued.output
    assert issued.stdout.strip().splitlines()[-1].startswith("stk_")
    listing = runner.invoke(indexer, ["credentials", "list", "--pg", pg_dsn, "--schema", schema])
    assert "CSSF\tobserver\tactive" in listing.output
    assert runner.invoke(indexer, ["credentials", "revoke", "--pg", pg_dsn, "--schema", schema,
                                   "1"]).exit_code == 0
    again = runner.invoke(indexer, ["credentials", "revoke", "--pg", pg_dsn, "--schema", schema,
                                    "1"])
    assert again.exit_code == 1 and "does not exist or is revoked" in again.output
    assert pg_rows(pg_dsn, f"SELECT count(revoked_at) AS n FROM {schema}.api_credentials")[0]["n"] == 1


def test_outbox_ddl_is_the_contract_the_indexer_reads(pg_dsn):
    result = CliRunner().invoke(indexer, ["outbox-ddl", "--table", "svc.outbox"])
    assert "xid8 NOT NULL DEFAULT pg_current_xact_id()" in result.output
    assert "CREATE INDEX IF NOT EXISTS outbox_xid_id ON svc.outbox (xid, id)" in result.output


def test_run_with_api_serves_analytics_from_the_same_process_and_stops_on_sigterm(
        pg_dsn, schema, tmp_path, node, ledger):
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from chainkit import ROOT, free_port

    from indexer.access import issue

    scenario = FundScenario(seed=62)
    ledger.append(scenario.events(25))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "indexer.cli", "indexer", "run", "--pg", pg_dsn, "--schema", schema,
         "--clickhouse", f"chdb://{tmp_path / 'ch'}", "--rpc", node.url, "--ledger",
         "0x" + ledger.address.hex(), "--quiet", "--api", f"127.0.0.1:{port}"],
        cwd=ROOT, env=dict(os.environ), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                rows = pg_rows(pg_dsn, f"SELECT ledger_seq FROM {schema}.checkpoints")
                if rows and rows[0]["ledger_seq"] == sum(scenario.counts.values()):
                    break
            except Exception:  # the schema may not exist yet
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.2)
        import asyncio

        import asyncpg

        async def token() -> str:
            conn = await asyncpg.connect(pg_dsn)
            try:
                return (await issue(conn, schema, "CSSF", "observer"))[1]
            finally:
                await conn.close()

        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/analytics/events-per-type",
                                     headers={"Authorization": "Bearer " + asyncio.run(token())})
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.loads(resp.read())
        assert sum(r["records"] for r in body["data"]) == sum(scenario.counts.values())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
