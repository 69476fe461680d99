"""``smartta-observer``: verification for regulators and auditors, from the genesis alone.

Installed by the base distribution (no npm, no database, no extras). It reads any node over
standard JSON-RPC and trusts none of it: every block, seal and record is checked against the
genesis file the user gives.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from chain.abc import LedgerDomain
from chain.ledger import LedgerRecord, verify_records
from chain.qbft.genesis import Genesis, GenesisError
from observer.abc import ChainSource, SourceError
from observer.checkpoint import CheckpointError, CheckpointStore
from observer.export import trail, write_csv, write_parquet, write_pdf
from observer.proof import ProofFileError, check_proof, make_proof
from observer.records import LedgerWalk
from observer.rpc import RpcSource
from observer.verify import Report, Verifier
from observer.watch import Watcher

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREADABLE = 3
EXIT_EQUIVOCATION = 4

EXIT_CODES = """\b
Exit codes:
  0  every block (and record) asked for verifies
  1  verification failed: the report names the first failure (block, record, check, reason)
  2  bad usage or unreadable input (genesis file, options)
  3  a node could not be read (unreachable, error answers, too few blocks) or the checkpoint
     cannot be trusted; nothing wrong was found in what was checked
  4  equivocation: two different blocks at one height, each with a quorum of valid seals;
     the evidence (both headers and their seals) is written to --evidence
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smartta-ledger", prog_name="smartta-observer")
def main() -> None:
    """Verify a SMART-TA ledger yourself: seals, validator sets, hash chain, attestations."""


def _load_genesis(path: Path) -> Genesis:
    try:
        return Genesis.load(path)
    except GenesisError as exc:
        raise click.ClickException(f"{exc}") from None


def _sources(urls: tuple[str, ...]) -> list[ChainSource]:
    try:
        return [RpcSource(u) for u in urls]
    except SourceError as exc:
        raise click.BadParameter(str(exc), param_hint="--rpc") from None


class _Bar:
    """A rich progress bar on stderr: blocks, seals and records per second."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.started = time.perf_counter()
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]verifying"), BarColumn(), MofNCompleteColumn(),
            TextColumn("blocks"), TextColumn("{task.fields[rates]}"), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), console=console, disable=not enabled,
            transient=False)
        self.task = self.progress.add_task("verify", total=None, rates="")

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, done: int, total: int, report: Report) -> None:
        elapsed = max(time.perf_counter() - self.started, 1e-6)
        rates = (f"{report.blocks / elapsed:,.0f} blocks/s · {report.seals / elapsed:,.0f} seals/s"
                 f" · {report.records:,} records")
        self.progress.update(self.task, completed=done, total=total, rates=rates)


def render(report: Report, console: Console) -> None:
    table = Table(title="verification", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("genesis", f"0x{report.genesis_hash.hex()} (chain id {report.chain_id})")
    table.add_row("nodes", ", ".join(report.sources))
    if report.resumed_from is not None:
        table.add_row("resumed", f"from block {report.resumed_from[0]}, verified "
                                 f"{report.resumed_from[1]} (this installation's checkpoint)")
    if report.unsealed_prefix is not None:
        a, b = report.unsealed_prefix
        table.add_row("[yellow]not sealed-checked[/yellow]",
                      f"blocks {a}..{b} were linked and their votes tallied, but their seals were "
                      "not checked (--from); run without --from to check them")
    if report.last >= report.first:
        table.add_row("blocks", f"{report.first}..{report.last}: {report.blocks:,} verified, "
                                f"{report.seals:,} commit seals")
    else:
        table.add_row("blocks", "none new")
    table.add_row("records", f"{report.records:,} verified")
    if report.replay is not None:
        r = report.replay
        rate = f", {r['blocks'] / r['seconds']:,.0f} blocks/s" if r["seconds"] else ""
        table.add_row("replayed", f"{r['blocks']:,} blocks, {r['transactions']:,} transactions, "
                                  f"{r['gas']:,} gas executed again{rate}; state root {r['stateRoot']}")
    if report.head_hash:
        table.add_row("head", f"0x{report.head_hash.hex()}")
    if report.seconds and report.blocks:
        table.add_row("speed", f"{report.blocks / report.seconds:,.0f} blocks/s, "
                               f"{report.seals / report.seconds:,.0f} seals/s "
                               f"({report.seconds:.1f} s)")
    changes = report.set_changes[1:]
    if changes:
        table.add_row("validator set", "; ".join(
            f"block {c['block']}: +{len(c['added'])} -{len(c['removed'])} -> {len(c['validators'])}"
            for c in changes[-5:]))
    console.print(table)
    for e in report.evidence:
        console.print(f"[bold red]EQUIVOCATION[/bold red] at block {e.height}: "
                      f"{e.first[0]} has 0x{e.first[2].hash.hex()}, {e.second[0]} has "
                      f"0x{e.second[2].hash.hex()}; both carry a quorum of valid seals")
    if report.failure is not None:
        f = report.failure
        console.print(f"[bold red]FAILED[/bold red] {f}" + (f"  [dim](from {f.source})[/dim]"
                                                             if f.source else ""))
    elif report.ok:
        console.print("[bold green]OK[/bold green] every block verifies"
                      + (" and every record" if report.records else "")
                      + (" and executes to its sealed header" if report.replay else ""))


def _exit_code(report: Report) -> int:
    if report.evidence:
        return EXIT_EQUIVOCATION
    return EXIT_OK if report.failure is None else EXIT_FAILED


@main.command(epilog=EXIT_CODES)
@click.option("--rpc", "urls", multiple=True, required=True, metavar="URL",
              help="JSON-RPC endpoint of a node (ours, an observer node, Besu). Give it several "
                   "times to compare nodes: blocks are verified from the first, and every other "
                   "node's block hash at each height is compared with it.")
@click.option("--genesis", "genesis_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The network's genesis.json: the only thing trusted.")
@click.option("--from", "from_block", type=click.IntRange(min=1), default=None,
              help="First block to verify. Without a checkpoint before it, the blocks before it "
                   "are linked and tallied but their seals are not checked (said in the report).")
@click.option("--to", "to_block", type=click.IntRange(min=0), default=None,
              help="Last block to verify (default: the node's head).")
@click.option("--ledger", "ledger_address", default=None, metavar="ADDRESS",
              help="The CeFi Event Ledger contract (0x…): also walk every ledger record (data "
                   "hash, link, record hash, attestation, attester authorisation), read only "
                   "from receipts that the verified headers commit to.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Processes recovering seals (default: one per core).")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Checkpoint file (default: one per genesis in --state-dir).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where checkpoints and their key live (default ~/.local/state/smartta-observer).")
@click.option("--restart", is_flag=True, help="Ignore any checkpoint: verify from the genesis.")
@click.option("--no-checkpoint", is_flag=True, help="Neither read nor write a checkpoint.")
@click.option("--evidence", "evidence_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("evidence"), show_default=True,
              help="Where equivocation evidence is written.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the report as JSON to this file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--replay", is_flag=True,
              help="Also execute every block again from the genesis alloc (the QBFT execution "
                   "rules of chain/) and compare the state root, receipts root (statuses, gas, "
                   "logs), logs bloom and gas used with its sealed header; the transactions "
                   "must hash to its transactionsRoot. Starts from the genesis whatever the "
                   "checkpoint; not with --from.")
def verify(urls: tuple[str, ...], genesis_path: Path, from_block: int | None,
           to_block: int | None, ledger_address: str | None, jobs: int | None,
           checkpoint_path: Path | None,
           state_dir: Path | None, restart: bool, no_checkpoint: bool, evidence_dir: Path,
           report_path: Path | None, quiet: bool, replay: bool) -> None:
    """Verify every block: the genesis, parent links, the validator set evolving only by
    valid votes from the genesis set, a quorum of distinct valid commit seals from that set,
    extraData well formed. Resumable: a checkpoint signed by this installation records the
    last verified block, and is used only if the node still serves that very block."""
    console = Console(stderr=True)
    if replay and from_block is not None:
        raise click.UsageError("--replay executes every block from the genesis alloc, so it cannot "
                               "start at --from; drop one of them")
    genesis = _load_genesis(genesis_path)
    store = None
    if not no_checkpoint:
        store = CheckpointStore.for_genesis(genesis.hash, state_dir, checkpoint_path)
        if restart:
            store.remove()
    verifier = _verifier(genesis, urls, store, jobs, _ledger(genesis, ledger_address),
                         replay=replay)
    with _Bar(console, not quiet and console.is_terminal) as bar:
        verifier.progress = bar
        report = _advance(verifier, to_block, from_block)
    verifier.close()
    report.set_changes = verifier.set_changes()
    _finish(report, console, evidence_dir, report_path)
    sys.exit(_exit_code(report))


def _ledger(genesis: Genesis, address: str | None) -> LedgerDomain | None:
    if address is None:
        return None
    try:
        raw = bytes.fromhex(address.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise click.BadParameter(f"{address} is not a 20-byte 0x address", param_hint="--ledger")
    return LedgerDomain(genesis.chain_id, raw)


def _verifier(genesis: Genesis, urls: tuple[str, ...], store: CheckpointStore | None,
              jobs: int | None, ledger: LedgerDomain | None = None, keep: bool = False,
              replay: bool = False) -> Verifier:
    sources = _sources(urls)
    walk = LedgerWalk(sources[0], ledger, keep=keep) if ledger is not None else None
    try:
        executor = None
        if replay:
            from observer.replay import Replay  # py-evm loads only for a replay

            executor = Replay(genesis, sources[0])
        return Verifier(genesis, sources, store=store, jobs=jobs, records=walk, replay=executor)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _advance(verifier: Verifier, to_block: int | None, from_block: int | None = None) -> Report:
    try:
        return verifier.advance(to_block, from_block)
    except (SourceError, CheckpointError) as exc:
        verifier.close()
        Console(stderr=True).print(f"[bold red]cannot verify[/bold red]: {exc}")
        sys.exit(EXIT_UNREADABLE)


def _finish(report: Report, console: Console, evidence_dir: Path, report_path: Path | None) -> None:
    render(report, console)
    for e in report.evidence:
        evidence_dir.mkdir(parents=True, exist_ok=True)
        path = evidence_dir / f"equivocation-{e.height}.json"
        path.write_text(json.dumps(e.to_json(), indent=2) + "\n")
        console.print(f"evidence written to {path}")
    if report_path is not None:
        report_path.write_text(json.dumps(report.to_json(), indent=2) + "\n")


@main.command(epilog="""\b
Exit codes: as verify's (the trail is written in every case but 2 and 3):
  0 verified; 1 a failure (it is the trail's last row and in the PDF's findings);
  2 bad usage; 3 a node could not be read; 4 equivocation.
""")
@click.option("--rpc", "urls", multiple=True, required=True, metavar="URL")
@click.option("--genesis", "genesis_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ledger", "ledger_address", required=True, metavar="ADDRESS",
              help="The CeFi Event Ledger contract (0x…).")
@click.option("--from", "from_block", type=click.IntRange(min=1), default=None,
              help="First block (the blocks before it are linked and tallied, their records "
                   "taken on trust, and the report says so).")
@click.option("--to", "to_block", type=click.IntRange(min=0), default=None,
              help="Last block (default: the node's head).")
@click.option("--fund", default=None, help="Only records of this fund (its id or ISIN).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "pdf"]), required=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file (default: audit-trail.<format>).")
@click.option("--jobs", type=click.IntRange(min=1), default=None)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def export(urls: tuple[str, ...], genesis_path: Path, ledger_address: str, from_block: int | None,
           to_block: int | None, fund: str | None, fmt: str, out_path: Path | None,
           jobs: int | None, quiet: bool) -> None:
    """Verify, then write the audit trail of the records with their verification status:
    CSV or Parquet (every record), or a PDF report (summary, validators and their signing
    activity, findings, records)."""
    console = Console(stderr=True)
    genesis = _load_genesis(genesis_path)
    domain = _ledger(genesis, ledger_address)
    verifier = _verifier(genesis, urls, None, jobs, domain, keep=True)
    with _Bar(console, not quiet and console.is_terminal) as bar:
        verifier.progress = bar
        report = _advance(verifier, to_block, from_block)
    verifier.close()
    report.set_changes = verifier.set_changes()
    walk = verifier.records
    assert isinstance(walk, LedgerWalk)
    rows = trail(walk.walked, walk.failed, report, fund)
    out = out_path or Path(f"audit-trail.{fmt}")
    if fmt == "csv":
        write_csv(rows, out)
    elif fmt == "parquet":
        write_parquet(rows, out)
    else:
        write_pdf(report, rows, domain, fund, out)
    render(report, console)
    console.print(f"{len(rows):,} records written to {out}")
    sys.exit(_exit_code(report))


@main.command(epilog="""\b
Exit codes (it runs until something is wrong):
  1  a verification failure (the report names it; the webhook gets it)
  3  the node could not be read for --max-down seconds
  4  equivocation (evidence written to --evidence)
""")
@click.option("--rpc", "urls", multiple=True, required=True, metavar="URL",
              help="JSON-RPC endpoint; several to compare nodes.")
@click.option("--genesis", "genesis_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ledger", "ledger_address", default=None, metavar="ADDRESS",
              help="Also walk the records of this CeFi Event Ledger contract.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds between looks at the node's head.")
@click.option("--webhook", default=None, metavar="URL",
              help="POST the report as JSON here on the first failure.")
@click.option("--max-down", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds a node may stay unreadable before that is an alarm.")
@click.option("--jobs", type=click.IntRange(min=1), default=None)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--evidence", "evidence_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("evidence"), show_default=True)
@click.option("--rounds", type=click.IntRange(min=1), default=None, hidden=True)
def watch(urls: tuple[str, ...], genesis_path: Path, ledger_address: str | None, interval: float,
          webhook: str | None, max_down: float, jobs: int | None, state_dir: Path | None,
          evidence_dir: Path, rounds: int | None) -> None:
    """Keep verifying new blocks (and records) as they come; stop at the first failure."""
    console = Console(stderr=True)
    genesis = _load_genesis(genesis_path)
    store = CheckpointStore.for_genesis(genesis.hash, state_dir)
    verifier = _verifier(genesis, urls, store, jobs, _ledger(genesis, ledger_address))

    def round_done(report: Report) -> None:
        console.print(f"verified to block {report.last} ({report.blocks:,} blocks, "
                      f"{report.records:,} records this session)")

    watcher = Watcher(verifier, interval=interval, max_down=max_down, webhook=webhook,
                      on_round=round_done, warn=lambda m: console.print(f"[yellow]{m}[/yellow]"))
    try:
        outcome = watcher.run(rounds)
    except CheckpointError as exc:
        console.print(f"[bold red]cannot verify[/bold red]: {exc}")
        sys.exit(EXIT_UNREADABLE)
    finally:
        verifier.close()
    if outcome is None:
        return
    outcome.report.set_changes = verifier.set_changes()
    _finish(outcome.report, console, evidence_dir, None)
    if outcome.kind == "unreachable":
        console.print(f"[bold red]node unreadable[/bold red]: {outcome.detail}")
        sys.exit(EXIT_UNREADABLE)
    sys.exit(_exit_code(outcome.report))


@main.command(epilog="""\b
Exit codes: 0 the proof file was written (and checks); 1 the node's data does not make a
valid proof; 2 bad usage; 3 the node could not be read.""")
@click.option("--rpc", "url", required=True, metavar="URL", help="JSON-RPC endpoint of a node.")
@click.option("--genesis", "genesis_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ledger", "ledger_address", required=True, metavar="ADDRESS",
              help="The CeFi Event Ledger contract (0x…).")
@click.option("--record", "seq", type=click.IntRange(min=1), required=True,
              help="Sequence number of the record to prove.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the proof (default: record-SEQ.proof.json).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where verify keeps its checkpoints: one there spares reading the headers it "
                   "covers (the proof is checked before it is written, whatever its source).")
def prove(url: str, genesis_path: Path, ledger_address: str, seq: int, out_path: Path | None,
          state_dir: Path | None) -> None:
    """Write a self-contained proof of one record: the record, its receipt and the
    Merkle-Patricia proof to the receipts root of its sealed header, that header with its
    seals, and the validator-set lineage back to the genesis. Anyone checks it offline with
    `check-proof` and the genesis file alone."""
    console = Console(stderr=True)
    genesis = _load_genesis(genesis_path)
    domain = _ledger(genesis, ledger_address)
    assert domain is not None
    source = _sources((url,))[0]
    try:
        checkpoint = CheckpointStore.for_genesis(genesis.hash, state_dir).load(genesis.hash)
    except CheckpointError:
        checkpoint = None  # an untrusted checkpoint is simply not used here
    try:
        data = make_proof(source, genesis, domain.ledger_address, seq, checkpoint)
    except SourceError as exc:
        console.print(f"[bold red]cannot prove[/bold red]: {exc}")
        sys.exit(EXIT_UNREADABLE)
    except (ProofFileError, ValueError) as exc:
        console.print(f"[bold red]the node's data does not prove record {seq}[/bold red]: {exc}")
        sys.exit(EXIT_FAILED)
    out = out_path or Path(f"record-{seq}.proof.json")
    out.write_bytes(data)
    console.print(f"proof of record {seq} written to {out} ({len(data):,} bytes)")


@main.command("check-proof", epilog="""\b
Exit codes: 0 the proof holds; 1 it does not (the reason is printed); 2 bad usage.""")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--genesis", "genesis_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The network's genesis.json: the only thing trusted.")
def check_proof_command(proof_file: Path, genesis_path: Path) -> None:
    """Verify a proof file offline, with no node: the record, its sealed block, and the
    validator sets from the genesis to that block."""
    console = Console()
    genesis = _load_genesis(genesis_path)
    try:
        proven = check_proof(proof_file.read_bytes(), genesis)
    except ProofFileError as exc:
        console.print(f"[bold red]INVALID[/bold red] {exc}")
        sys.exit(EXIT_FAILED)
    r = proven.record
    scheme = r.attestation.scheme_id if r.attestation else "?"
    console.print(f"[bold green]VALID[/bold green] record {r.seq} ({r.event_type}) by actor "
                  f"0x{r.actor.hex()}, attested (scheme {scheme}), "
                  f"in block {proven.block} 0x{proven.block_hash.hex()}")
    console.print(f"sealed by {len(proven.committers)} of {len(proven.validators)} validators; "
                  f"{len(proven.lineage)} validator set(s) derived from the genesis: " + "; ".join(
                      f"from block {b}: {len(v)}" for b, v in proven.lineage))
    console.print(f"record hash 0x{(r.record_hash or b'').hex()}, previous 0x{r.previous_hash.hex()}")


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
        raw: Any = json.loads(records_file.read_text())
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
