"""Our compliance modules (contracts/compliance/) under T-REX's ModularCompliance and Token:
binding, configuration rights, every check and every action, as T-REX tests its own modules."""

from __future__ import annotations

from typing import Any

import ape
import pytest

from .conftest import DE, FR, LU, US, new_fund, onboard, suite, use_record

NOT_OWNER = "Ownable: caller is not the owner"
UNSUITABLE = "compliance is not suitable for binding to the module"


class Desk:
    """One fund with its investors, and the agent's hands on it."""

    def __init__(self, infra: Any, fund: Any, admin: Any, wallets: dict[str, Any]) -> None:
        self.infra, self.fund, self.admin, self.w = infra, fund, admin, wallets
        self.records = 0

    def mint(self, who: str, amount: int) -> Any:
        self.records += 1
        seq, record = use_record(self.fund.token.address.__hash__() % 10**6 * 1000 + self.records)
        return self.infra.bridge.mint(self.fund.token, self.w[who], amount, seq, record,
                                      sender=self.admin)

    def burn(self, who: str, amount: int) -> Any:
        self.records += 1
        seq, record = use_record(10**9 + self.fund.token.address.__hash__() % 10**6 * 1000
                                 + self.records)
        return self.infra.bridge.burn(self.fund.token, self.w[who], amount, seq, record,
                                      sender=self.admin)

    def configure(self, module: str, fn: str, *args: Any, sender: Any = None) -> Any:
        m = self.infra.modules[module]
        data = getattr(m, fn).encode_input(*args)
        return self.fund.compliance.callModuleFunction(data, m, sender=sender or self.admin)

    def can(self, sender: str | None, receiver: str, amount: int) -> bool:
        frm = "0x" + "00" * 20 if sender is None else self.w[sender].address
        return bool(self.fund.compliance.canTransfer(frm, self.w[receiver], amount))


@pytest.fixture(scope="module")
def wallets(accounts):
    return {"alice": accounts[6], "alice2": accounts[2], "bob": accounts[7], "carol": accounts[8],
            "dave": accounts[9]}


@pytest.fixture(scope="module")
def desk(project, admin, infra, wallets, claim_signer):
    fund = new_fund(project, admin, infra, "MOD-A", allowed_countries=(LU, FR, DE, US),
                    supply_cap=1_000, max_balance=400, max_holders=3)
    for name, country in (("alice", LU), ("bob", FR), ("carol", DE), ("dave", US)):
        onboard(project, admin, infra, fund, wallets[name], country, claim_signer)
    # alice's second wallet belongs to the same investor (the same ONCHAINID)
    alice_id = infra.id_factory.getIdentity(wallets["alice"])
    fund.identity_registry.registerIdentity(wallets["alice2"], alice_id, LU, sender=admin)
    return Desk(infra, fund, admin, wallets)


# --- binding and configuration rights (all modules) --------------------------------------

@pytest.mark.parametrize("name", suite.MODULES)
def test_module_names_itself_and_only_a_compliance_binds_itself(infra, name, admin, desk):
    # (A contract binding itself only ever touches its own state: all of it is per compliance.)
    module = infra.modules[name]
    assert module.name() == name
    assert module.isPlugAndPlay() == (name not in ("MaxBalancePerInvestor", "MaxHolders"))
    with ape.reverts(module.OnlyTheCompliance, caller=admin.address,
                     compliance=desk.fund.compliance.address):
        module.bindCompliance(desk.fund.compliance, sender=admin)
    with ape.reverts(module.ZeroAddress):
        module.bindCompliance("0x" + "00" * 20, sender=admin)
    with ape.reverts(module.NotBound):
        module.unbindCompliance(desk.fund.compliance, sender=admin)


@pytest.mark.parametrize("name,fn,args", [
    ("CountryAllowlist", "allowCountries", ([1],)),
    ("CountryBlocklist", "blockCountries", ([1],)),
    ("SupplyCap", "setSupplyCap", (1,)),
    ("MaxBalancePerInvestor", "setMaxBalance", (1,)),
    ("MaxHolders", "setMaxHolders", (1,)),
])
def test_only_the_compliance_owner_configures_a_module(desk, wallets, name, fn, args):
    module = desk.infra.modules[name]
    with ape.reverts(module.NotBound):
        getattr(module, fn)(*args, sender=desk.admin)
    if name == "CountryBlocklist":
        desk.fund.compliance.addModule(module, sender=desk.admin)
    with ape.reverts(NOT_OWNER):
        desk.configure(name, fn, *args, sender=wallets["bob"])
    receipt = desk.configure(name, fn, *args)
    assert receipt.status == 1


def test_binding_and_unbinding_are_announced_and_tracked(desk):
    module = desk.infra.modules["CountryBlocklist"]
    mc = desk.fund.compliance
    receipt = mc.addModule(module, sender=desk.admin)
    assert [e.compliance for e in receipt.decode_logs(module.ComplianceBound)] == [mc.address]
    assert module.isComplianceBound(mc)
    with ape.reverts("module already bound"):
        mc.addModule(module, sender=desk.admin)
    receipt = mc.removeModule(module, sender=desk.admin)
    assert [e.compliance for e in receipt.decode_logs(module.ComplianceUnbound)] == [mc.address]
    assert not module.isComplianceBound(mc)


@pytest.mark.parametrize("name", ["MaxBalancePerInvestor", "MaxHolders"])
def test_balance_keeping_modules_bind_only_before_the_first_unit(project, admin, infra, desk,
                                                                 name):
    desk.mint("alice", 10)
    mc = desk.fund.compliance
    mc.removeModule(infra.modules[name], sender=admin)
    assert not infra.modules[name].canComplianceBind(mc)
    with ape.reverts(UNSUITABLE):
        mc.addModule(infra.modules[name], sender=admin)


# --- CountryAllowlist ----------------------------------------------------------------------

def test_allowlist_admits_only_listed_countries_on_mint_and_transfer(desk):
    desk.configure("CountryAllowlist", "disallowCountries", [US])
    assert not desk.infra.modules["CountryAllowlist"].isCountryAllowed(desk.fund.compliance, US)
    assert not desk.can(None, "dave", 1) and desk.can(None, "bob", 1)
    with ape.reverts("Compliance not followed"):
        desk.mint("dave", 1)
    desk.mint("alice", 50)
    with ape.reverts("Transfer not possible"):
        desk.fund.token.transfer(desk.w["dave"], 1, sender=desk.w["alice"])
    desk.configure("CountryAllowlist", "allowCountries", [US])
    desk.fund.token.transfer(desk.w["dave"], 1, sender=desk.w["alice"])


def test_allowlist_refuses_to_list_twice_or_delist_what_is_absent(desk):
    module = desk.infra.modules["CountryAllowlist"]
    with ape.reverts(module.CountryAlreadyAllowed, country=LU):
        desk.configure("CountryAllowlist", "allowCountries", [LU])
    with ape.reverts(module.CountryNotAllowed, country=4):
        desk.configure("CountryAllowlist", "disallowCountries", [4])
    receipt = desk.configure("CountryAllowlist", "allowCountries", [4, 8])
    assert [e.country for e in receipt.decode_logs(module.CountryAllowed)] == [4, 8]


# --- CountryBlocklist ----------------------------------------------------------------------

def test_blocklist_refuses_blocked_countries_until_unblocked(desk):
    module = desk.infra.modules["CountryBlocklist"]
    desk.fund.compliance.addModule(module, sender=desk.admin)
    assert desk.can(None, "bob", 1)
    desk.configure("CountryBlocklist", "blockCountries", [FR])
    assert module.isCountryBlocked(desk.fund.compliance, FR)
    with ape.reverts("Compliance not followed"):
        desk.mint("bob", 1)
    with ape.reverts(module.CountryAlreadyBlocked, country=FR):
        desk.configure("CountryBlocklist", "blockCountries", [FR])
    desk.configure("CountryBlocklist", "unblockCountries", [FR])
    with ape.reverts(module.CountryNotBlocked, country=FR):
        desk.configure("CountryBlocklist", "unblockCountries", [FR])
    desk.mint("bob", 1)


# --- SupplyCap -----------------------------------------------------------------------------

def test_supply_cap_stops_mints_beyond_it_and_never_transfers(desk):
    desk.configure("MaxBalancePerInvestor", "setMaxBalance", 10_000)
    desk.mint("alice", 400)
    desk.mint("bob", 400)
    assert not desk.can(None, "carol", 201) and desk.can(None, "carol", 200)
    with ape.reverts("Compliance not followed"):
        desk.mint("carol", 201)
    desk.mint("carol", 200)
    assert desk.fund.token.totalSupply() == 1_000
    desk.fund.token.transfer(desk.w["bob"], 300, sender=desk.w["alice"])  # no mint, no cap
    desk.burn("bob", 100)
    desk.mint("carol", 100)  # room again after a redemption
    desk.configure("SupplyCap", "setSupplyCap", 2_000)
    assert desk.infra.modules["SupplyCap"].supplyCap(desk.fund.compliance) == 2_000
    desk.mint("alice", 400)


def test_unset_supply_cap_allows_no_mint(project, admin, infra, wallets, claim_signer):
    fund = new_fund(project, admin, infra, "MOD-CAP0", supply_cap=0)
    onboard(project, admin, infra, fund, wallets["alice"], LU, claim_signer)
    seq, record = use_record(777_001)
    with ape.reverts("Compliance not followed"):
        infra.bridge.mint(fund.token, wallets["alice"], 1, seq, record, sender=admin)


# --- MaxBalancePerInvestor -----------------------------------------------------------------

def test_max_balance_counts_all_wallets_of_one_investor(desk):
    module = desk.infra.modules["MaxBalancePerInvestor"]
    mc = desk.fund.compliance
    desk.mint("alice", 300)
    desk.mint("alice2", 100)  # same investor: 400 in total, the maximum
    identity = desk.infra.id_factory.getIdentity(desk.w["alice"])
    assert module.investorBalance(mc, identity) == 400
    with ape.reverts("Compliance not followed"):
        desk.mint("alice2", 1)
    desk.fund.token.transfer(desk.w["alice2"], 300, sender=desk.w["alice"])  # own wallets
    desk.mint("bob", 390)
    with ape.reverts("Transfer not possible"):
        desk.fund.token.transfer(desk.w["bob"], 11, sender=desk.w["alice2"])
    desk.fund.token.transfer(desk.w["bob"], 10, sender=desk.w["alice2"])
    assert module.investorBalance(mc, identity) == 390
    desk.burn("alice2", 390)
    assert module.investorBalance(mc, identity) == 0


def test_forced_transfers_and_burns_keep_investor_balances(desk):
    module = desk.infra.modules["MaxBalancePerInvestor"]
    mc = desk.fund.compliance
    desk.mint("bob", 200)
    seq, record = use_record(888_001)
    desk.infra.bridge.forcedTransfer(desk.fund.token, desk.w["bob"], desk.w["carol"], 150, seq,
                                     record, sender=desk.admin)
    bob_id = desk.infra.id_factory.getIdentity(desk.w["bob"])
    carol_id = desk.infra.id_factory.getIdentity(desk.w["carol"])
    assert (module.investorBalance(mc, bob_id), module.investorBalance(mc, carol_id)) == (50, 150)


# --- MaxHolders ----------------------------------------------------------------------------

def test_max_holders_refuses_one_investor_too_many(desk):
    module = desk.infra.modules["MaxHolders"]
    mc = desk.fund.compliance
    for who in ("alice", "bob", "carol"):
        desk.mint(who, 100)
    desk.mint("alice2", 50)  # alice's second wallet is not a new holder
    assert module.holders(mc) == 3
    assert not desk.can(None, "dave", 1)
    with ape.reverts("Compliance not followed"):
        desk.mint("dave", 1)
    with ape.reverts("Transfer not possible"):
        desk.fund.token.transfer(desk.w["dave"], 10, sender=desk.w["bob"])
    # bob hands everything to dave: bob leaves as dave joins, still three holders
    desk.fund.token.transfer(desk.w["dave"], 100, sender=desk.w["bob"])
    assert module.holders(mc) == 3
    # a redemption of everything frees a place
    desk.burn("carol", 100)
    assert module.holders(mc) == 2
    desk.mint("bob", 1)
    assert module.holders(mc) == 3


def test_max_holders_counts_an_investor_leaving_through_all_their_wallets(desk):
    module = desk.infra.modules["MaxHolders"]
    mc = desk.fund.compliance
    desk.mint("alice", 10)
    desk.mint("alice2", 10)
    assert module.holders(mc) == 1
    desk.burn("alice", 10)
    assert module.holders(mc) == 1  # alice2 still holds
    desk.burn("alice2", 10)
    assert module.holders(mc) == 0


def test_raising_max_holders_admits_new_investors(desk):
    for who in ("alice", "bob", "carol"):
        desk.mint(who, 10)
    desk.configure("MaxHolders", "setMaxHolders", 4)
    assert desk.infra.modules["MaxHolders"].maxHolders(desk.fund.compliance) == 4
    desk.mint("dave", 10)


def test_module_actions_refuse_callers_that_are_not_bound_compliances(desk):
    for name in ("MaxBalancePerInvestor", "MaxHolders"):
        module = desk.infra.modules[name]
        with ape.reverts(module.NotBound):
            module.moduleMintAction(desk.w["alice"], 1, sender=desk.w["alice"])
        with ape.reverts(module.NotBound):
            module.moduleTransferAction(desk.w["alice"], desk.w["bob"], 1, sender=desk.w["alice"])
        with ape.reverts(module.NotBound):
            module.moduleBurnAction(desk.w["alice"], 1, sender=desk.w["alice"])
