"""Operator commands on a running network: ``smartta validator add|remove|rotate``,
``smartta network drill`` and ``smartta network bench``.

``validator`` is a ``smartta.commands`` entry point of its own; ``drill`` and ``bench`` attach
to the ``network`` group of ``node.cli`` (node.lifecycle imports this module so they are always
registered). Heavy imports wait until a command runs, so ``smartta --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from node.cli import DIR_OPTION, RPC_OPTION, _rpc_overrides, network, password
from node.network.spec import NetworkSpec, SpecError

console = Console()


def _spec(directory: Path) -> NetworkSpec:
    try:
        return NetworkSpec.load(directory)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from exc


class _Bars:
    """``(what, done, total)`` progress callbacks as one rich bar per step."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        task = self.tasks.get(what)
        if task is None:
            task = self.tasks[what] = self.progress.add_task(what, total=total)
        self.progress.update(task, completed=done, total=total)


@contextmanager
def _bars() -> Iterator[_Bars]:
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=console, transient=True) as p:
        yield _Bars(p)


def _say(text: str) -> None:
    console.print(text)


# ---- smartta validator ----------------------------------------------------------------------------


@click.group()
def validator() -> None:
    """Change a running network's validators by vote: add, remove, rotate a key."""


TIMEOUT_OPTION = click.option("--timeout", type=float, default=180.0, show_default=True,
                              help="Seconds each step may take before it is abandoned.")


def _vote(directory: Path, who: str, add: bool, rpc: tuple[str, ...], timeout: float,
          unsynced_candidate: bool = False) -> None:
    from node.network import validators as v

    spec = _spec(directory)
    if spec.consensus.validator_selection == "contract":
        raise click.ClickException("this network selects validators by contract: change them with "
                                   "a transaction to the validator contract, not by vote")
    net = v.Live(spec, _rpc_overrides(rpc))
    try:
        subject = v.parse_address(spec.node(who).address) if who in {n.name for n in spec.nodes} \
            else v.parse_address(who)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; give a 0x address or a node name of network.yaml",
                                 param_hint="ADDRESS") from None
    try:
        current = net.validators()
        seen = v.census(net, current, subject if add else None)
        plan = v.plan_change(current, subject, add, seen.voters, seen.down, names=net.names(),
                             unsynced_candidate=unsynced_candidate)
        console.print(f"{plan.verb} 0x{subject.hex()}: {len(plan.voters)} voters of {len(current)} "
                      f"validators, {plan.threshold} votes needed")
        with _bars() as bars:
            outcome = v.Campaign(net, plan, timeout=timeout, progress=bars, say=_say).run()
        note = v.record_change(directory, subject, add, password())
    except (v.GuardError, v.CampaignError) as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"[green]0x{subject.hex()} {'joined' if add else 'left'} the validators at block "
                  f"{outcome.block}[/green] ({len(plan.after)} validators; "
                  f"{outcome.seconds:.1f}s; longest gap between blocks {outcome.longest_gap}s); "
                  f"votes discarded on {len(plan.voters) - len(outcome.not_discarded)} voters")
    for failed in outcome.not_discarded:
        console.print(f"[yellow]could not discard the vote on {failed}: call "
                      "qbft_discardValidatorVote there once it answers[/yellow]")
    if note:
        console.print(note)


@validator.command("add")
@click.argument("address")
@DIR_OPTION
@RPC_OPTION
@TIMEOUT_OPTION
@click.option("--unsynced-candidate", is_flag=True,
              help="Vote in a candidate that cannot be checked (another organisation's node): it "
                   "counts as one of the f faults the network tolerates until it seals.")
def validator_add(address: str, directory: Path, rpc: tuple[str, ...], timeout: float,
                  unsynced_candidate: bool) -> None:
    """Vote ADDRESS (or a node of network.yaml) into the validator set.

    Start the candidate node and let it sync first: until it seals, it counts as a faulty
    validator; the command refuses a candidate it cannot see synced, and any change that would
    leave more than f validators down.
    """
    _vote(directory, address, True, rpc, timeout, unsynced_candidate)


@validator.command("remove")
@click.argument("address")
@DIR_OPTION
@RPC_OPTION
@TIMEOUT_OPTION
def validator_remove(address: str, directory: Path, rpc: tuple[str, ...], timeout: float) -> None:
    """Vote ADDRESS (or a node of network.yaml) out of the validator set (never below 4)."""
    _vote(directory, address, False, rpc, timeout)


@validator.command("rotate")
@click.argument("old")
@DIR_OPTION
@click.option("--new-node", "new_name", default=None,
              help="Name of the node with the new key (default: the next free validator-N); a node "
                   "already in network.yaml is used as it is.")
@click.option("--new-key", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="A keystore generated offline for the new node (default: a fresh key).")
@click.option("--host", default=None, help="Host of the new node (default: the old node's).")
@RPC_OPTION
@TIMEOUT_OPTION
def validator_rotate(old: str, directory: Path, new_name: str | None, new_key: Path | None,
                     host: str | None, rpc: tuple[str, ...], timeout: float) -> None:
    """Replace validator OLD (a node name or address) by a node with a new key.

    Adds the new node to network.yaml, starts it (local networks) and waits until it has synced,
    votes it in, waits until it seals, votes OLD out, stops OLD and moves its key to
    keys/retired/. Refuses to go below 4 validators or beyond f down. Run it again to resume a
    rotation that stopped half-way.
    """
    from node.network import validators as v

    spec = _spec(directory)
    if spec.consensus.validator_selection == "contract":
        raise click.ClickException("this network selects validators by contract; rotate with "
                                   "transactions to the validator contract")
    rotator = v.Rotator(directory, password(), overrides=_rpc_overrides(rpc), timeout=timeout,
                        say=_say)
    try:
        with _bars() as bars:
            rotator.progress = bars
            result = rotator.run(old, new_name=new_name, new_key=new_key, host=host)
    except (v.GuardError, v.CampaignError, SpecError) as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"[green]rotated 0x{result.old.hex()} -> {result.new.name} ({result.new.address})"
                  f"[/green] in {result.seconds:.1f}s; the new key sealed block {result.first_sealed}"
                  + (f", joined at block {result.added.block}" if result.added else "")
                  + (f", the old key left at block {result.removed.block}" if result.removed else "")
                  + f"; longest gap between blocks {result.longest_gap}s")
    for note in result.notes:
        console.print(f"[yellow]{note}[/yellow]")
    if result.retired_key is not None:
        console.print(f"the old key is in {result.retired_key}: escrow or destroy it by your key "
                      "policy; on Besu hosts redeploy the regenerated allowlists "
                      "(perm_reloadPermissionsFromFile)")


# ---- smartta network drill ------------------------------------------------------------------------


@network.command("drill")
@click.argument("kind", type=click.Choice(["kill", "pause", "partition", "proposer-down"]))
@DIR_OPTION
@click.option("--count", type=click.IntRange(1), default=None,
              help="Validators to fault (default f, the most BFT tolerates; f + 1 must halt).")
@click.option("--node", "nodes", multiple=True, help="Which validators (default: the last of "
              "network.yaml; proposer-down picks the next proposers).")
@click.option("--window", type=float, default=None,
              help="Seconds the fault lasts (default from the block period and round timeout).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def network_drill(kind: str, directory: Path, count: int | None, nodes: tuple[str, ...],
                  window: float | None, as_json: bool) -> None:
    """Inject a fault into a local network and check what BFT promises.

    With at most f validators faulty the chain must keep adding blocks; with more it must stop
    without a fork. Then the fault is healed and the recovery time measured. Exits 1 on FAIL.
    """
    from node.network.drill import Drill, DrillConfig, DrillError, report_json

    try:
        drill = Drill(directory, password(), DrillConfig(kind, count, list(nodes), window),
                      say=(lambda text: None) if as_json else _say)
        obs, result = drill.run()
    except (DrillError, SpecError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(report_json(obs, result))
    else:
        for ok, what in result.checks:
            console.print(("[green]pass[/green] " if ok else "[red]FAIL[/red] ") + what)
        if obs.round_changes is not None:
            console.print(f"round changes counted by the nodes so far: {obs.round_changes}")
        console.print("[bold green]PASS[/bold green]" if result.passed else "[bold red]FAIL[/bold red]")
    if not result.passed:
        sys.exit(1)


# ---- smartta network bench ------------------------------------------------------------------------

DEFAULT_ROUNDS = ("label=single peak,fixed-load=1000,txs=5000",
                  "label=batch of 50 peak,fixed-load=20,txs=100,batch=50")


@network.command("bench")
@DIR_OPTION
@RPC_OPTION
@click.option("--round", "rounds", multiple=True, metavar="SPEC",
              help="A round: fixed-rate=TPS or fixed-load=N, txs=N, batch=RECORDS, label=TEXT "
                   "(comma-separated; repeat for more rounds). Default: "
                   + " and ".join(f"'{r}'" for r in DEFAULT_ROUNDS))
@click.option("--warmup", type=click.IntRange(0), default=500, show_default=True,
              help="Transactions sent before the measured rounds (not reported).")
@click.option("--senders", type=click.IntRange(1), default=200, show_default=True)
@click.option("--connections", type=click.IntRange(1), default=16, show_default=True)
@click.option("--artifact", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(".build") / "__local__.json", show_default=True,
              help="ape's compiled manifest holding CeFiEventLedger (`ape compile`).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the round reports to this JSON file.")
def network_bench(directory: Path, rpc: tuple[str, ...], rounds: tuple[str, ...], warmup: int,
                  senders: int, connections: int, artifact: Path, json_out: Path | None) -> None:
    """Load a running network with ledger appends and report Caliper's figures per round.

    Deploys a fresh CeFiEventLedger, gives throwaway senders its writer and attester roles, and
    sends pre-signed append (or appendBatch) transactions spread over the validators' and RPC
    nodes' JSON-RPC. Reports successes, failures, send rate, throughput and latency (min, avg,
    max, p50, p95, p99, submit to final). It writes to the chain: run it on test networks.
    """
    import asyncio

    from rich.table import Table

    from node.network import live
    from node.network.loadgen import Bench, BenchError, Round, Target, parse_round

    spec = _spec(directory)
    overrides = _rpc_overrides(rpc)
    writers = [n for n in spec.nodes if not n.is_observer]
    watch = spec.validators[0]
    target = Target([overrides.get(n.name, live.default_url(n)) for n in writers],
                    overrides.get(watch.name, live.default_url(watch)),
                    None if watch.name in overrides else f"ws://{watch.host}:{watch.rpc_ws_port}")
    try:
        plan = [parse_round(r) for r in rounds or DEFAULT_ROUNDS]
        warm = Round("warm-up", warmup, "fixed-load", 200) if warmup else None
        bench = Bench(target, senders=senders, connections=connections, artifact=artifact, say=_say)
        reports = asyncio.run(bench.run(plan, warm))
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table(title=f"{spec.name}: ledger appends, {senders} senders, {connections} connections "
                        f"over {len(target.submit)} nodes")
    for col in ("round", "succ", "fail", "send rate tps", "throughput tps", "events/s",
                "latency min/avg/max s", "p50/p95/p99 s", "blocks"):
        table.add_column(col)
    for r in reports:
        table.add_row(r.label, str(r.succ), str(r.fail), f"{r.send_rate:.0f}", f"{r.throughput:.0f}",
                      f"{r.events_per_second:.0f}",
                      f"{r.latency_min:.2f}/{r.latency_avg:.2f}/{r.latency_max:.2f}",
                      f"{r.latency_p50:.2f}/{r.latency_p95:.2f}/{r.latency_p99:.2f}", str(r.blocks))
    console.print(table)
    for r in reports:
        for error in r.errors:
            console.print(f"[yellow]{r.label}: {error}[/yellow]")
    if json_out is not None:
        assert bench.workload is not None
        json_out.write_text(json.dumps({
            "network": spec.name, "ledger": "0x" + bench.workload.ledger.hex(), "senders": senders,
            "connections": connections, "submit": target.submit,
            "rounds": [r.to_json() for r in reports]}, indent=2) + "\n")
