"""DeFiCeFiBridge: each token movement points at the ledger record that authorised it, each
record authorises one movement at most, and the ledger records the movement back."""

from __future__ import annotations

import json

import ape
import pytest
from eth_hash.auto import keccak

from chain.ledger import canonical_delta, onchain

from .conftest import FR, ISIN, LU, TA, Book, new_fund, onboard, records_of, use_record

ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def fund(project, admin, infra, investors, claim_signer):
    fund = new_fund(project, admin, infra, "BRIDGE-A")
    onboard(project, admin, infra, fund, investors["alice"], LU, claim_signer)
    onboard(project, admin, infra, fund, investors["bob"], FR, claim_signer)
    return fund


@pytest.fixture(scope="module")
def bridge(infra):
    return infra.bridge


def operations(receipt):
    return [onchain.decode_token_operation([bytes(t) for t in log["topics"]], bytes(log["data"]))
            for log in receipt.logs
            if log["topics"] and bytes(log["topics"][0]) == onchain.TOKEN_OPERATION_TOPIC]


def test_mint_burn_and_forced_transfer_each_point_at_their_record(bridge, fund, investors, admin):
    alice, bob = investors["alice"], investors["bob"]
    steps = [
        (bridge.mint, (fund.token, alice, 500), "mint", ZERO, alice.address),
        (bridge.forcedTransfer, (fund.token, alice, bob, 200), "forced_transfer", alice.address,
         bob.address),
        (bridge.burn, (fund.token, bob, 50), "burn", bob.address, ZERO),
    ]
    for n, (call, args, kind, sender, receiver) in enumerate(steps, start=1):
        seq, record = use_record(n)
        receipt = call(*args, seq, record, sender=admin)
        (op,) = operations(receipt)
        assert (op.kind, op.seq, op.record_hash, op.amount) == (kind, seq, record, args[-1])
        assert ("0x" + op.sender.hex(), "0x" + op.receiver.hex()) == \
            (sender.lower(), receiver.lower())
        assert op.token == bytes.fromhex(fund.token.address[2:])
        assert bridge.operationOf(record) == op.operation_id
        assert bytes(bridge.recordOf(op.operation_id)) == record
    assert (fund.token.balanceOf(alice), fund.token.balanceOf(bob)) == (300, 150)


def test_a_record_authorises_one_movement_only(bridge, fund, investors, admin):
    seq, record = use_record(10)
    bridge.mint(fund.token, investors["alice"], 5, seq, record, sender=admin)
    with ape.reverts(bridge.RecordAlreadyUsed, recordHash=record, operationId=1):
        bridge.mint(fund.token, investors["alice"], 5, seq, record, sender=admin)
    with ape.reverts(bridge.RecordAlreadyUsed):
        bridge.burn(fund.token, investors["alice"], 5, seq, record, sender=admin)


def test_operations_need_an_operator_a_known_token_an_amount_and_a_record(
        bridge, fund, investors, admin, project):
    alice = investors["alice"]
    seq, record = use_record(20)
    with ape.reverts(bridge.AccessControlUnauthorizedAccount, account=alice.address,
                     neededRole=bytes(keccak(b"OPERATOR_ROLE"))):
        bridge.mint(fund.token, alice, 1, seq, record, sender=alice)
    with ape.reverts(bridge.UnknownToken, token=bridge.address):
        bridge.mint(bridge, alice, 1, seq, record, sender=admin)
    with ape.reverts(bridge.ZeroAmount):
        bridge.mint(fund.token, alice, 0, seq, record, sender=admin)
    with ape.reverts(bridge.NoRecord):
        bridge.mint(fund.token, alice, 1, 0, record, sender=admin)
    with ape.reverts(bridge.NoRecord):
        bridge.mint(fund.token, alice, 1, seq, bytes(32), sender=admin)
    with ape.reverts(project.DeFiCeFiBridge.ZeroAddress):
        admin.deploy(project.DeFiCeFiBridge, admin, 1, ZERO)


def test_token_rules_still_apply_to_bridge_movements(bridge, fund, investors, accounts, admin):
    stranger = accounts[2]  # no identity in this fund's registry
    seq, record = use_record(30)
    with ape.reverts("Identity is not verified."):
        bridge.mint(fund.token, stranger, 1, seq, record, sender=admin)
    bridge.mint(fund.token, investors["alice"], 10, seq, record, sender=admin)
    seq, record = use_record(31)
    with ape.reverts("Transfer not possible"):
        bridge.forcedTransfer(fund.token, investors["alice"], stranger, 1, seq, record,
                              sender=admin)
    # a bridge that is no longer the token's agent can move nothing
    fund.token.removeAgent(bridge, sender=admin)
    with ape.reverts("AgentRole: caller does not have the Agent role"):
        bridge.mint(fund.token, investors["alice"], 1, seq, record, sender=admin)


def test_pausing_the_bridge_stops_movements_and_only_the_admin_lists_tokens(
        bridge, fund, investors, admin):
    bridge.grantRole(bridge.PAUSER_ROLE(), admin, sender=admin)
    bridge.pause(sender=admin)
    seq, record = use_record(40)
    with ape.reverts(bridge.EnforcedPause):
        bridge.mint(fund.token, investors["alice"], 1, seq, record, sender=admin)
    bridge.unpause(sender=admin)
    with ape.reverts(bridge.AccessControlUnauthorizedAccount):
        bridge.removeToken(fund.token, sender=investors["alice"])
    with ape.reverts(bridge.TokenAlreadyAdded, token=fund.token.address):
        bridge.addToken(fund.token, sender=admin)
    bridge.removeToken(fund.token, sender=admin)
    with ape.reverts(bridge.UnknownToken):
        bridge.mint(fund.token, investors["alice"], 1, seq, record, sender=admin)


def test_issuance_round_trip_ledger_record_to_token_and_back(
        project, bridge, fund, investors, admin, chain):
    """UNITS_ISSUED on the ledger authorises a bridge mint; TOKEN_MINTED records it back;
    both links check out from the chain alone, as the observer checks them."""
    ledger = project.CeFiEventLedger.at(bridge.ledger())
    ledger.grantRole(onchain.WRITER_ROLE, admin, sender=admin)
    ledger.grantRole(onchain.ATTESTER_ROLE, "0x" + TA.address.hex(), sender=admin)
    book = Book(ledger, chain.chain_id)
    alice = investors["alice"]
    issued = book.entry(event_type="UNITS_ISSUED", delta=canonical_delta("UNITS_ISSUED", {
        "order": "ORD-9", "investor": "inv_0123456789abcdef", "isin": ISIN, "units": "42"}))
    (authorising,) = records_of(book.append(issued, admin), chain)
    record_hash = authorising.computed_hash()

    mint = bridge.mint(fund.token, alice, 42, authorising.seq, record_hash, sender=admin)
    (op,) = operations(mint)

    minted = book.entry(event_type="TOKEN_MINTED", delta=canonical_delta("TOKEN_MINTED", {
        "token_chain": chain.chain_id, "token": fund.token.address.lower(),
        "to": alice.address.lower(), "amount": "42", "tx": mint.txn_hash,
        "authorised_by": authorising.seq}))
    (recording,) = records_of(book.append(minted, admin), chain)

    # forward: the movement names a record that is on the ledger with that very hash
    assert op.seq == authorising.seq and op.record_hash == authorising.computed_hash()
    assert authorising.event_type == "UNITS_ISSUED"
    # back: the ledger's TOKEN_MINTED names the movement's transaction and the authorising seq
    recorded = json.loads(recording.delta)
    assert recorded["tx"] == mint.txn_hash
    assert recorded["authorised_by"] == op.seq
    assert bridge.operationOf(record_hash) == op.operation_id
