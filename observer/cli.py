"""``smartta-observer``: verification for regulators and auditors, from the genesis alone.

Installed by the base distribution (no npm, no database, no extras). This first command checks a
ledger records file offline; chain verification against a node comes with the observer issue.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from chain.abc import LedgerDomain
from chain.ledger import LedgerRecord, verify_records


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smartta-ledger", prog_name="smartta-observer")
def main() -> None:
    """Verify a SMART-TA ledger yourself: hash chain, attestations, seals."""


@main.command("check-records")
@click.argument("records_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chain-id", type=int, required=True, help="Chain id of the CeFi Event Ledger.")
@click.option("--ledger", "ledger_address", required=True,
              help="Address of the CeFi Event Ledger contract (0x…).")
@click.option("--require-attestation/--no-require-attestation", default=True, show_default=True,
              help="Fail records whose attestation proof is missing.")
def check_records(records_file: Path, chain_id: int, ledger_address: str,
                  require_attestation: bool) -> None:
    """Walk a JSON array of ledger records (as exported) and name the first one that fails."""
    console = Console()
    try:
        raw = json.loads(records_file.read_text())
        records = [LedgerRecord.from_json(r) for r in raw]
        address = bytes.fromhex(ledger_address.removeprefix("0x"))
    except (ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{records_file} is not a records export: {exc}") from exc
    if len(address) != 20:
        raise click.BadParameter("the ledger address must be 20 bytes", param_hint="--ledger")
    report = verify_records(records, LedgerDomain(chain_id, address),
                            require_attestation=require_attestation)
    if report.ok:
        console.print(f"[green]{report.checked} records verify[/green]; head record "
                      f"{report.head_seq}, hash 0x{report.head_hash.hex()}")
        return
    console.print(f"[red]FAILED[/red] {report.first_failure}")
    sys.exit(1)
