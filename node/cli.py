"""``smartta node …`` and ``smartta network …``: run a node, and create and drive networks.

Every network command takes ``--dir networks/NAME``; keystore passwords come from
``SMARTTA_KEYSTORE_PASSWORD`` or a prompt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.console import Console

from chain.attest.keys import PASSWORD_ENV, KeystoreError
from node.network.init import default_spec, init_network
from node.network.spec import NetworkSpec, SpecError

console = Console()
DIR_OPTION = click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                          required=True, help="The network's folder, e.g. networks/local.")


def password(*, confirm: bool = False) -> str:
    value = os.environ.get(PASSWORD_ENV)
    if value:
        return value
    if not os.isatty(0):
        raise click.ClickException(
            f"no keystore password: set {PASSWORD_ENV} or run the command in a terminal")
    return str(click.prompt("Keystore password", hide_input=True, confirmation_prompt=confirm))


@click.group()
def network() -> None:
    """Create, check and run a QBFT consortium (locally, or generated for Besu)."""


@network.command("init")
@DIR_OPTION
@click.option("--validators", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--observers", type=click.IntRange(0, 16), default=0, show_default=True)
@click.option("--chain-id", type=click.IntRange(1), default=1337, show_default=True)
@click.option("--block-period", type=click.IntRange(1), default=1, show_default=True,
              help="blockperiodseconds")
@click.option("--request-timeout", type=click.IntRange(1), default=None,
              help="requesttimeoutseconds (default: twice the block period)")
@click.option("--organisation", default="operator", show_default=True)
@click.option("--base-port", type=int, default=0, show_default=True,
              help="Offset added to every default port (run several networks side by side).")
@click.option("--seeded", is_flag=True,
              help="Derive keys from fixed seeds: a throwaway devnet or test only, never real.")
@click.option("--dev", "dev_mode", is_flag=True,
              help="Enable evm_* development methods (needs --validators 1).")
def network_init(directory: Path, validators: int, observers: int, chain_id: int, block_period: int,
                 request_timeout: int | None, organisation: str, base_port: int, seeded: bool,
                 dev_mode: bool) -> None:
    """Write network.yaml, the node keys, genesis.json and network.lock.

    Re-running keeps every existing key and refuses to change an existing genesis.
    """
    try:
        if (directory / "network.yaml").exists():
            spec = NetworkSpec.load(directory)
            console.print(f"using the existing spec {directory / 'network.yaml'}")
        else:
            spec = default_spec(directory.name, validators=validators, observers=observers,
                                chain_id=chain_id, block_period=block_period,
                                request_timeout=request_timeout, organisation=organisation,
                                base_port=base_port, dev_mode=dev_mode, seeded=seeded)
        new_keys = any(not (directory / "keys" / n.name / "key.json").exists() for n in spec.nodes)
        spec, genesis = init_network(directory, spec, password(confirm=new_keys),
                                     scrypt_n=2**14 if spec.seeded_keys else None)
    except (SpecError, KeystoreError) as exc:
        raise click.ClickException(str(exc)) from exc
    if spec.seeded_keys:
        console.print("[yellow]keys are derived from fixed seeds: this network is a throwaway "
                      "devnet; never put value or real data on it[/yellow]")
    console.print(f"network [bold]{spec.name}[/bold]: chain id {spec.chain_id}, "
                  f"{len(spec.validators)} validators, genesis 0x{genesis.hash.hex()}")
    for n in spec.nodes:
        console.print(f"  {n.name:<12} {','.join(n.roles):<20} {n.address}  "
                      f"rpc http://{n.host}:{n.rpc_http_port}")


@network.command("show")
@DIR_OPTION
def network_show(directory: Path) -> None:
    """Print the network spec as JSON."""
    try:
        spec = NetworkSpec.load(directory)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"name": spec.name, "chain_id": spec.chain_id,
                           "nodes": [n.__dict__ for n in spec.nodes]}, indent=2))


@click.group()
def node() -> None:
    """Run one node of a network in the foreground."""
