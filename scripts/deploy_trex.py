"""Deploy the ERC-3643 suite (T-REX 4.1.6 and ONCHAINID from npm), our compliance modules, a
KYC claim issuer, the DeFi-CeFi bridge, and one fund share class as a token.

    ape run deploy_trex --network ethereum:smartta-local [--account deployer] \\
        [--claim-signer kyc-issuer] [--salt FUND-A --name "..." --symbol ... --countries 442,250]

The bridge answers to this network's CeFi Event Ledger (deploy_ledger first) unless
--ledger-chain-id and --ledger-address name one elsewhere. The claim signer is the KYC
provider's key: its address becomes the ClaimIssuer's CLAIM key. Every step is skipped when
deployments.json shows it done, so a rerun, or a run for another --salt, only adds what is new.
"""

from __future__ import annotations

import click
from ape import project
from ape.cli import ConnectedProviderCommand, network_option

from scripts import _suite as suite
from scripts._network import Network, ScriptError

# All of T-REX and ONCHAINID, the modules and the bridge: ~32M gas once per network.
INFRA_GAS = 32_000_000
FUND_GAS = 7_000_000


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--account", "alias", default="deployer", show_default=True,
              help="keystore alias of the deployer (factory owner, token agent)")
@click.option("--claim-signer", "signer_alias", default="kyc-issuer", show_default=True,
              help="keystore alias of the KYC provider's claim-signing key")
@click.option("--salt", default="FUND-A", show_default=True, help="unique id of the share class")
@click.option("--name", default="SMART-TA Demo Fund A EUR", show_default=True)
@click.option("--symbol", default="SMTA", show_default=True)
@click.option("--decimals", default=6, show_default=True, type=int)
@click.option("--countries", default="442,250,276", show_default=True,
              help="allowed investor countries, ISO 3166-1 numeric")
@click.option("--supply-cap", default=10**15, show_default=True, type=int)
@click.option("--max-balance", default=10**13, show_default=True, type=int)
@click.option("--max-holders", default=500, show_default=True, type=int)
@click.option("--ledger-chain-id", type=int, help="chain id of the CeFi Event Ledger")
@click.option("--ledger-address", help="address of the CeFi Event Ledger")
def cli(alias: str, signer_alias: str, salt: str, name: str, symbol: str, decimals: int,
        countries: str, supply_cap: int, max_balance: int, max_holders: int,
        ledger_chain_id: int | None, ledger_address: str | None) -> None:
    net = Network()
    deployer = net.account(alias)
    signer = net.account(signer_alias)
    if ledger_address is None:
        ledger_address = net.deployments.lookup("CeFiEventLedger")
        ledger_chain_id = net.chain_id
        if ledger_address is None:
            raise ScriptError("the bridge needs the CeFi Event Ledger: run `ape run "
                              "deploy_ledger` here first, or give --ledger-chain-id and "
                              "--ledger-address")
    elif ledger_chain_id is None:
        raise ScriptError("--ledger-address needs --ledger-chain-id")
    try:
        allowed = tuple(int(c) for c in countries.split(",") if c.strip())
    except ValueError:
        raise ScriptError(f"--countries {countries!r}: give ISO 3166-1 numeric codes, "
                          "e.g. 442,250,276") from None
    funds = net.deployments.data["funds"]
    net.require_funds(deployer, (0 if net.deployments.lookup("TREXFactory") else INFRA_GAS)
                      + (0 if salt in funds else FUND_GAS))

    infra = suite.deploy_infra(project, deployer, claim_signer=signer.address,
                               ledger_chain_id=ledger_chain_id, ledger_address=ledger_address,
                               lookup=net.deployments.lookup, record=net.deployments.record)
    spec = suite.FundSpec(salt=salt, name=name, symbol=symbol, decimals=decimals,
                          allowed_countries=allowed, supply_cap=supply_cap,
                          max_balance=max_balance, max_holders=max_holders)
    fund = suite.deploy_fund(project, deployer, infra, spec)
    funds[salt] = {"token": fund.token.address, "identityRegistry": fund.identity_registry.address,
                   "compliance": fund.compliance.address, "name": name, "symbol": symbol,
                   "decimals": decimals}
    net.deployments.save()
    click.echo(f"T-REX factory {infra.factory.address}, bridge {infra.bridge.address} "
               f"(ledger {ledger_address} on chain {ledger_chain_id})")
    click.echo(f"fund {salt}: token {fund.token.address} {symbol}, identity registry "
               f"{fund.identity_registry.address}, compliance {fund.compliance.address} "
               f"with {', '.join(n for n in suite.MODULES if n != 'CountryBlocklist')}")
