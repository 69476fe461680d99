"""``smartta-observer export``: the audit trail of the ledger records, with their verification
status, as CSV, Parquet or a readable PDF report.

The trail is what a verification walked: every record read from receipts that verified,
sealed headers commit to ("verified"), then the first record that failed, if one did, with
the reason. The PDF adds the summary, the validators and their signing activity, and the
findings; it is rendered from HTML with xhtml2pdf (pure Python, no system libraries).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
from collections import Counter
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from chain.abc import LedgerDomain
from observer.records import WalkedRecord
from observer.verify import Report

COLUMNS = ["seq", "block", "block_hash", "tx_index", "tx_hash", "timestamp", "actor",
           "event_type", "fund", "isin", "nonce", "attestation_scheme", "attestation_id",
           "data_hash", "previous_hash", "record_hash", "delta", "status"]
PDF_RECORD_ROWS = 500
"""The PDF lists this many records at most; the CSV and Parquet trails hold them all."""


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(walked: WalkedRecord, status: str) -> dict[str, Any]:
    r = walked.record
    try:
        fields = json.loads(r.delta)
    except ValueError:
        fields = {}
    fields = fields if isinstance(fields, dict) else {}
    return {
        "seq": r.seq, "block": r.block_height, "block_hash": "0x" + walked.block_hash.hex(),
        "tx_index": walked.tx_index, "tx_hash": "0x" + walked.tx_hash.hex(),
        "timestamp": _iso(r.timestamp), "actor": "0x" + r.actor.hex(), "event_type": r.event_type,
        "fund": str(fields.get("fund", "")), "isin": str(fields.get("isin", "")), "nonce": r.nonce,
        "attestation_scheme": r.attestation.scheme_id if r.attestation else None,
        "attestation_id": "0x" + r.attestation_id.hex(), "data_hash": "0x" + r.data_hash.hex(),
        "previous_hash": "0x" + r.previous_hash.hex(),
        "record_hash": "0x" + r.record_hash.hex() if r.record_hash else "",
        "delta": r.delta.decode("utf-8", errors="replace"), "status": status,
    }


def trail(walked: Sequence[WalkedRecord], failed: WalkedRecord | None, report: Report,
          fund: str | None = None) -> list[dict[str, Any]]:
    """The rows of the audit trail, optionally of one fund (its ``fund`` or ``isin``)."""
    rows = [_row(w, "verified") for w in walked]
    if failed is not None and report.failure is not None:
        f = report.failure
        rows.append(_row(failed, f"FAILED {f.check}: {f.message}"))
    if fund is not None:
        rows = [r for r in rows if fund in (r["fund"], r["isin"])]
    return rows


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def write_parquet(rows: Sequence[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"seq": pa.int64(), "block": pa.int64(), "tx_index": pa.int32(), "nonce": pa.uint64(),
             "attestation_scheme": pa.int16()}
    schema = pa.schema([(c, types.get(c, pa.string())) for c in COLUMNS])
    table = pa.Table.from_pylist(list(rows), schema=schema)
    pq.write_table(table, path)


def _tool_version() -> str:
    try:
        return version("smartta-ledger")
    except PackageNotFoundError:
        return "unknown"


def report_html(report: Report, rows: Sequence[dict[str, Any]], domain: LedgerDomain | None,
                fund: str | None) -> str:
    e = html.escape
    status = ("OK: every block and record verifies" if report.ok else
              "EQUIVOCATION" if report.evidence else "FAILED")
    summary = [
        ("Result", status),
        ("Genesis", f"0x{report.genesis_hash.hex()} (chain id {report.chain_id})"),
        ("Ledger contract", "0x" + domain.ledger_address.hex() if domain else "not walked"),
        ("Nodes read", ", ".join(report.sources)),
        ("Blocks", f"{report.first} to {report.last}: {report.blocks:,} verified, "
                   f"{report.seals:,} commit seals"),
        ("Records", f"{report.records:,} verified" + (f"; this report: fund {fund}" if fund else "")),
        ("Head", f"0x{report.head_hash.hex()}" if report.head_hash else "-"),
    ]
    if report.resumed_from is not None:
        summary.append(("Resumed", f"from block {report.resumed_from[0]} verified "
                                   f"{report.resumed_from[1]} by this installation"))
    if report.unsealed_prefix is not None:
        a, b = report.unsealed_prefix
        summary.append(("Not seal-checked", f"blocks {a} to {b} (before --from) were linked "
                                            "and tallied only; their records were taken on trust"))
    total_blocks = max(report.blocks, 1)
    activity = sorted(report.activity.items(), key=lambda kv: (-kv[1][1], kv[0]))
    findings: list[str] = []
    if report.failure is not None:
        f = report.failure
        where = f"block {f.block}" + (f", record {f.record}" if f.record is not None else "")
        findings.append(f"<b>{e(where)}</b> &mdash; {e(f.check)}: {e(f.message)}"
                        + (f" <i>(from {e(f.source)})</i>" if f.source else ""))
    for ev in report.evidence:
        findings.append(f"<b>equivocation at block {ev.height}</b>: {e(ev.first[0])} has "
                        f"0x{ev.first[2].hash.hex()}, {e(ev.second[0])} has "
                        f"0x{ev.second[2].hash.hex()}, each with a quorum of valid seals")
    kinds = Counter(r["event_type"] for r in rows)
    shown = rows[:PDF_RECORD_ROWS]
    parts = [
        "<html><head><meta charset='utf-8'><style>",
        "body{font-family:Helvetica;font-size:8pt} h1{font-size:15pt} h2{font-size:11pt;"
        "margin-top:12pt} table{border:0.5pt solid #999;width:100%} td,th{padding:2pt;"
        "border:0.5pt solid #ccc;vertical-align:top} th{background:#eee;text-align:left}"
        ".mono{font-family:Courier;font-size:6.5pt} .bad{color:#b00000;font-weight:bold}",
        "</style></head><body>",
        "<h1>SMART-TA Ledger &mdash; independent audit report</h1>",
        f"<p>Generated {e(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))} by "
        f"smartta-observer {e(_tool_version())}, from the genesis file alone: every block's "
        "seals, the validator set's votes and every record's hash chain and attestation were "
        "checked on this machine; nothing the nodes said was taken on trust.</p>",
        "<h2>Summary</h2><table>",
        *[f"<tr><th width='22%'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in summary],
        "</table>",
        "<h2>Findings</h2>",
        ("<p>No findings.</p>" if not findings else
         "<ul>" + "".join(f"<li class='bad'>{x}</li>" for x in findings) + "</ul>"),
        "<h2>Validators and their signing activity</h2>",
        "<table><tr><th>Validator</th><th>Blocks proposed</th><th>Commit seals</th>"
        "<th>Share of blocks sealed</th></tr>",
        *[f"<tr><td class='mono'>0x{a.hex()}</td><td>{p:,}</td><td>{s:,}</td>"
          f"<td>{s / total_blocks:.1%}</td></tr>" for a, (p, s) in activity],
        "</table>",
        "<p>Validator set changes (block from which each set seals):</p><ul>",
        *[f"<li>block {c['block']}: {len(c['validators'])} validators"
          + (f", added {', '.join(c['added'])}" if c["added"] and c["block"] else "")
          + (f", removed {', '.join(c['removed'])}" if c["removed"] else "") + "</li>"
          for c in report.set_changes],
        "</ul>",
        "<h2>Records</h2>",
        "<p>" + (", ".join(f"{e(k)}: {v:,}" for k, v in sorted(kinds.items())) or "none") + "</p>",
        "<table><tr><th>Seq</th><th>Block</th><th>Time (UTC)</th><th>Event</th><th>Actor</th>"
        "<th>Record hash</th><th>Status</th></tr>",
        *[f"<tr><td>{r['seq']}</td><td>{r['block']}</td><td>{e(r['timestamp'])}</td>"
          f"<td>{e(r['event_type'])}</td><td class='mono'>{e(r['actor'])}</td>"
          f"<td class='mono'>{e(r['record_hash'])}</td>"
          f"<td{' class=bad' if r['status'] != 'verified' else ''}>{e(r['status'])}</td></tr>"
          for r in shown],
        "</table>",
        (f"<p>The first {PDF_RECORD_ROWS:,} of {len(rows):,} records are listed; the CSV or "
         "Parquet export holds them all.</p>" if len(rows) > PDF_RECORD_ROWS else ""),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_pdf(report: Report, rows: Sequence[dict[str, Any]], domain: LedgerDomain | None,
              fund: str | None, path: Path) -> None:
    from xhtml2pdf import pisa

    out = io.BytesIO()
    status = pisa.CreatePDF(report_html(report, rows, domain, fund), dest=out, encoding="utf-8")
    if status.err:
        raise RuntimeError(f"the PDF could not be rendered ({status.err} errors)")
    path.write_bytes(out.getvalue())
