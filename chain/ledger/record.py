"""The ledger event record, its canonical delta encoding and its hash chain.

Who: ``actor``, ``attestation_id``. What: ``event_type``, ``delta``. When: ``timestamp``,
``block_height``. Proof: ``data_hash`` = keccak256(delta), ``previous_hash`` = the record hash
of the record before (or the ledger's anchor for the first record).

The delta is the RFC 8785 (JSON Canonicalization Scheme) encoding of a flat JSON object whose
values are strings, booleans and integers below 2**53 (decimals travel as canonical strings, so
no floating point is ever involved): the same facts give the same bytes on every machine and
every Python version, and a regulator can read them. The record hash is keccak256 over the
Solidity ``abi.encode`` of the fixed-size fields, so the contract computes it with one keccak.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import rfc8785
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from chain.abc import Attestation, AttestedEvent, LedgerDomain, attestation_id
from chain.attest.eip712 import event_type_bytes32, keccak256
from chain.ledger.schema import DeltaError, check_delta

RECORD_TYPE = (
    "LedgerRecord(uint64 seq,address actor,bytes32 eventType,bytes32 dataHash,uint64 nonce,"
    "bytes32 attestationId,bytes32 previousHash,uint64 timestamp,uint64 blockHeight)"
)
RECORD_TYPEHASH = bytes(keccak(RECORD_TYPE.encode()))
ANCHOR_TAG = bytes(keccak(b"SMART-TA CeFi Event Ledger/v1"))
_RECORD_ABI = ["bytes32", "uint64", "address", "bytes32", "bytes32", "uint64", "bytes32",
               "bytes32", "uint64", "uint64"]


def canonical_delta(event_type: str, delta: Mapping[str, object]) -> bytes:
    """Check ``delta`` against its schema (personal data refused) and encode it canonically."""
    check_delta(event_type, delta)
    return bytes(rfc8785.dumps(dict(delta)))  # type: ignore[arg-type]


def parse_delta(raw: bytes) -> dict[str, Any]:
    """Decode delta bytes and insist they are in canonical form."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeltaError(f"delta is not UTF-8 JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise DeltaError("delta is not a JSON object")
    canonical = _plain_canonical(value)
    if canonical is None:
        try:
            canonical = rfc8785.dumps(value)
        except rfc8785.CanonicalizationError as exc:
            raise DeltaError(f"delta cannot be canonicalised: {exc}") from exc
    if canonical != raw:
        raise DeltaError("delta is not in RFC 8785 canonical form")
    return value


def _plain_canonical(value: dict[str, Any]) -> bytes | None:
    """The RFC 8785 form of a flat object by the json module, when the two provably agree:
    ASCII keys (JCS sorts by UTF-16 unit, json by code point; the same for ASCII), values
    that are strings, booleans, null or integers in the safe range (no floats: JCS formats
    numbers as ECMAScript does). The json module escapes exactly the characters JCS escapes,
    in the same way. None otherwise (then rfc8785 decides); ~3x faster than rfc8785."""
    if not "".join(value).isascii():
        return None
    for v in value.values():
        if type(v) in _PLAIN:
            continue
        if type(v) is not int or not -MAX_SAFE <= v <= MAX_SAFE:
            return None
    try:
        return _JSON.encode(value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: rfc8785 refuses it with its own message
        return None


_PLAIN = frozenset({str, bool, type(None)})  # exact types: anything else goes to rfc8785
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
MAX_SAFE = 2**53 - 1


def data_hash(delta: bytes) -> bytes:
    return keccak256(delta)


def ledger_anchor(domain: LedgerDomain) -> bytes:
    """previousHash of record 1: binds the hash chain to one ledger contract on one chain."""
    return bytes(
        keccak(abi_encode(["bytes32", "uint256", "address"],
                          [ANCHOR_TAG, domain.chain_id, domain.ledger_address]))
    )


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One record as the ledger holds it. Hash fields are as claimed by the source; verify
    them with ``chain.ledger.verify``. Sequence numbers start at 1."""

    seq: int
    actor: bytes
    event_type: str
    delta: bytes
    nonce: int
    attestation_id: bytes
    data_hash: bytes
    previous_hash: bytes
    timestamp: int
    block_height: int
    record_hash: bytes | None = None
    attestation: Attestation | None = field(default=None, compare=False)

    def event(self) -> AttestedEvent:
        return AttestedEvent(self.actor, self.event_type, self.data_hash, self.nonce)

    def computed_hash(self) -> bytes:
        return record_hash(self)

    def sealed(self) -> LedgerRecord:
        """The same record with ``record_hash`` filled in from its fields."""
        return replace(self, record_hash=record_hash(self))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq,
            "actor": "0x" + self.actor.hex(),
            "eventType": self.event_type,
            "delta": self.delta.decode("utf-8", errors="replace"),
            "nonce": self.nonce,
            "attestationId": "0x" + self.attestation_id.hex(),
            "dataHash": "0x" + self.data_hash.hex(),
            "previousHash": "0x" + self.previous_hash.hex(),
            "timestamp": self.timestamp,
            "blockHeight": self.block_height,
            "recordHash": None if self.record_hash is None else "0x" + self.record_hash.hex(),
        }
        if self.attestation is not None:
            out["attestation"] = {"scheme": self.attestation.scheme_id,
                                  "proof": "0x" + self.attestation.proof.hex()}
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> LedgerRecord:
        def b(key: str) -> bytes:
            return bytes.fromhex(str(obj[key]).removeprefix("0x"))

        att = obj.get("attestation")
        return cls(
            seq=int(obj["seq"]),
            actor=b("actor"),
            event_type=str(obj["eventType"]),
            delta=str(obj["delta"]).encode("utf-8"),
            nonce=int(obj["nonce"]),
            attestation_id=b("attestationId"),
            data_hash=b("dataHash"),
            previous_hash=b("previousHash"),
            timestamp=int(obj["timestamp"]),
            block_height=int(obj["blockHeight"]),
            record_hash=None if obj.get("recordHash") is None else b("recordHash"),
            attestation=None if att is None else Attestation(
                int(att["scheme"]), bytes.fromhex(str(att["proof"]).removeprefix("0x"))),
        )


def record_hash(r: LedgerRecord) -> bytes:
    """keccak256(abi.encode(RECORD_TYPEHASH, seq, actor, eventType, dataHash, nonce,
    attestationId, previousHash, timestamp, blockHeight))."""
    event_type = event_type_bytes32(r.event_type)
    if (_is_u64(r.seq) and _is_u64(r.nonce) and _is_u64(r.timestamp) and _is_u64(r.block_height)
            and len(r.actor) == 20 and len(r.data_hash) == 32 and len(r.attestation_id) == 32
            and len(r.previous_hash) == 32):
        # Every field already has its ABI width: pad by hand. eth_abi's general encoder costs
        # ~100x more, and indexers and verifiers hash every record (twice when walking).
        return keccak256(b"".join((
            RECORD_TYPEHASH, r.seq.to_bytes(32, "big"), bytes(12), r.actor, event_type,
            r.data_hash, r.nonce.to_bytes(32, "big"), r.attestation_id, r.previous_hash,
            r.timestamp.to_bytes(32, "big"), r.block_height.to_bytes(32, "big"))))
    # Anything else gets eth_abi's own validation and errors.
    return bytes(
        keccak(
            abi_encode(
                _RECORD_ABI,
                [RECORD_TYPEHASH, r.seq, r.actor, event_type_bytes32(r.event_type), r.data_hash,
                 r.nonce, r.attestation_id, r.previous_hash, r.timestamp, r.block_height],
            )
        )
    )


def _is_u64(value: object) -> bool:
    return type(value) is int and 0 <= value < 2**64


def build_record(
    *,
    seq: int,
    actor: bytes,
    event_type: str,
    delta: bytes,
    nonce: int,
    attestation: Attestation,
    previous_hash: bytes,
    timestamp: int,
    block_height: int,
) -> LedgerRecord:
    """A record as the contract appends it, with its hash computed."""
    return LedgerRecord(
        seq=seq,
        actor=actor,
        event_type=event_type,
        delta=delta,
        nonce=nonce,
        attestation_id=attestation_id(attestation.scheme_id, attestation.proof),
        data_hash=data_hash(delta),
        previous_hash=previous_hash,
        timestamp=timestamp,
        block_height=block_height,
        attestation=attestation,
    ).sealed()
