"""`smartta demo` (what `make demo` runs) builds, verifies, and catches its own tamper."""

from __future__ import annotations

import json

from click.testing import CliRunner

from chain.cli import main
from chain.ledger import LedgerRecord
from chain.qbft.genesis import Genesis
from observer.cli import main as observer_main


def test_demo_builds_a_verified_ledger_and_names_the_tampered_record(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--records", "6", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "tampered copy" in result.output and "data_hash" in result.output
    genesis = Genesis.load(tmp_path / "genesis.json")
    records = [LedgerRecord.from_json(r) for r in json.loads((tmp_path / "records.json").read_text())]
    assert len(genesis.validators) == 4 and len(records) == 6


def test_observer_checks_the_exported_records_and_fails_a_tampered_file(tmp_path):
    CliRunner().invoke(main, ["demo", "--records", "4", "--out", str(tmp_path)])
    from eth_hash.auto import keccak

    ledger = "0x" + keccak(b"demo ledger")[12:].hex()
    args = ["check-records", str(tmp_path / "records.json"), "--chain-id", "2026", "--ledger", ledger]
    ok = CliRunner().invoke(observer_main, args)
    assert ok.exit_code == 0, ok.output
    assert "4 records verify" in ok.output
    records = json.loads((tmp_path / "records.json").read_text())
    del records[1]
    (tmp_path / "records.json").write_text(json.dumps(records))
    bad = CliRunner().invoke(observer_main, args)
    assert bad.exit_code == 1 and "sequence" in bad.output
