"""Chains that carry CeFi Event Ledger records, for the observer's record-walk tests.

``Ledger`` stands in for the contract (no EVM here): it keeps the sequence, the head hash and
the actors' nonces exactly as contracts/CeFiEventLedger.sol does, and turns a call into a real
signed transaction (``appendBatch`` calldata from chain.ledger.onchain) and a receipt with the
``RecordsAppended`` log the contract emits. It can also misbehave on purpose (a bad link, a
changed delta, a skipped record, a forged attestation, an unauthorised actor), producing
chains whose blocks are validly sealed but whose records are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from devchain import CHAIN_ID, BodyMaker, ChainBuilder, secrets_for
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from chain import proofs
from chain.abc import AttestedEvent, LedgerDomain
from chain.attest import Eip712Scheme
from chain.attest.keys import LocalSigner
from chain.ledger import canonical_delta, data_hash, onchain
from chain.ledger.record import LedgerRecord, build_record, ledger_anchor
from chain.qbft.header import BlockHeader

LEDGER_ADDRESS = bytes(keccak(b"observer test ledger"))[12:]
DOMAIN = LedgerDomain(CHAIN_ID, LEDGER_ADDRESS)

Fact = tuple[str, str, dict[str, object]]
"""(actor label, event type, the delta's fields)."""


def order_fact(actor: str, i: int) -> Fact:
    return (actor, "ORDER_PLACED", {
        "order": f"ORD-{i}", "investor": f"inv_{i:016x}", "isin": "LU0000000009",
        "side": "subscription", "amount": str(1000 + i), "currency": "EUR",
        "dealing_date": "2026-11-25", "channel": "rest"})


def rpc_transaction(fields: dict[str, Any], secret: bytes) -> dict[str, Any]:
    """A transaction signed with eth_account, as a node's JSON-RPC shows it (plus ``raw``)."""
    signed = Account.sign_transaction(fields, secret)
    tx_type = fields.get("type", 0)
    out: dict[str, Any] = {
        "hash": "0x" + bytes(signed.hash).hex(), "type": hex(tx_type),
        "from": Account.from_key(secret).address.lower(), "nonce": hex(fields["nonce"]),
        "gas": hex(fields["gas"]), "value": hex(fields["value"]),
        "to": None if fields.get("to") is None else fields["to"].lower(),
        "input": "0x" + bytes(fields.get("data", b"")).hex(),
        "v": hex(signed.v), "r": hex(signed.r), "s": hex(signed.s),
        "raw": "0x" + bytes(signed.raw_transaction).hex()}
    if tx_type:
        out["chainId"] = hex(fields["chainId"])
        out["yParity"] = hex(signed.v)
        out["accessList"] = [{"address": a["address"].lower(), "storageKeys": list(a["storageKeys"])}
                             for a in fields.get("accessList", [])]
    if tx_type in (0, 1):
        out["gasPrice"] = hex(fields["gasPrice"])
    else:
        out["maxFeePerGas"] = hex(fields["maxFeePerGas"])
        out["maxPriorityFeePerGas"] = hex(fields["maxPriorityFeePerGas"])
        out["gasPrice"] = hex(fields["maxFeePerGas"])  # the effective price, as nodes show it
    return out


class Ledger:
    def __init__(self, builder: ChainBuilder) -> None:
        self.builder = builder
        self.domain = DOMAIN
        self.writer = next(iter(secrets_for(["ledger writer"]).values()))
        self.writer_address = Account.from_key(self.writer).address
        self.signers: dict[str, LocalSigner] = {}
        self.head = ledger_anchor(DOMAIN)
        self.seq = 0
        self.nonces: dict[bytes, int] = {}
        self.tx_nonce = 0
        self.records: list[LedgerRecord] = []

    def signer(self, label: str) -> LocalSigner:
        if label not in self.signers:
            self.signers[label] = LocalSigner(bytes(keccak(b"observer test actor: " + label.encode())))
        return self.signers[label]

    # --- transactions and receipts -----------------------------------------------------------

    def _tx(self, calldata: bytes) -> dict[str, Any]:
        fields = {"type": 2, "chainId": CHAIN_ID, "nonce": self.tx_nonce, "maxFeePerGas": 0,
                  "maxPriorityFeePerGas": 0, "gas": 5_000_000,
                  "to": to_checksum_address(LEDGER_ADDRESS), "value": 0, "data": calldata}
        self.tx_nonce += 1
        return rpc_transaction(fields, self.writer)

    @staticmethod
    def _receipt(tx: dict[str, Any], logs: list[proofs.ReceiptLog], gas: int) -> dict[str, Any]:
        return {"type": "0x2", "status": "0x1", "cumulativeGasUsed": hex(gas),
                "gasUsed": hex(gas), "effectiveGasPrice": "0x0", "from": tx["from"],
                "to": tx["to"], "contractAddress": None, "transactionHash": tx["hash"],
                "logsBloom": "0x" + proofs.logs_bloom(logs).hex(),
                "logs": [{"address": "0x" + lg.address.hex(),
                          "topics": ["0x" + t.hex() for t in lg.topics],
                          "data": "0x" + lg.data.hex(), "logIndex": hex(i), "removed": False}
                         for i, lg in enumerate(logs)]}

    def _body(self, make: Any) -> BodyMaker:
        """A block body of calls; ``make(number, timestamp)`` gives [(calldata, logs)]."""

        def body(number: int, parent: BlockHeader) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            timestamp = parent.timestamp + self.builder.period
            txs, receipts, gas = [], [], 0
            for calldata, logs in make(number, timestamp):
                tx = self._tx(calldata)
                gas += 21_000 + 16 * len(calldata)
                txs.append(tx)
                receipts.append(self._receipt(tx, logs, gas))
            return txs, receipts

        return body

    # --- what the contract does --------------------------------------------------------------

    def grant(self, labels: Sequence[str], role: bytes = onchain.ATTESTER_ROLE,
              revoke: bool = False) -> BodyMaker:
        topic = onchain.ROLE_REVOKED_TOPIC if revoke else onchain.ROLE_GRANTED_TOPIC

        def make(number: int, timestamp: int) -> list[tuple[bytes, list[proofs.ReceiptLog]]]:
            logs = [proofs.ReceiptLog(LEDGER_ADDRESS, (topic, role,
                                                       bytes(12) + self.signer(label).address,
                                                       bytes(12) + bytes.fromhex(self.writer_address[2:])),
                                      b"") for label in labels]
            return [(b"\x2f\x2f\xf1\x5d" + bytes(64), logs)]  # grantRole(bytes32,address)

        return self._body(make)

    def append(self, calls: Sequence[Sequence[Fact]], tamper: dict[str, Any] | None = None
               ) -> BodyMaker:
        """One block: each inner sequence is one appendBatch call."""

        def make(number: int, timestamp: int) -> list[tuple[bytes, list[proofs.ReceiptLog]]]:
            return [self._call(call, number, timestamp, tamper) for call in calls]

        return self._body(make)

    def _call(self, facts: Sequence[Fact], number: int, timestamp: int,
              tamper: dict[str, Any] | None) -> tuple[bytes, list[proofs.ReceiptLog]]:
        tamper = tamper or {}
        entries: list[onchain.Entry] = []
        packed = b""
        if tamper.get("kind") == "skip":
            self.seq += 1  # a record goes missing between calls
        first_seq, previous = self.seq + 1, self.head
        for i, (label, event_type, fact) in enumerate(facts):
            signer = self.signer(label)
            delta = canonical_delta(event_type, fact)
            nonce = self.nonces.get(signer.address, 0) + 1
            self.nonces[signer.address] = nonce
            event = AttestedEvent(signer.address, event_type, data_hash(delta), nonce)
            attester = signer
            if tamper.get("kind") == "forge" and tamper.get("record", 0) == i:
                attester = self.signer("forger")
                event = replace(event, actor=attester.address)
            attestation = Eip712Scheme().attest(event, self.domain, [attester])
            self.seq += 1
            record = build_record(seq=self.seq, actor=signer.address, event_type=event_type,
                                  delta=delta, nonce=nonce, attestation=attestation,
                                  previous_hash=self.head, timestamp=timestamp,
                                  block_height=number)
            self.head = record.record_hash or b""
            self.records.append(record)
            entries.append(onchain.Entry(signer.address, event_type, nonce, delta, attestation))
            logged = delta
            if tamper.get("kind") == "delta" and tamper.get("record", 0) == i:
                logged = delta.replace(b'"EUR"', b'"USD"')
            packed += (signer.address + bytes([len(event_type)]) + event_type.encode()
                       + nonce.to_bytes(8, "big") + bytes([attestation.scheme_id])
                       + record.attestation_id + len(logged).to_bytes(2, "big") + logged)
        if tamper.get("kind") == "link":
            previous = bytes(keccak(b"not the previous record"))
        head = self.head
        if tamper.get("kind") == "hash":
            head = bytes(keccak(b"not the record hash"))
        data = abi_encode(["uint64", "bytes32", "bytes32", "bytes"],
                          [len(facts), previous, head, packed])
        log = proofs.ReceiptLog(LEDGER_ADDRESS, (onchain.RECORDS_APPENDED_TOPIC,
                                                 first_seq.to_bytes(32, "big")), data)
        return onchain.encode_batch(entries), [log]


def ledger_chain(calls_per_block: int = 2, records_per_call: int = 3, blocks: int = 6,
                 tamper_block: int | None = None, tamper: dict[str, Any] | None = None,
                 builder: ChainBuilder | None = None) -> tuple[Any, Ledger]:
    """Validators, then attesters granted, then ``blocks`` blocks of records (with an empty
    block between each), with ``tamper`` applied by the ledger itself in ``tamper_block``."""
    b = builder or ChainBuilder()
    ledger = Ledger(b)
    b.extend(2)
    b.add(body=ledger.grant(["ta", "admin"]))
    i = 0
    for k in range(blocks):
        calls = []
        for _ in range(calls_per_block):
            call = []
            for _ in range(records_per_call):
                call.append(order_fact("ta" if i % 3 else "admin", i))
                i += 1
            calls.append(call)
        b.add(body=ledger.append(calls, tamper if k == tamper_block else None))
        b.add()
    return b.chain(), ledger
