"""The ERC-3643 suite from T-REX 4.1.6's npm artifacts, deployed as scripts/_suite.py does
(the factory, our compliance modules), with ONCHAINID identities and KYC claims."""

from __future__ import annotations

from typing import Any

import ape
import pytest
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from .conftest import DE, FR, LU, US, new_fund, onboard, suite, use_record


@pytest.fixture(scope="module")
def fund(project, admin, infra):
    return new_fund(project, admin, infra, "TREX-A", allowed_countries=(LU, FR, DE))


@pytest.fixture(scope="module")
def registered(project, admin, infra, fund, investors, claim_signer):
    alice = onboard(project, admin, infra, fund, investors["alice"], LU, claim_signer)
    bob = onboard(project, admin, infra, fund, investors["bob"], FR, claim_signer)
    dave = onboard(project, admin, infra, fund, investors["dave"], US, claim_signer)
    return {"alice": alice, "bob": bob, "dave": dave}


def mint(infra: Any, fund: Any, wallet: Any, amount: int, n: int, sender: Any) -> Any:
    seq, record = use_record(n)
    return infra.bridge.mint(fund.token, wallet, amount, seq, record, sender=sender)


def test_factory_deploys_the_fund_with_our_modules_and_none_of_trexs(fund, infra, admin):
    assert (fund.token.name(), fund.token.symbol(), fund.token.decimals()) == \
        ("SMART-TA TREX-A", "TREX-A", 6)
    assert fund.token.owner() == admin.address
    assert not fund.token.paused()
    modules = set(fund.compliance.getModules())
    ours = {infra.modules[n].address for n in
            ("CountryAllowlist", "SupplyCap", "MaxBalancePerInvestor", "MaxHolders")}
    assert modules == ours
    assert fund.token.isAgent(infra.bridge.address) and fund.token.isAgent(admin.address)
    assert fund.identity_registry.isAgent(fund.token.address)


def test_deploying_the_same_fund_again_changes_nothing(project, admin, infra, fund):
    again = new_fund(project, admin, infra, "TREX-A", allowed_countries=(LU, FR, DE))
    assert again.token.address == fund.token.address


def test_investor_with_a_valid_kyc_claim_is_verified_and_receives_units(
        fund, infra, registered, investors, admin):
    alice = investors["alice"]
    assert fund.identity_registry.isVerified(alice)
    mint(infra, fund, alice, 700, 1, admin)
    fund.token.transfer(investors["bob"], 200, sender=alice)
    assert fund.token.balanceOf(alice) == 500
    assert fund.token.balanceOf(investors["bob"]) == 200


def test_transfer_and_mint_to_a_wallet_without_a_valid_claim_revert(
        project, fund, infra, registered, investors, admin):
    charlie = investors["charlie"]
    # An identity and a registry entry, but no KYC claim on it.
    infra.id_factory.createIdentityWithManagementKeys(
        charlie, "no-claim", [suite.key_id(admin.address)], sender=admin)
    fund.identity_registry.registerIdentity(charlie, infra.id_factory.getIdentity(charlie), LU,
                                            sender=admin)
    assert not fund.identity_registry.isVerified(charlie)
    mint(infra, fund, investors["alice"], 100, 2, admin)
    with ape.reverts("Transfer not possible"):
        fund.token.transfer(charlie, 10, sender=investors["alice"])
    with ape.reverts("Identity is not verified."):
        mint(infra, fund, charlie, 10, 3, admin)


def test_transfer_to_a_disallowed_country_reverts(fund, infra, registered, investors, admin):
    dave = investors["dave"]
    assert fund.identity_registry.isVerified(dave)  # KYC is fine; the US is not allowed
    mint(infra, fund, investors["alice"], 100, 4, admin)
    with ape.reverts("Transfer not possible"):
        fund.token.transfer(dave, 10, sender=investors["alice"])
    with ape.reverts("Compliance not followed"):
        mint(infra, fund, dave, 10, 5, admin)


def test_transfer_after_the_claim_is_revoked_reverts(project, fund, infra, registered, investors,
                                                     admin, claim_signer):
    bob = investors["bob"]
    mint(infra, fund, investors["alice"], 100, 6, admin)
    fund.token.transfer(bob, 10, sender=investors["alice"])
    identity = registered["bob"].identity
    claim_id = bytes(keccak(abi_encode(["address", "uint256"],
                                       [infra.claim_issuer.address, suite.KYC_TOPIC])))
    signature = identity.getClaim(claim_id)[3]
    infra.claim_issuer.revokeClaimBySignature(signature, sender=admin)
    assert not fund.identity_registry.isVerified(bob)
    with ape.reverts("Transfer not possible"):
        fund.token.transfer(bob, 10, sender=investors["alice"])
    # Registering again issues a fresh claim, and bob is verified again.
    onboard(project, admin, infra, fund, bob, FR, claim_signer)
    assert fund.identity_registry.isVerified(bob)


def test_claim_signed_by_a_key_without_the_claim_purpose_is_refused(fund, infra, registered,
                                                                    investors, admin, accounts):
    identity = registered["alice"].identity
    data = suite.CLAIM_DATA_PREFIX + b"1"
    forged = suite.kyc_claim_signature(identity.address, suite.KYC_TOPIC, data, accounts[2])
    with ape.reverts("invalid claim"):
        identity.addClaim(suite.KYC_TOPIC, 1, infra.claim_issuer.address, forged, data, "",
                          sender=admin)


def test_claim_bytes_are_what_onchainid_checks(infra, registered, claim_signer):
    identity = registered["alice"].identity.address
    first, second = suite.CLAIM_DATA_PREFIX + b"1", suite.CLAIM_DATA_PREFIX + b"2"
    signature = suite.kyc_claim_signature(identity, suite.KYC_TOPIC, first, claim_signer)
    assert infra.claim_issuer.isClaimValid(identity, suite.KYC_TOPIC, signature, first)
    assert not infra.claim_issuer.isClaimValid(identity, suite.KYC_TOPIC, signature, second)


def test_registering_an_investor_twice_changes_nothing(project, admin, infra, fund, registered,
                                                       investors, claim_signer):
    again = onboard(project, admin, infra, fund, investors["alice"], LU, claim_signer)
    assert again.identity.address == registered["alice"].identity.address
    assert fund.identity_registry.investorCountry(investors["alice"]) == LU
