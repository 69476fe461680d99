"""The chain/ demo: a QBFT genesis, sealed blocks carrying attested ledger records, and an
independent verification of both, followed by a tamper that the verifier names.

It uses throwaway keys derived from fixed seeds and says so; real networks take fresh keys
from ``smartta network init``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

from eth_hash.auto import keccak
from rich.console import Console
from rich.table import Table

from chain.abc import AttestedEvent, LedgerDomain
from chain.attest import BlsAggregateScheme, Eip712Scheme
from chain.attest.bls import BlsKey
from chain.attest.keys import LocalSigner
from chain.ledger import LedgerRecord, build_record, canonical_delta, data_hash, verify_records
from chain.ledger.record import ledger_anchor
from chain.ledger.schema import isin_check_digit
from chain.qbft import extra_data as xd
from chain.qbft.genesis import AllocAccount, Genesis, QbftSettings, build_genesis
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BFT_MIX_HASH, EMPTY_OMMERS_HASH, EMPTY_TRIE_ROOT, BlockHeader
from chain.qbft.proposer import select_proposer
from chain.qbft.quorum import quorum
from chain.qbft.seals import sign
from chain.qbft.verify import verify_header
from chain.qbft.votes import ValidatorHistory


def _seeded_key(label: str) -> bytes:
    return bytes(keccak(b"smartta demo key (throwaway, never use for a real network): " +
                        label.encode()))


def _seal_block(parent: BlockHeader, validators: tuple[bytes, ...], keys: dict[bytes, bytes],
                timestamp: int, period: int) -> BlockHeader:
    proposer = select_proposer(validators, parent.coinbase, 0)
    extra = xd.ExtraData(bytes(32), tuple(sorted(validators)), None, 0, ())
    header = BlockHeader(
        parent_hash=block_hash(parent), ommers_hash=EMPTY_OMMERS_HASH, coinbase=proposer,
        state_root=parent.state_root, transactions_root=EMPTY_TRIE_ROOT,
        receipts_root=EMPTY_TRIE_ROOT, logs_bloom=bytes(256), difficulty=1,
        number=parent.number + 1, gas_limit=parent.gas_limit, gas_used=0,
        timestamp=max(timestamp, parent.timestamp + period), extra_data=xd.encode(extra),
        mix_hash=BFT_MIX_HASH, nonce=bytes(8), base_fee=parent.base_fee,
        withdrawals_root=parent.withdrawals_root, blob_gas_used=parent.blob_gas_used,
        excess_blob_gas=parent.excess_blob_gas,
        parent_beacon_block_root=parent.parent_beacon_block_root,
    )
    digest = commit_seal_hash(header)
    committers = sorted(validators)[: quorum(len(validators))]
    seals = tuple(sign(keys[v], digest) for v in committers)
    return header.with_extra_data(xd.encode(extra.with_seals(seals)))


def run(records: int = 8, out: Path | None = None) -> int:
    console = Console()
    console.rule("[bold]SMART-TA Ledger — chain/ demo")
    console.print("[yellow]Keys here are derived from fixed seeds: a throwaway demo, never a "
                  "real network.[/yellow]")
    keys = {k: v for k, v in ((LocalSigner(_seeded_key(f"validator-{i}")).address,
                               _seeded_key(f"validator-{i}")) for i in range(1, 5))}
    validators = tuple(keys)
    settings = QbftSettings(block_period_seconds=2, epoch_length=30000, request_timeout_seconds=4)
    admin = LocalSigner(_seeded_key("fund-administrator"))
    ta = LocalSigner(_seeded_key("transfer-agent"))
    genesis_json = build_genesis(
        chain_id=2026, validators=validators, qbft=settings,
        alloc={admin.address: AllocAccount(balance=10**24), ta.address: AllocAccount(balance=10**24)},
        timestamp=1_764_000_000,
    )
    genesis = Genesis(genesis_json)
    console.print(f"genesis: chain id {genesis.chain_id}, {len(genesis.validators)} validators, "
                  f"block period {genesis.qbft.block_period_seconds}s, "
                  f"hash [bold]0x{genesis.hash.hex()}[/bold]")

    domain = LedgerDomain(genesis.chain_id, bytes(keccak(b"demo ledger"))[12:])
    isin = "LU000000000" + isin_check_digit("LU000000000")
    investor = "inv_" + bytes(keccak(b"investor-1"))[:8].hex()
    facts: list[tuple[LocalSigner, str, dict[str, object]]] = [
        (ta, "FUND_REGISTERED", {"fund": "FUND-A", "isin": isin, "currency": "EUR",
                                 "dealing": "daily", "cut_off": "12:00"}),
        (ta, "INVESTOR_ONBOARDED", {"investor": investor, "country": "LU", "category": "retail"}),
        (ta, "ORDER_PLACED", {"order": "ORD-1", "investor": investor, "isin": isin,
                              "side": "subscription", "amount": "10000", "currency": "EUR",
                              "dealing_date": "2026-11-25", "channel": "rest"}),
        (admin, "NAV_PUBLISHED", {"isin": isin, "nav_date": "2026-11-25", "nav": "101.2345",
                                  "currency": "EUR"}),
        (ta, "ORDER_PRICED", {"order": "ORD-1", "isin": isin, "nav_date": "2026-11-25",
                              "nav": "101.2345", "units": "98.7805", "amount": "10000",
                              "currency": "EUR"}),
        (ta, "PAYMENT_RECEIVED", {"order": "ORD-1", "amount": "10000", "currency": "EUR",
                                  "payment": "PAY-77"}),
        (ta, "UNITS_ISSUED", {"order": "ORD-1", "investor": investor, "isin": isin,
                              "units": "98.7805"}),
    ]
    while len(facts) < records:
        n = len(facts)
        facts.append((ta, "ORDER_PLACED", {
            "order": f"ORD-{n}", "investor": investor, "isin": isin, "side": "redemption",
            "units": str(n), "currency": "EUR", "dealing_date": "2026-11-26", "channel": "rest"}))
    facts = facts[:records]

    history = ValidatorHistory(genesis.qbft.epoch)
    genesis_header = genesis.header()
    history.apply(0, genesis_header.coinbase, xd.decode(genesis_header.extra_data))
    headers = [genesis_header]
    ledger: list[LedgerRecord] = []
    previous = ledger_anchor(domain)
    nonces: dict[bytes, int] = {}
    bls_cosigners = [BlsKey.from_seed(_seeded_key("administrator-bls")),
                     BlsKey.from_seed(_seeded_key("depositary-bls"))]
    for seq, (actor, event_type, fact) in enumerate(facts, start=1):
        parent = headers[-1]
        header = _seal_block(parent, history.validators_for(parent.number + 1), keys,
                             parent.timestamp + settings.block_period_seconds,
                             settings.block_period_seconds)
        verify_header(header, parent, history.validators_for(header.number),
                      block_period_seconds=settings.block_period_seconds)
        history.apply(header.number, header.coinbase, xd.decode(header.extra_data))
        headers.append(header)
        delta = canonical_delta(event_type, fact)
        nonce = nonces.get(actor.address, 0) + 1
        nonces[actor.address] = nonce
        event = AttestedEvent(actor.address, event_type, data_hash(delta), nonce)
        if event_type == "NAV_PUBLISHED":  # co-signed by administrator and depositary
            attestation = BlsAggregateScheme().attest(event, domain, bls_cosigners)
        else:
            attestation = Eip712Scheme().attest(event, domain, [actor])
        record = build_record(seq=seq, actor=actor.address, event_type=event_type, delta=delta,
                              nonce=nonce, attestation=attestation, previous_hash=previous,
                              timestamp=header.timestamp, block_height=header.number)
        ledger.append(record)
        previous = record.record_hash or b""

    report = verify_records(ledger, domain, require_attestation=True)
    table = Table(title=f"{len(ledger)} ledger records in {len(headers) - 1} sealed blocks")
    for col in ("seq", "block", "event", "actor", "attestation", "record hash", "verified"):
        table.add_column(col)
    for r in ledger:
        scheme = "BLS x2" if r.attestation and r.attestation.scheme_id == 2 else "EIP-712"
        table.add_row(str(r.seq), str(r.block_height), r.event_type, "0x" + r.actor.hex()[:8] + "…",
                      scheme, "0x" + (r.record_hash or b"").hex()[:16] + "…",
                      "[green]yes[/green]" if report.ok else "[red]no[/red]")
    console.print(table)
    console.print(f"every block sealed by a quorum ({quorum(len(validators))} of {len(validators)}); "
                  f"head record hash [bold]0x{report.head_hash.hex()}[/bold]")

    tampered = list(ledger)
    victim = tampered[len(tampered) // 2]
    tampered[len(tampered) // 2] = replace(victim, delta=victim.delta.replace(b'"EUR"', b'"USD"'))
    bad = verify_records(tampered, domain, require_attestation=True)
    console.print(f"tampered copy (one delta altered): [red]{bad.first_failure}[/red]")

    target = out or Path(tempfile.mkdtemp(prefix="smartta-demo-"))
    target.mkdir(parents=True, exist_ok=True)
    (target / "genesis.json").write_text(json.dumps(genesis_json, indent=2) + "\n")
    (target / "records.json").write_text(json.dumps([r.to_json() for r in ledger], indent=2) + "\n")
    console.print(f"wrote {target}/genesis.json and {target}/records.json; check them yourself:")
    console.print(f"  smartta-observer check-records {target}/records.json --chain-id "
                  f"{domain.chain_id} --ledger 0x{domain.ledger_address.hex()}", soft_wrap=True)
    return 0 if report.ok and not bad.ok else 1
