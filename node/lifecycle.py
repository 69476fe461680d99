"""``smartta node run`` and ``smartta network up|down|status``: running the nodes of a spec.

These attach to the ``node`` and ``network`` groups of ``node.cli``; the ``smartta`` entry
points load the groups from here so the commands are always registered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chain.qbft.genesis import GenesisError
from node.cli import DIR_OPTION, network, node, password
from node.network import local, operate  # noqa: F401 - operate adds `network drill`, `bench`
from node.network.spec import NetworkSpec, SpecError

console = Console()
__all__ = ["network", "node"]


def _spec(directory: Path) -> NetworkSpec:
    try:
        return NetworkSpec.load(directory)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from exc


@node.command("run")
@DIR_OPTION
@click.option("--name", required=True, help="The node's name in network.yaml, e.g. validator-1.")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Data directory (default: <dir>/data/<name>).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def node_run(directory: Path, name: str, data: Path | None, log_level: str) -> None:
    """Run one node in the foreground until SIGTERM or Ctrl-C."""
    from node.node import Node, NodeConfig, NodeError

    logging.basicConfig(level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        instance = Node(NodeConfig(directory, name, password(), data))
    except (NodeError, GenesisError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        asyncio.run(instance.run_until_signalled())
    except OSError as exc:
        raise click.ClickException(f"{name} cannot listen: {exc}; is another node or process "
                                   "using its ports? (`smartta network status`)") from exc


@network.command("up")
@DIR_OPTION
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds to wait for every node to answer JSON-RPC.")
def network_up(directory: Path, timeout: float) -> None:
    """Start every node of a local network as a detached process."""
    spec = _spec(directory)
    if spec.deployment != "local":
        raise click.ClickException(f"network {spec.name} is deployed to {spec.deployment}; "
                                   "`up` runs local networks only")
    env = {"SMARTTA_KEYSTORE_PASSWORD": password()}
    started = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("starting nodes", total=len(spec.nodes))
        for n in spec.nodes:
            local.start_node(directory, n, env)
            bar.advance(task)
        task = bar.add_task("waiting for JSON-RPC", total=len(spec.nodes))
        deadline = time.monotonic() + timeout
        waiting = list(spec.nodes)
        while waiting and time.monotonic() < deadline:
            still = []
            for n in waiting:
                if local.running_pid(directory, n) is None:
                    raise click.ClickException(
                        f"{n.name} exited during start-up; see {local.log_file(directory, n)}")
                try:
                    local.rpc(local.url_of(n), "eth_blockNumber", timeout=0.5)
                    bar.advance(task)
                except local.LiveError:
                    still.append(n)
            waiting = still
            time.sleep(0.2)
    if waiting:
        names = ", ".join(n.name for n in waiting)
        raise click.ClickException(f"{names} did not answer within {timeout:.0f}s; see the logs "
                                   f"in {directory / local.RUN_DIR}")
    console.print(f"network [bold]{spec.name}[/bold] up: {len(spec.nodes)} nodes in "
                  f"{time.monotonic() - started:.1f}s")
    _print_status(directory, spec, as_json=False)


@network.command("down")
@DIR_OPTION
def network_down(directory: Path) -> None:
    """Stop every node of a local network (SIGTERM, then SIGKILL after 15 s)."""
    spec = _spec(directory)
    stopped = local.stop_nodes(directory, spec.nodes)
    console.print(f"stopped {', '.join(stopped)}" if stopped else "no node was running")


@network.command("status")
@DIR_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON: {\"nodes\": [...]}.")
def network_status(directory: Path, as_json: bool) -> None:
    """Show each node's height, peers, last proposer, round changes and signer metrics."""
    spec = _spec(directory)
    if not _print_status(directory, spec, as_json=as_json):
        sys.exit(1)


def _print_status(directory: Path, spec: NetworkSpec, *, as_json: bool) -> bool:
    states = [local.node_state(directory, n) for n in spec.nodes]
    if as_json:
        click.echo(json.dumps({"network": spec.name, "chain_id": spec.chain_id,
                               "nodes": [s.to_json() for s in states]}, indent=2))
        return all(s.error is None for s in states)
    table = Table(title=f"{spec.name} (chain {spec.chain_id})")
    for col in ("node", "role", "pid", "height", "peers", "last proposer", "round changes",
                "blocks proposed (last 100)", "rpc"):
        table.add_column(col)
    for s in states:
        signer = ""
        if s.signer_blocks:
            me = spec.node(s.name).address.lower()
            signer = str(s.signer_blocks.get(me, 0))
        table.add_row(s.name, s.role, str(s.pid or "-"),
                      "-" if s.height is None else str(s.height),
                      "-" if s.peers is None else str(s.peers),
                      (s.last_proposer or "-")[:12], "-" if s.round_changes is None else
                      str(s.round_changes), signer, s.rpc_http if s.error is None else
                      f"[red]{s.error}[/red]")
    console.print(table)
    return all(s.error is None for s in states)


@network.command("account")
@DIR_OPTION
@click.option("--alias", required=True, help="Account name, e.g. deployer or kyc-issuer.")
def network_account(directory: Path, alias: str) -> None:
    """Create an account keystore for the ape scripts: <dir>/accounts/ALIAS.json.

    Never replaces one. On a seeded (throwaway) network the key is derived from the network and
    the alias, so every machine gets the same address; otherwise it comes from the OS CSPRNG.
    """
    import secrets as _secrets

    from eth_hash.auto import keccak

    from chain.attest.keys import KeystoreError, write_keystore
    from chain.qbft.seals import address_of

    spec = _spec(directory)
    if not alias.replace("-", "").replace("_", "").isalnum():
        raise click.BadParameter("use letters, digits, - and _", param_hint="--alias")
    path = directory / "accounts" / f"{alias}.json"
    if path.exists():
        address = json.loads(path.read_text()).get("address", "?")
        console.print(f"{alias}: 0x{address} (exists, kept)")
        return
    secret = (bytes(keccak(f"smartta throwaway devnet account {spec.name}/{spec.chain_id}/{alias}"
                           .encode())) if spec.seeded_keys else _secrets.token_bytes(32))
    try:
        write_keystore(path, secret, password(confirm=True),
                       scrypt_n=2**14 if spec.seeded_keys else None)
    except KeystoreError as exc:
        raise click.ClickException(str(exc)) from exc
    console.print(f"{alias}: 0x{address_of(secret).hex()} -> {path}")
