"""``export``: the audit trail as CSV, Parquet and PDF, with each record's verification status."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import write_genesis
from ledgerchain import LEDGER_ADDRESS, ledger_chain
from pypdf import PdfReader

from observer.cli import main


@pytest.fixture(scope="module")
def ledger36():
    return ledger_chain()


def _export(node, chain, tmp_path, fmt, *extra):
    out = tmp_path / f"trail.{fmt}"
    result = CliRunner().invoke(main, [
        "export", "--rpc", node.url, "--genesis", str(write_genesis(chain, tmp_path)),
        "--ledger", "0x" + LEDGER_ADDRESS.hex(), "--format", fmt, "--out", str(out), "--quiet",
        *extra], catch_exceptions=False)
    return result, out


def test_csv_trail_holds_every_record_verified_in_order(ledger36, node_factory, tmp_path):
    chain, ledger = ledger36
    result, out = _export(node_factory(chain), chain, tmp_path, "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [int(r["seq"]) for r in rows] == list(range(1, 37))
    assert {r["status"] for r in rows} == {"verified"}
    assert rows[0]["record_hash"] == "0x" + ledger.records[0].record_hash.hex()


def test_parquet_trail_of_a_range_takes_earlier_records_on_trust(ledger36, node_factory, tmp_path):
    chain, _ = ledger36
    result, out = _export(node_factory(chain), chain, tmp_path, "parquet", "--from", "8",
                          "--to", "12")
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    # Blocks 8, 10 and 12 hold records 13..30; records 1..12 before --from are not re-walked.
    assert table.column("seq").to_pylist() == list(range(13, 31))
    assert table.schema.field("seq").type == "int64"


def test_trail_of_a_tampered_ledger_ends_with_the_failed_record(node_factory, tmp_path):
    chain, _ = ledger_chain(tamper_block=2, tamper={"kind": "forge", "record": 2})
    result, out = _export(node_factory(chain), chain, tmp_path, "csv")
    assert result.exit_code == 1
    rows = list(csv.DictReader(out.open()))
    assert [r["status"] for r in rows[:-1]] == ["verified"] * 14
    assert rows[-1]["seq"] == "15" and rows[-1]["status"].startswith("FAILED attestation:")


def test_pdf_report_names_validators_activity_and_findings(node_factory, tmp_path):
    chain, _ = ledger_chain(tamper_block=1, tamper={"kind": "hash"})
    result, out = _export(node_factory(chain), chain, tmp_path, "pdf")
    assert result.exit_code == 1
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(out).pages).split())
    assert "independent audit report" in text
    assert "FAILED" in text and "record 9" in text and "record_hash" in text
    validator = "0x" + chain.blocks[1].header.coinbase.hex()
    assert validator in text


def test_fund_filter_keeps_only_that_funds_records(ledger36, node_factory, tmp_path):
    chain, _ = ledger36
    result, out = _export(node_factory(chain), chain, tmp_path, "csv", "--fund", "LU0000000001")
    assert result.exit_code == 0
    assert list(csv.DictReader(out.open())) == []
    result, out = _export(node_factory(chain), chain, tmp_path, "csv", "--fund", "LU0000000009")
    assert len(list(csv.DictReader(out.open()))) == 36
