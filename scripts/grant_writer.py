"""Grant the ledger's roles: writers (who submit records), attesters (whose attested events
may be recorded), the off-chain-attestation writer role (scheme 2, BLS) and pausers.

    ape run grant_writer --network ethereum:smartta-local --writer 0xWRITER \\
        [--attester 0xACTOR ...] [--offchain-attestation] [--pauser 0xPAUSER] [--account deployer]

Roles already held are left alone, so a rerun changes nothing.
"""

from __future__ import annotations

import click
from ape import project
from ape.cli import ConnectedProviderCommand, network_option

from chain.ledger import onchain
from scripts import _suite as suite
from scripts._network import Network, ScriptError


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--writer", "writers", multiple=True, help="address to grant WRITER_ROLE")
@click.option("--attester", "attesters", multiple=True, help="actor address to grant ATTESTER_ROLE")
@click.option("--pauser", "pausers", multiple=True, help="address to grant PAUSER_ROLE")
@click.option("--offchain-attestation", is_flag=True,
              help="also let the writers append records attested off chain (BLS, scheme 2)")
@click.option("--account", "alias", default="deployer", show_default=True,
              help="the ledger admin's keystore alias in networks/NAME/accounts/")
def cli(writers: tuple[str, ...], attesters: tuple[str, ...], pausers: tuple[str, ...],
        offchain_attestation: bool, alias: str) -> None:
    if not (writers or attesters or pausers):
        raise ScriptError("nothing to grant: give --writer, --attester or --pauser")
    net = Network()
    ledger = net.ledger(project)
    admin = net.account(alias)
    net.require_role(ledger, onchain.ROLES["DEFAULT_ADMIN_ROLE"], admin, "DEFAULT_ADMIN_ROLE",
                     "grant ledger roles")
    wanted = [(onchain.WRITER_ROLE, "WRITER_ROLE", w) for w in writers]
    wanted += [(onchain.OFFCHAIN_ATTESTATION_ROLE, "OFFCHAIN_ATTESTATION_ROLE", w)
               for w in writers if offchain_attestation]
    wanted += [(onchain.ATTESTER_ROLE, "ATTESTER_ROLE", a) for a in attesters]
    wanted += [(onchain.PAUSER_ROLE, "PAUSER_ROLE", p) for p in pausers]
    net.require_funds(admin, 60_000 * len(wanted))
    for role, name, who in wanted:
        sent = suite.grant(ledger, role, who, admin)
        click.echo(f"{name} {'granted to' if sent else 'already held by'} {who}")
