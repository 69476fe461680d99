"""Deploy the CeFi Event Ledger, or find the one already deployed on this chain.

    ape run deploy_ledger --network ethereum:smartta-local [--account deployer]

The account becomes the ledger's admin (DEFAULT_ADMIN_ROLE); grant writers, attesters and
pausers next with ``ape run grant_writer``. Recorded in networks/NAME/deployments.json.
"""

from __future__ import annotations

import click
from ape import project
from ape.cli import ConnectedProviderCommand, network_option

from scripts import _suite as suite
from scripts._network import Network


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--account", "alias", default="deployer", show_default=True,
              help="keystore alias in networks/NAME/accounts/")
def cli(alias: str) -> None:
    net = Network()
    deployer = net.account(alias)
    if net.deployments.lookup("CeFiEventLedger") is None:
        net.require_funds(deployer, 2_500_000)
    ledger = suite.deploy_ledger(project, deployer, lookup=net.deployments.lookup,
                                 record=net.deployments.record)
    count, head = ledger.head()
    click.echo(f"CeFiEventLedger {ledger.address} on chain {net.chain_id}: {count} records, "
               f"head {bytes(head).hex()}, admin {deployer.address} "
               f"(recorded in {net.deployments.path})")
