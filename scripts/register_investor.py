"""Register an investor's wallet for a fund: an ONCHAINID managed by the transfer agent, a KYC
claim signed by the KYC provider's key, and the fund's identity registry with the country.

    ape run register_investor --network ethereum:smartta-local --wallet 0xWALLET \\
        --country 442 [--fund FUND-A] [--account deployer] [--claim-signer kyc-issuer]

Each step is skipped when already done; a revoked claim is replaced by a new one.
"""

from __future__ import annotations

import click
from ape import project
from ape.cli import ConnectedProviderCommand, network_option

from scripts import _suite as suite
from scripts._network import Network, ScriptError


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--wallet", required=True, help="the investor's wallet address")
@click.option("--country", required=True, type=int, help="ISO 3166-1 numeric, e.g. 442 (LU)")
@click.option("--fund", "salt", default="FUND-A", show_default=True, help="the share class salt")
@click.option("--account", "alias", default="deployer", show_default=True,
              help="keystore alias of the transfer agent (IdFactory owner, registry agent)")
@click.option("--claim-signer", "signer_alias", default="kyc-issuer", show_default=True,
              help="keystore alias of the KYC provider's claim-signing key")
def cli(wallet: str, country: int, salt: str, alias: str, signer_alias: str) -> None:
    net = Network()
    fund_record = net.deployments.data["funds"].get(salt)
    if fund_record is None:
        known = ", ".join(net.deployments.data["funds"]) or "none"
        raise ScriptError(f"no fund {salt!r} in {net.deployments.path} (known: {known}); run "
                          f"`ape run deploy_trex --salt {salt}` first")
    if not 0 < country < 1000:
        raise ScriptError(f"--country {country}: an ISO 3166-1 numeric code is 1 to 999")
    agent = net.account(alias)
    signer = net.account(signer_alias)
    infra_names = ["TREXFactory", "IdFactory", "TREXImplementationAuthority", "ClaimIssuer",
                   "DeFiCeFiBridge"]
    found = {n: net.deployments.lookup(n) for n in infra_names}
    if None in found.values():
        raise ScriptError(f"the T-REX suite is incomplete in {net.deployments.path}; rerun "
                          "`ape run deploy_trex`")
    infra = suite.Infra(
        factory=project.TREXFactory.at(found["TREXFactory"]),
        id_factory=project.IdFactory.at(found["IdFactory"]),
        trex_ia=project.TREXImplementationAuthority.at(found["TREXImplementationAuthority"]),
        claim_issuer=project.ClaimIssuer.at(found["ClaimIssuer"]),
        modules={}, bridge=project.DeFiCeFiBridge.at(found["DeFiCeFiBridge"]))
    token = project.Token.at(fund_record["token"])
    fund = suite.Fund(token, project.IdentityRegistry.at(token.identityRegistry()),
                      project.ModularCompliance.at(token.compliance()))
    if infra.id_factory.owner() != agent.address:
        raise ScriptError(f"{agent.address} does not own the IdFactory {infra.id_factory.address} "
                          "and cannot create identities; run with the deployer's --account")
    if not fund.identity_registry.isAgent(agent.address):
        raise ScriptError(f"{agent.address} is not an agent of {salt}'s identity registry "
                          f"{fund.identity_registry.address}; run with the token agent's --account")
    if not infra.claim_issuer.keyHasPurpose(suite.key_id(signer.address), suite.CLAIM):
        raise ScriptError(f"{signer.address} ({signer_alias}) is not a CLAIM key of the "
                          f"ClaimIssuer {infra.claim_issuer.address}: its claims would be refused")
    net.require_funds(agent, 1_200_000)
    investor = suite.register_investor(project, agent, infra, fund, wallet=wallet,
                                       country=country, claim_signer=signer)
    net.deployments.data["investors"].setdefault(salt, {})[wallet] = {
        "identity": investor.identity.address, "country": country}
    net.deployments.save()
    verified = fund.identity_registry.isVerified(wallet)
    click.echo(f"investor {wallet}: identity {investor.identity.address}, country {country}, "
               f"{'verified' if verified else 'NOT verified'} for {salt} ({token.address})")
    if not verified:
        raise ScriptError("the wallet is registered but not verified; check the claim topics "
                          "and trusted issuers of the fund")
