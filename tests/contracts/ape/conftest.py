"""Fixtures for the ape tests: ape's EthTester network (py-evm), our compiled contracts, and
off-chain actor keys whose EIP-712 attestations the ledger checks on chain."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from chain.abc import Attestation, AttestedEvent, LedgerDomain
from chain.attest import BlsAggregateScheme, Eip712Scheme
from chain.attest.bls import BlsKey
from chain.attest.keys import LocalSigner
from chain.ledger import LedgerRecord, canonical_delta, data_hash, onchain
from chain.ledger.schema import isin_check_digit

# The scripts' deployment steps (scripts/_suite.py) are what these tests deploy with.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from scripts import _suite as suite

ISIN = "LU000000000" + isin_check_digit("LU000000000")
LU, FR, DE, US = 442, 250, 276, 840
INVESTOR = "inv_" + bytes(keccak(b"investor-1"))[:8].hex()


def signer(label: str) -> LocalSigner:
    return LocalSigner(bytes(keccak(b"tests/contracts throwaway key: " + label.encode())))


TA = signer("transfer-agent")
ADMINISTRATOR = signer("fund-administrator")
STRANGER = signer("not an attester")
BLS_COSIGNERS = [BlsKey.from_seed(bytes(keccak(b"bls-administrator"))),
                 BlsKey.from_seed(bytes(keccak(b"bls-depositary")))]


def hexaddr(raw: bytes) -> str:
    return to_checksum_address(raw)


def order(n: int) -> dict[str, object]:
    return {"order": f"ORD-2026-{n:06d}", "investor": INVESTOR, "isin": ISIN,
            "side": "subscription", "amount": f"{10000 + n}", "currency": "EUR",
            "dealing_date": "2026-11-25", "channel": "rest"}


class Book:
    """Attested entries for one deployed ledger, with each actor's nonces in order."""

    def __init__(self, ledger: Any, chain_id: int) -> None:
        self.ledger = ledger
        self.domain = LedgerDomain(chain_id, bytes.fromhex(ledger.address[2:]))
        self.nonces: dict[bytes, int] = {}
        self.count = 0

    def next_nonce(self, actor: bytes) -> int:
        self.nonces[actor] = self.nonces.get(actor, 0) + 1
        return self.nonces[actor]

    def entry(self, who: LocalSigner = TA, *, nonce: int | None = None,
              event_type: str = "ORDER_PLACED", delta: bytes | None = None,
              scheme: int = 1) -> onchain.Entry:
        self.count += 1
        if delta is None:
            delta = canonical_delta("ORDER_PLACED", order(self.count))
        if nonce is None:
            nonce = self.next_nonce(who.address)
        event = AttestedEvent(who.address, event_type, data_hash(delta), nonce)
        attestation = (Eip712Scheme().attest(event, self.domain, [who]) if scheme == 1
                       else BlsAggregateScheme().attest(event, self.domain, BLS_COSIGNERS))
        return onchain.Entry(who.address, event_type, nonce, delta, attestation)

    def append(self, entry: onchain.Entry, sender: Any, **kw: Any) -> Any:
        return self.ledger.append(hexaddr(entry.actor), entry.event_type.encode().ljust(32, b"\0"),
                                  entry.nonce, entry.attestation.scheme_id, entry.delta,
                                  entry.attestation.proof, sender=sender, **kw)

    def append_batch(self, entries: Iterable[onchain.Entry], sender: Any, **kw: Any) -> Any:
        return self.ledger.appendBatch(onchain.pack_batch(entries), sender=sender, **kw)


def records_of(receipt: Any, chain: Any) -> list[LedgerRecord]:
    """What an observer rebuilds from one transaction: its logs, its block, its calldata."""
    timestamp = chain.blocks[receipt.block_number].timestamp
    out: list[LedgerRecord] = []
    for log in receipt.logs:
        topics = [bytes(t) for t in log["topics"]]
        if topics and topics[0] == onchain.RECORDS_APPENDED_TOPIC:
            out.extend(onchain.decode_log(topics, bytes(log["data"]),
                                          block_number=receipt.block_number,
                                          timestamp=timestamp).records)
    return onchain.with_proofs(out, onchain.decode_calldata(bytes(receipt.transaction.data)))


@pytest.fixture(scope="session")
def admin(accounts: Any) -> Any:
    return accounts[0]


@pytest.fixture(scope="session")
def writer(accounts: Any) -> Any:
    return accounts[1]


@pytest.fixture(scope="session")
def outsider(accounts: Any) -> Any:
    return accounts[2]


@pytest.fixture(scope="session")
def pauser(accounts: Any) -> Any:
    return accounts[3]


@pytest.fixture(scope="session")
def bls_writer(accounts: Any) -> Any:
    return accounts[4]


@pytest.fixture(scope="module")
def ledger(project: Any, admin: Any, writer: Any, pauser: Any, bls_writer: Any, outsider: Any) -> Any:
    contract = admin.deploy(project.CeFiEventLedger, admin)
    contract.grantRole(onchain.WRITER_ROLE, writer, sender=admin)
    contract.grantRole(onchain.WRITER_ROLE, bls_writer, sender=admin)
    contract.grantRole(onchain.OFFCHAIN_ATTESTATION_ROLE, bls_writer, sender=admin)
    contract.grantRole(onchain.PAUSER_ROLE, pauser, sender=admin)
    for who in (TA, ADMINISTRATOR):
        contract.grantRole(onchain.ATTESTER_ROLE, hexaddr(who.address), sender=admin)
    return contract


@pytest.fixture
def book(ledger: Any, chain: Any) -> Book:
    # Function scope: ape reverts the chain after each test, so nonces start afresh too.
    return Book(ledger, chain.chain_id)


def bls_attestation(book: Book, entry: onchain.Entry) -> Attestation:
    event = AttestedEvent(entry.actor, entry.event_type, data_hash(entry.delta), entry.nonce)
    return BlsAggregateScheme().attest(event, book.domain, BLS_COSIGNERS)


# --- the ERC-3643 suite --------------------------------------------------------------------

@pytest.fixture(scope="session")
def claim_signer(accounts: Any) -> Any:
    """The KYC provider's CLAIM key."""
    return accounts[5]


@pytest.fixture(scope="session")
def investors(accounts: Any) -> dict[str, Any]:
    return {"alice": accounts[6], "bob": accounts[7], "charlie": accounts[8],
            "dave": accounts[9]}


@pytest.fixture(scope="session")
def infra(project: Any, admin: Any, claim_signer: Any, investors: Any, chain: Any) -> Any:
    ledger = suite.deploy_ledger(project, admin)
    return suite.deploy_infra(project, admin, claim_signer=claim_signer.address,
                              ledger_chain_id=chain.chain_id, ledger_address=ledger.address)


def new_fund(project: Any, admin: Any, infra: Any, salt: str, **kw: Any) -> Any:
    spec = suite.FundSpec(salt=salt, name=f"SMART-TA {salt}", symbol=salt[:6], **kw)
    return suite.deploy_fund(project, admin, infra, spec)


def onboard(project: Any, admin: Any, infra: Any, fund: Any, wallet: Any, country: int,
            claim_signer: Any) -> Any:
    return suite.register_investor(project, admin, infra, fund, wallet=wallet.address,
                                   country=country, claim_signer=claim_signer)


def use_record(n: int) -> tuple[int, bytes]:
    """A stand-in ledger record (seq, record hash) for bridge calls in tests that are not
    about the ledger."""
    return n, bytes(keccak(b"record %d" % n))
