"""Append attested events to the CeFi Event Ledger, as a transfer agent's ledger writer does.

    ape run record_events --network ethereum:smartta-local --file events.json \\
        [--writer writer] [--batch 50]
    ape run record_events --network ethereum:smartta-local --story

``events.json`` is a JSON array of ``{"actor": ALIAS, "eventType": TYPE, "delta": {...}}``.
Each actor attests its own events with an EIP-712 signature by its key (the keystore
``networks/NAME/accounts/ALIAS.json``) under a per-actor nonce read from the ledger, the delta
checked against its schema (personal data is refused before anything is signed); the writer
submits them in batches. ``--story`` records a subscription's life: a fund share class opens, an
investor is onboarded, subscribes, the administrator publishes the NAV, the order is priced,
paid and the units issued.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from ape import project
from ape.cli import ConnectedProviderCommand, network_option
from eth_hash.auto import keccak

from chain.abc import AttestedEvent, LedgerDomain
from chain.attest import Eip712Scheme
from chain.attest.keys import PASSWORD_ENV, KeystoreError, LocalSigner, open_keystore
from chain.ledger import DeltaError, canonical_delta, data_hash, onchain
from chain.ledger.schema import isin_check_digit
from scripts._network import Network, ScriptError

STORY_ISIN = "LU000000000" + isin_check_digit("LU000000000")


def subscription_story() -> list[dict[str, Any]]:
    investor = "inv_" + bytes(keccak(b"demo investor 1"))[:8].hex()
    return [
        {"actor": "ta", "eventType": "FUND_REGISTERED",
         "delta": {"fund": "FUND-A", "isin": STORY_ISIN, "currency": "EUR", "dealing": "daily",
                   "cut_off": "12:00"}},
        {"actor": "ta", "eventType": "INVESTOR_ONBOARDED",
         "delta": {"investor": investor, "country": "LU", "category": "professional"}},
        {"actor": "ta", "eventType": "ORDER_PLACED",
         "delta": {"order": "ORD-1", "investor": investor, "isin": STORY_ISIN,
                   "side": "subscription", "amount": "250000", "currency": "EUR",
                   "dealing_date": "2026-11-26", "channel": "setr"}},
        {"actor": "fund-admin", "eventType": "NAV_PUBLISHED",
         "delta": {"isin": STORY_ISIN, "nav_date": "2026-11-26", "nav": "101.2345",
                   "currency": "EUR", "units_outstanding": "1000000"}},
        {"actor": "ta", "eventType": "ORDER_PRICED",
         "delta": {"order": "ORD-1", "isin": STORY_ISIN, "nav_date": "2026-11-26",
                   "nav": "101.2345", "units": "2469.5138", "amount": "250000",
                   "currency": "EUR"}},
        {"actor": "ta", "eventType": "PAYMENT_RECEIVED",
         "delta": {"order": "ORD-1", "amount": "250000", "currency": "EUR",
                   "payment": "PAY-2026-11-26-001"}},
        {"actor": "ta", "eventType": "UNITS_ISSUED",
         "delta": {"order": "ORD-1", "investor": investor, "isin": STORY_ISIN,
                   "units": "2469.5138"}},
    ]


def _actor(net: Network, alias: str, password: str) -> LocalSigner:
    path = Path(net.dir) / "accounts" / f"{alias}.json"
    try:
        return open_keystore(path, password)
    except KeystoreError as exc:
        raise ScriptError(f"actor '{alias}': {exc}; create it with "
                          f"`smartta network account --dir {net.dir} --alias {alias}`") from None


@click.command(cls=ConnectedProviderCommand)
@network_option()
@click.option("--file", "events_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON array of {actor, eventType, delta}.")
@click.option("--story", is_flag=True, help="Record the demo subscription story instead.")
@click.option("--writer", "writer_alias", default="writer", show_default=True,
              help="keystore alias of the account holding WRITER_ROLE")
@click.option("--batch", type=click.IntRange(1, 500), default=50, show_default=True)
def cli(events_file: Path | None, story: bool, writer_alias: str, batch: int) -> None:
    if (events_file is None) != story:
        raise ScriptError("give either --file events.json or --story")
    events = subscription_story() if events_file is None else json.loads(events_file.read_text())
    if not isinstance(events, list) or not events:
        raise ScriptError("the events file must be a non-empty JSON array")
    net = Network()
    ledger = net.ledger(project)
    writer = net.account(writer_alias)
    net.require_role(ledger, onchain.WRITER_ROLE, writer, "WRITER_ROLE", "append records")
    password = os.environ.get(PASSWORD_ENV, "")
    address = str(ledger.address)
    domain = LedgerDomain(net.chain_id, bytes.fromhex(address[2:]))
    actors: dict[str, LocalSigner] = {}
    nonces: dict[bytes, int] = {}
    entries: list[onchain.Entry] = []
    for i, event in enumerate(events):
        alias, event_type, fact = event.get("actor"), event.get("eventType"), event.get("delta")
        if not isinstance(alias, str) or not isinstance(event_type, str) or not isinstance(fact,
                                                                                          dict):
            raise ScriptError(f"event {i}: needs actor (alias), eventType and delta (object)")
        if alias not in actors:
            actors[alias] = _actor(net, alias, password)
            who = "0x" + actors[alias].address.hex()
            if not ledger.hasRole(onchain.ATTESTER_ROLE, who):
                raise ScriptError(f"actor '{alias}' ({who}) lacks ATTESTER_ROLE; grant it with "
                                  f"`ape run grant_writer --attester {who}`")
            nonces[actors[alias].address] = int(ledger.lastNonce(who))
        signer = actors[alias]
        try:
            delta = canonical_delta(event_type, fact)
        except DeltaError as exc:
            raise ScriptError(f"event {i}: {exc}") from None
        nonces[signer.address] += 1
        attested = AttestedEvent(signer.address, event_type, data_hash(delta),
                                 nonces[signer.address])
        attestation = Eip712Scheme().attest(attested, domain, [signer])
        entries.append(onchain.Entry(signer.address, event_type, nonces[signer.address], delta,
                                     attestation))
    net.require_funds(writer, 60_000 + 40_000 * len(entries))
    for start in range(0, len(entries), batch):
        chunk = entries[start:start + batch]
        receipt = ledger.appendBatch(onchain.pack_batch(chunk), sender=writer)
        click.echo(f"appended {len(chunk)} records in block {receipt.block_number} "
                   f"(tx {receipt.txn_hash})")
    count, head = ledger.head()
    click.echo(f"ledger {address}: {count} records, head 0x{bytes(head).hex()}")
