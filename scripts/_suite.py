"""Deploying our contracts and the ERC-3643 suite, as steps over ape objects.

The scripts (deploy_ledger, deploy_trex, grant_writer, register_investor) run these against a
live network and record what they made in networks/NAME/deployments.json; the ape tests run
the very same steps on ape's EthTester network. T-REX and ONCHAINID are deployed from their
npm artifacts (contracts/trex/, converted by ``make setup``) the way T-REX's own fixtures and
factory do it; the compliance modules are ours (contracts/compliance/, docs/LICENSING.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak

from chain.ledger import onchain

# ONCHAINID key purposes and types (ERC-734).
MANAGEMENT = 1
CLAIM = 3
ECDSA = 1
ECDSA_SCHEME = 1
KYC_TOPIC = int.from_bytes(keccak(b"SMART-TA KYC"), "big")
"""The claim topic every investor needs: a KYC claim by a trusted issuer."""
TREX_VERSION = (4, 1, 6)
ZERO = "0x" + "00" * 20
MODULES = ("CountryAllowlist", "CountryBlocklist", "SupplyCap", "MaxBalancePerInvestor",
           "MaxHolders")

Lookup = Callable[[str], str | None]
"""Returns the recorded address of a named deployment, or None; the deployer records."""
Record = Callable[[str, Any], None]


class SuiteError(RuntimeError):
    """A deployment step that cannot proceed, with what to do about it."""


def key_id(address: str) -> bytes:
    """An ONCHAINID key: keccak256(abi.encode(address))."""
    return bytes(keccak(abi_encode(["address"], [address])))


def _get_or_deploy(name: str, lookup: Lookup, record: Record,
                   deploy: Callable[[], Any], container: Any) -> Any:
    known = lookup(name)
    if known is not None:
        return container.at(known)
    instance = deploy()
    record(name, instance)
    return instance


def _memory() -> tuple[Lookup, Record]:
    made: dict[str, str] = {}
    return made.get, lambda name, c: made.__setitem__(name, c.address)


def deploy_ledger(project: Any, deployer: Any, *, lookup: Lookup | None = None,
                  record: Record | None = None) -> Any:
    """The CeFi Event Ledger with ``deployer`` as its admin (who then grants the roles)."""
    lookup, record = (lookup, record) if lookup and record else _memory()
    return _get_or_deploy("CeFiEventLedger", lookup, record,
                          lambda: deployer.deploy(project.CeFiEventLedger, deployer),
                          project.CeFiEventLedger)


def grant(contract: Any, role: bytes, account: str, admin: Any) -> bool:
    """Grant ``role`` unless held already; True if a transaction was sent."""
    if contract.hasRole(role, account):
        return False
    admin_role = contract.getRoleAdmin(role)
    if not contract.hasRole(admin_role, admin.address):
        raise SuiteError(
            f"{admin.address} cannot grant this role on {contract.address}: it lacks the role's "
            f"admin role 0x{bytes(admin_role).hex()}; run as the contract's admin")
    contract.grantRole(role, account, sender=admin)
    return True


@dataclass
class Infra:
    """What every fund on a network shares."""

    factory: Any
    id_factory: Any
    trex_ia: Any
    claim_issuer: Any
    modules: dict[str, Any]
    bridge: Any


def deploy_infra(project: Any, deployer: Any, *, claim_signer: str, ledger_chain_id: int,
                 ledger_address: str, lookup: Lookup | None = None,
                 record: Record | None = None) -> Infra:
    """T-REX implementations, the ONCHAINID factory, TREXImplementationAuthority, TREXFactory
    (as T-REX's deploy-full-suite fixture does), a KYC ClaimIssuer whose CLAIM key is
    ``claim_signer``, our compliance modules and the bridge; each step skipped if recorded."""
    lookup, record = (lookup, record) if lookup and record else _memory()

    def get(name: str, container: Any, *args: Any) -> Any:
        return _get_or_deploy(name, lookup, record, lambda: deployer.deploy(container, *args),
                              container)

    impls = {name: get(f"impl/{name}", getattr(project, name))
             for name in ("Token", "ClaimTopicsRegistry", "IdentityRegistry",
                          "IdentityRegistryStorage", "TrustedIssuersRegistry",
                          "ModularCompliance")}
    identity_impl = get("impl/Identity", project.Identity, deployer, True)
    identity_ia = get("ImplementationAuthority", project.ImplementationAuthority, identity_impl)
    id_factory = get("IdFactory", project.IdFactory, identity_ia)
    trex_ia = get("TREXImplementationAuthority", project.TREXImplementationAuthority, True,
                  ZERO, ZERO)
    if trex_ia.getTokenImplementation() == ZERO:
        order = ("Token", "ClaimTopicsRegistry", "IdentityRegistry", "IdentityRegistryStorage",
                 "TrustedIssuersRegistry", "ModularCompliance")
        trex_ia.addAndUseTREXVersion(TREX_VERSION, tuple(impls[n].address for n in order),
                                     sender=deployer)
    factory = get("TREXFactory", project.TREXFactory, trex_ia, id_factory)
    if not id_factory.isTokenFactory(factory):
        id_factory.addTokenFactory(factory, sender=deployer)

    claim_issuer = get("ClaimIssuer", project.ClaimIssuer, deployer)
    if not claim_issuer.keyHasPurpose(key_id(claim_signer), CLAIM):
        claim_issuer.addKey(key_id(claim_signer), CLAIM, ECDSA, sender=deployer)

    modules = {name: get(f"module/{name}", getattr(project, name)) for name in MODULES}
    bridge = get("DeFiCeFiBridge", project.DeFiCeFiBridge, deployer, ledger_chain_id,
                 ledger_address)
    if not bridge.hasRole(bridge.OPERATOR_ROLE(), deployer.address):
        bridge.grantRole(bridge.OPERATOR_ROLE(), deployer, sender=deployer)
    return Infra(factory, id_factory, trex_ia, claim_issuer, modules, bridge)


@dataclass
class FundSpec:
    """One fund share class as an ERC-3643 token, and its compliance rules."""

    salt: str
    name: str
    symbol: str
    decimals: int = 6
    allowed_countries: Sequence[int] = (442, 250, 276)  # LU, FR, DE (ISO 3166-1 numeric)
    blocked_countries: Sequence[int] = ()
    supply_cap: int = 10**9 * 10**6
    max_balance: int = 10**7 * 10**6
    max_holders: int = 500
    extra_agents: Sequence[str] = field(default_factory=tuple)


@dataclass
class Fund:
    token: Any
    identity_registry: Any
    compliance: Any


def deploy_fund(project: Any, deployer: Any, infra: Infra, spec: FundSpec) -> Fund:
    """``TREXFactory.deployTREXSuite`` for one share class: KYC topic trusted for our issuer,
    our modules bound and configured in the same transaction (MaxBalance and MaxHolders must
    bind while the supply is zero), the bridge and the deployer as token agents; then the
    agent unpauses the token and the bridge takes it on. Idempotent by salt."""
    token_address = infra.factory.getToken(spec.salt)
    if token_address == ZERO:
        m = infra.modules
        settings: list[tuple[Any, bytes]] = [
            (m["CountryAllowlist"], m["CountryAllowlist"].allowCountries.encode_input(
                list(spec.allowed_countries))),
            (m["SupplyCap"], m["SupplyCap"].setSupplyCap.encode_input(spec.supply_cap)),
            (m["MaxBalancePerInvestor"],
             m["MaxBalancePerInvestor"].setMaxBalance.encode_input(spec.max_balance)),
            (m["MaxHolders"], m["MaxHolders"].setMaxHolders.encode_input(spec.max_holders)),
        ]
        if spec.blocked_countries:
            settings.append((m["CountryBlocklist"], m["CountryBlocklist"].blockCountries.encode_input(
                list(spec.blocked_countries))))
        token_details = (
            deployer.address, spec.name, spec.symbol, spec.decimals, ZERO, ZERO,
            [deployer.address],
            [deployer.address, infra.bridge.address, *spec.extra_agents],
            [module.address for module, _ in settings],
            [bytes(data) for _, data in settings],
        )
        claim_details = ([KYC_TOPIC], [infra.claim_issuer.address], [[KYC_TOPIC]])
        infra.factory.deployTREXSuite(spec.salt, token_details, claim_details, sender=deployer)
        token_address = infra.factory.getToken(spec.salt)
    token = project.Token.at(token_address)
    if token.paused():
        token.unpause(sender=deployer)
    if not infra.bridge.isToken(token_address):
        infra.bridge.addToken(token_address, sender=deployer)
    return Fund(token, project.IdentityRegistry.at(token.identityRegistry()),
                project.ModularCompliance.at(token.compliance()))


def kyc_claim_signature(identity: str, topic: int, data: bytes, signer: Any) -> bytes:
    """What ONCHAINID checks: keccak256(abi.encode(identity, topic, data)), signed as an
    EIP-191 personal message (over the 32 raw bytes) by a CLAIM key of the issuer."""
    digest = bytes(keccak(abi_encode(["address", "uint256", "bytes"], [identity, topic, data])))
    sig = signer.sign_message(encode_defunct(primitive=digest))
    return bytes(sig.r) + bytes(sig.s) + bytes([sig.v])


@dataclass
class Investor:
    wallet: str
    identity: Any
    country: int


def register_investor(project: Any, deployer: Any, infra: Infra, fund: Fund, *, wallet: str,
                      country: int, claim_signer: Any) -> Investor:
    """Give ``wallet`` an ONCHAINID managed by the transfer agent (the deployer's key), a KYC
    claim signed by the issuer's CLAIM key, and a place in the fund's identity registry with
    its country. Each step is skipped if already done; a revoked claim is replaced by a new
    revision (signatures are deterministic, so the same data would be revoked already)."""
    identity_address = infra.id_factory.getIdentity(wallet)
    if identity_address == ZERO:
        salt = "investor-" + wallet.lower()
        infra.id_factory.createIdentityWithManagementKeys(wallet, salt, [key_id(deployer.address)],
                                                          sender=deployer)
        identity_address = infra.id_factory.getIdentity(wallet)
    identity = project.Identity.at(identity_address)
    issuer = infra.claim_issuer.address
    claim_id = bytes(keccak(abi_encode(["address", "uint256"], [issuer, KYC_TOPIC])))
    existing = identity.getClaim(claim_id)
    if existing[0] != KYC_TOPIC or not infra.claim_issuer.isClaimValid(
            identity_address, KYC_TOPIC, existing[3], existing[4]):
        revision = _claim_revision(bytes(existing[4])) + 1 if existing[0] == KYC_TOPIC else 1
        claim_data = CLAIM_DATA_PREFIX + str(revision).encode()
        signature = kyc_claim_signature(identity_address, KYC_TOPIC, claim_data, claim_signer)
        identity.addClaim(KYC_TOPIC, ECDSA_SCHEME, issuer, signature, claim_data, "",
                          sender=deployer)
    if not fund.identity_registry.contains(wallet):
        fund.identity_registry.registerIdentity(wallet, identity_address, country, sender=deployer)
    elif fund.identity_registry.investorCountry(wallet) != country:
        fund.identity_registry.updateCountry(wallet, country, sender=deployer)
    return Investor(wallet, identity, country)


CLAIM_DATA_PREFIX = b"SMART-TA KYC revision "


def _claim_revision(data: bytes) -> int:
    tail = data.removeprefix(CLAIM_DATA_PREFIX)
    return int(tail) if tail != data and tail.isdigit() else 0


def roles_of(contract: Any, names: Mapping[str, bytes], account: str) -> list[str]:
    return [n for n, role in names.items() if contract.hasRole(role, account)]


LEDGER_ROLES = onchain.ROLES
