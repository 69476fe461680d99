"""Writes ledger_vectors.json: known answers for the ledger's hashes, shared by both sides.

The Python side (chain/ledger, chain/attest) computes them here; tests/contracts/test_onchain.py
re-checks them against eth_account's independent EIP-712 encoder, and the contract
(tests/contracts/ape/test_ledger.py) must give the same answers. Re-run only when the formats
change on purpose: ``.venv/bin/python tests/contracts/data/make_ledger_vectors.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from eth_hash.auto import keccak

from chain.abc import Attestation, AttestedEvent, LedgerDomain
from chain.attest.eip712 import digest
from chain.ledger.record import LedgerRecord, ledger_anchor, record_hash


def _h(label: str) -> bytes:
    return bytes(keccak(label.encode()))


def main() -> None:
    domains = [LedgerDomain(1337, _h("ledger-a")[:20]), LedgerDomain(2026, _h("ledger-b")[:20]),
               LedgerDomain(2**64 - 1, bytes(19) + b"\x01")]
    events = [
        AttestedEvent(_h("actor-1")[:20], "ORDER_PLACED", _h("delta-1"), 1),
        AttestedEvent(_h("actor-2")[:20], "X", _h("delta-2"), 2**64 - 1),
        AttestedEvent(_h("actor-3")[:20], "A" * 32, bytes(32), 7),
    ]
    proofs = [Attestation(1, _h("r") + _h("s") + b"\x1b"), Attestation(2, b"\x01" + bytes(48 + 96)),
              Attestation(0, b""), Attestation(255, b"\xff" * 300)]
    records = [
        LedgerRecord(seq=1, actor=_h("actor-1")[:20], event_type="ORDER_PLACED", delta=b"{}",
                     nonce=1, attestation_id=proofs[0].id, data_hash=_h("delta-1"),
                     previous_hash=ledger_anchor(domains[0]), timestamp=1_764_000_000,
                     block_height=1),
        LedgerRecord(seq=2**64 - 1, actor=b"\xff" * 20, event_type="A" * 32, delta=b"{}",
                     nonce=2**64 - 1, attestation_id=proofs[3].id, data_hash=b"\xee" * 32,
                     previous_hash=b"\xdd" * 32, timestamp=2**64 - 1, block_height=2**64 - 1),
        LedgerRecord(seq=42, actor=_h("actor-2")[:20], event_type="NAV_PUBLISHED", delta=b"{}",
                     nonce=9, attestation_id=proofs[1].id, data_hash=_h("delta-3"),
                     previous_hash=_h("previous"), timestamp=1_800_000_000, block_height=123_456),
    ]

    def hx(b: bytes) -> str:
        return "0x" + b.hex()

    out = {
        "source": "chain/ledger/record.py and chain/attest/eip712.py, written by "
                  "tests/contracts/data/make_ledger_vectors.py; the EIP-712 digests are also "
                  "checked against eth_account.messages.encode_typed_data, and every value "
                  "against contracts/CeFiEventLedger.sol",
        "anchors": [{"chain_id": d.chain_id, "ledger": hx(d.ledger_address),
                     "anchor": hx(ledger_anchor(d))} for d in domains],
        "digests": [{"chain_id": d.chain_id, "ledger": hx(d.ledger_address), "actor": hx(e.actor),
                     "event_type": e.event_type, "data_hash": hx(e.data_hash), "nonce": e.nonce,
                     "digest": hx(digest(e, d))} for d in domains for e in events],
        "attestation_ids": [{"scheme": a.scheme_id, "proof": hx(a.proof), "id": hx(a.id)}
                            for a in proofs],
        "records": [{"seq": r.seq, "actor": hx(r.actor), "event_type": r.event_type,
                     "data_hash": hx(r.data_hash), "nonce": r.nonce,
                     "attestation_id": hx(r.attestation_id), "previous_hash": hx(r.previous_hash),
                     "timestamp": r.timestamp, "block_height": r.block_height,
                     "record_hash": hx(record_hash(r))} for r in records],
    }
    path = Path(__file__).with_name("ledger_vectors.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
