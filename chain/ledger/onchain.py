"""The CeFi Event Ledger contract's wire formats, for clients without npm or ape.

What ``contracts/CeFiEventLedger.sol`` takes and emits, in pure eth_abi/eth_hash:

- calldata: ``append(address,bytes32,uint64,uint8,bytes,bytes)`` for one record, and
  ``appendBatch(bytes)`` whose argument packs records back to back, each
  ``actor(20) typeLength(1) eventType(typeLength) nonce(8) scheme(1) proofLength(2)
  deltaLength(2) proof delta`` (big-endian): no ABI padding, because calldata bytes are most
  of a record's gas;
- one log per call, ``RecordsAppended(uint64 indexed firstSeq, uint64 count, bytes32
  previousHash, bytes32 headHash, bytes records)``, whose ``records`` packs per record
  ``actor(20) typeLength(1) eventType nonce(8) scheme(1) attestationId(32) deltaLength(2)
  delta``. With its block's timestamp and number, a log is every record of the call except
  the attestation proofs, which stay in the calldata (``decode_calldata`` gets them back,
  ``with_proofs`` joins the two);
- the contract's custom errors, turned back into sentences by ``explain_revert``;
- the DeFi-CeFi bridge's ``TokenOperation`` log, which links a token movement to the ledger
  record (sequence number and hash) that authorised it (``decode_token_operation``).

docs/contracts.md describes the same layouts for other languages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_hash.auto import keccak

from chain.abc import Attestation, AttestationError
from chain.attest.eip712 import event_type_bytes32
from chain.ledger.record import LedgerRecord, data_hash, record_hash


class OnchainFormatError(ValueError):
    """Bytes that are not what the ledger contract writes or accepts."""


def _selector(signature: str) -> bytes:
    return bytes(keccak(signature.encode()))[:4]


def _topic(signature: str) -> bytes:
    return bytes(keccak(signature.encode()))


def role_id(name: str) -> bytes:
    """An AccessControl role id: keccak256 of its name (DEFAULT_ADMIN_ROLE is zero)."""
    return bytes(32) if name == "DEFAULT_ADMIN_ROLE" else _topic(name)


APPEND_SIGNATURE = "append(address,bytes32,uint64,uint8,bytes,bytes)"
APPEND_BATCH_SIGNATURE = "appendBatch(bytes)"
APPEND_SELECTOR = _selector(APPEND_SIGNATURE)
APPEND_BATCH_SELECTOR = _selector(APPEND_BATCH_SIGNATURE)

RECORDS_APPENDED_SIGNATURE = "RecordsAppended(uint64,uint64,bytes32,bytes32,bytes)"
RECORDS_APPENDED_TOPIC = _topic(RECORDS_APPENDED_SIGNATURE)
# OpenZeppelin AccessControl: RoleGranted/RoleRevoked(bytes32 indexed role, address indexed
# account, address indexed sender); the observer's signer-authorisation check reads these.
ROLE_GRANTED_TOPIC = _topic("RoleGranted(bytes32,address,address)")
ROLE_REVOKED_TOPIC = _topic("RoleRevoked(bytes32,address,address)")

WRITER_ROLE = role_id("WRITER_ROLE")
ATTESTER_ROLE = role_id("ATTESTER_ROLE")
PAUSER_ROLE = role_id("PAUSER_ROLE")
OFFCHAIN_ATTESTATION_ROLE = role_id("OFFCHAIN_ATTESTATION_ROLE")
ROLES = {
    "DEFAULT_ADMIN_ROLE": role_id("DEFAULT_ADMIN_ROLE"),
    "WRITER_ROLE": WRITER_ROLE,
    "ATTESTER_ROLE": ATTESTER_ROLE,
    "PAUSER_ROLE": PAUSER_ROLE,
    "OFFCHAIN_ATTESTATION_ROLE": OFFCHAIN_ATTESTATION_ROLE,
}

MAX_FIELD_LEN = 0xFFFF
"""Longest delta or proof one packed record carries (two length bytes)."""

_LOG_DATA_ABI = ["uint64", "bytes32", "bytes32", "bytes"]  # count, previousHash, headHash, records
_APPEND_ABI = ["address", "bytes32", "uint64", "uint8", "bytes", "bytes"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One record as a writer submits it: the contract adds seq, hashes, time and height."""

    actor: bytes
    event_type: str
    nonce: int
    delta: bytes
    attestation: Attestation

    def check(self) -> None:
        """Raise OnchainFormatError unless the contract can take this entry as it is."""
        if len(self.actor) != 20:
            raise OnchainFormatError(f"actor is {len(self.actor)} bytes, an address is 20")
        try:
            event_type_bytes32(self.event_type)
        except AttestationError as exc:
            raise OnchainFormatError(str(exc)) from None
        if not 0 < self.nonce < 2**64:
            raise OnchainFormatError(f"nonce {self.nonce} must be from 1 to 2**64-1")
        if not 0 < len(self.delta) <= MAX_FIELD_LEN:
            raise OnchainFormatError(
                f"delta is {len(self.delta)} bytes; the ledger takes 1 to {MAX_FIELD_LEN}")
        if not 0 <= self.attestation.scheme_id <= 255:
            raise OnchainFormatError(f"scheme id {self.attestation.scheme_id} does not fit a byte")
        if len(self.attestation.proof) > MAX_FIELD_LEN:
            raise OnchainFormatError(
                f"proof is {len(self.attestation.proof)} bytes; at most {MAX_FIELD_LEN}")


def pack_entry(entry: Entry) -> bytes:
    entry.check()
    event_type = entry.event_type.encode("ascii")
    proof = entry.attestation.proof
    return b"".join((
        entry.actor,
        bytes([len(event_type)]),
        event_type,
        entry.nonce.to_bytes(8, "big"),
        bytes([entry.attestation.scheme_id]),
        len(proof).to_bytes(2, "big"),
        len(entry.delta).to_bytes(2, "big"),
        proof,
        entry.delta,
    ))


def pack_batch(entries: Iterable[Entry]) -> bytes:
    """The ``bytes`` argument of ``appendBatch``."""
    packed = b"".join(pack_entry(e) for e in entries)
    if not packed:
        raise OnchainFormatError("a batch needs at least one entry")
    return packed


def unpack_batch(packed: bytes) -> list[Entry]:
    """The entries of an ``appendBatch`` argument, proofs included."""
    entries: list[Entry] = []
    offset = 0
    while offset < len(packed):
        where = f"batch entry {len(entries)} at byte {offset}"
        if offset + 21 > len(packed):
            raise OnchainFormatError(f"{where}: truncated before its event type")
        actor = packed[offset:offset + 20]
        type_len = packed[offset + 20]
        if not 1 <= type_len <= 32:
            raise OnchainFormatError(f"{where}: event type length {type_len} is not 1 to 32")
        mid = offset + 21 + type_len
        if mid + 13 > len(packed):
            raise OnchainFormatError(f"{where}: truncated in its fixed fields")
        try:
            event_type = packed[offset + 21:mid].decode("ascii")
        except UnicodeDecodeError:
            raise OnchainFormatError(f"{where}: event type is not ASCII") from None
        nonce = int.from_bytes(packed[mid:mid + 8], "big")
        scheme = packed[mid + 8]
        proof_len = int.from_bytes(packed[mid + 9:mid + 11], "big")
        delta_len = int.from_bytes(packed[mid + 11:mid + 13], "big")
        start = mid + 13
        end = start + proof_len + delta_len
        if end > len(packed):
            raise OnchainFormatError(
                f"{where}: says {proof_len} proof and {delta_len} delta bytes, "
                f"only {len(packed) - start} remain")
        entries.append(Entry(actor, event_type, nonce, packed[start + proof_len:end],
                             Attestation(scheme, packed[start:start + proof_len])))
        offset = end
    return entries


def encode_append(entry: Entry) -> bytes:
    """Calldata for ``append`` (one record)."""
    entry.check()
    return APPEND_SELECTOR + abi_encode(_APPEND_ABI, [
        entry.actor, event_type_bytes32(entry.event_type), entry.nonce,
        entry.attestation.scheme_id, entry.delta, entry.attestation.proof])


def encode_batch(entries: Iterable[Entry]) -> bytes:
    """Calldata for ``appendBatch``."""
    return APPEND_BATCH_SELECTOR + abi_encode(["bytes"], [pack_batch(entries)])


def _event_type_text(raw: bytes, where: str) -> str:
    text = raw.rstrip(b"\x00")
    if not text or b"\x00" in text:
        raise OnchainFormatError(f"{where}: event type 0x{raw.hex()} is not right-padded ASCII")
    try:
        return text.decode("ascii")
    except UnicodeDecodeError:
        raise OnchainFormatError(f"{where}: event type 0x{raw.hex()} is not ASCII") from None


def decode_calldata(calldata: bytes) -> list[Entry]:
    """The entries (with their attestation proofs) of an ``append`` or ``appendBatch`` call."""
    selector, body = calldata[:4], calldata[4:]
    try:
        if selector == APPEND_BATCH_SELECTOR:
            (packed,) = abi_decode(["bytes"], body, strict=False)
            return unpack_batch(bytes(packed))
        if selector == APPEND_SELECTOR:
            actor, event_type, nonce, scheme, delta, proof = abi_decode(_APPEND_ABI, body,
                                                                        strict=False)
            return [Entry(bytes.fromhex(actor[2:]), _event_type_text(event_type, "append"),
                          nonce, bytes(delta), Attestation(scheme, bytes(proof)))]
    except DecodingError as exc:
        raise OnchainFormatError(f"calldata does not decode as {selector.hex()}: {exc}") from None
    raise OnchainFormatError(
        f"selector 0x{selector.hex()} is neither append (0x{APPEND_SELECTOR.hex()}) nor "
        f"appendBatch (0x{APPEND_BATCH_SELECTOR.hex()}): not a ledger write")


@dataclass(frozen=True, slots=True)
class AppendedRecords:
    """One ``RecordsAppended`` log: the records a single append call added.

    ``previous_hash`` and ``head_hash`` are the contract's own links before and after the call.
    In ``records`` the first record's ``previous_hash`` is the contract's; each later one links
    to the hash computed here of the record before it, and the last record's ``record_hash`` is
    the contract's ``head_hash``, so ``chain.ledger.verify`` flags any record whose hash the
    contract computed differently (at the end of its call at the latest).
    """

    first_seq: int
    previous_hash: bytes
    head_hash: bytes
    records: tuple[LedgerRecord, ...]
    schemes: tuple[int, ...]
    hashes: tuple[bytes | None, ...] = ()
    """The record hash computed here from each record's fields (None where they cannot be
    hashed), which ``LedgerWalker.check`` takes as ``decoded`` rather than hash them again."""


def decode_log(
    topics: Sequence[bytes], data: bytes, *, block_number: int, timestamp: int,
    proofs: Mapping[tuple[bytes, int], Attestation] | None = None,
) -> AppendedRecords:
    """The records a ``RecordsAppended`` log announces.

    ``timestamp`` is that of the log's block: eth_getLogs does not return it. ``proofs``: the
    attestations of the call's entries by (actor, nonce), as ``with_proofs`` joins them (the
    log does not carry them); a record with none has no proof.
    """
    if len(topics) != 2 or bytes(topics[0]) != RECORDS_APPENDED_TOPIC:
        raise OnchainFormatError("not a RecordsAppended log (topic 0 or topic count differs)")
    first_seq = int.from_bytes(topics[1], "big")
    where = f"log of records {first_seq}.."
    try:
        count, previous_hash, head_hash, packed = abi_decode(_LOG_DATA_ABI, data)
    except DecodingError as exc:
        raise OnchainFormatError(f"{where}: data does not decode: {exc}") from None
    packed = bytes(packed)
    records: list[LedgerRecord] = []
    schemes: list[int] = []
    hashes: list[bytes | None] = []
    link = bytes(previous_hash)
    offset = 0
    while offset < len(packed):
        seq = first_seq + len(records)
        if offset + 21 > len(packed):
            raise OnchainFormatError(f"{where}: record {seq} is truncated")
        actor = packed[offset:offset + 20]
        type_len = packed[offset + 20]
        mid = offset + 21 + type_len
        if not 1 <= type_len <= 32 or mid + 43 > len(packed):
            raise OnchainFormatError(f"{where}: record {seq} is truncated or malformed")
        delta_len = int.from_bytes(packed[mid + 41:mid + 43], "big")
        end = mid + 43 + delta_len
        if end > len(packed):
            raise OnchainFormatError(f"{where}: record {seq} says {delta_len} delta bytes, "
                                     f"only {len(packed) - mid - 43} remain")
        delta = packed[mid + 43:end]
        nonce = int.from_bytes(packed[mid:mid + 8], "big")
        record = LedgerRecord(
            seq=seq,
            actor=actor,
            # The contract admits 7-bit ASCII only; latin-1 maps any byte, so a corrupt log
            # still decodes and the verifier names the record.
            event_type=packed[offset + 21:mid].decode("latin-1"),
            delta=delta,
            nonce=nonce,
            attestation_id=packed[mid + 9:mid + 41],
            data_hash=data_hash(delta),
            previous_hash=link,
            timestamp=timestamp,
            block_height=block_number,
            attestation=proofs.get((actor, nonce)) if proofs else None,
        )
        records.append(record)
        schemes.append(packed[mid + 8])
        hashed = _hash_or_none(record)
        hashes.append(hashed)
        # An event type the hash cannot encode: the verifier reports it at this record.
        link = bytes(32) if hashed is None else hashed
        offset = end
    if len(records) != count or not records:
        raise OnchainFormatError(f"{where}: says {count} records, holds {len(records)}")
    records[-1] = replace(records[-1], record_hash=bytes(head_hash))
    return AppendedRecords(first_seq, bytes(previous_hash), bytes(head_hash), tuple(records),
                           tuple(schemes), tuple(hashes))


def _hash_or_none(record: LedgerRecord) -> bytes | None:
    try:
        return record_hash(record)
    except (AttestationError, ValueError):
        return None


def decode_rpc_log(log: Mapping[str, object], *, timestamp: int) -> AppendedRecords:
    """``decode_log`` for one entry of an eth_getLogs answer (hex strings, as JSON-RPC gives)."""

    def raw(value: object) -> bytes:
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        return bytes.fromhex(str(value).removeprefix("0x"))

    topics = log.get("topics")
    if not isinstance(topics, list):
        raise OnchainFormatError("log has no topics list")
    number = log.get("blockNumber")
    block = number if isinstance(number, int) else int(str(number), 16)
    return decode_log([raw(t) for t in topics], raw(log.get("data", "0x")),
                      block_number=block, timestamp=timestamp)


TOKEN_OPERATION_SIGNATURE = (
    "TokenOperation(uint64,bytes32,address,uint64,uint8,address,address,uint256)")
TOKEN_OPERATION_TOPIC = _topic(TOKEN_OPERATION_SIGNATURE)
TOKEN_OPERATION_KINDS = ("mint", "burn", "forced_transfer")
"""DeFiCeFiBridge.Kind, in order; the ledger event types that record each kind are
TOKEN_MINTED, TOKEN_BURNED and TOKEN_FORCED_TRANSFER."""


@dataclass(frozen=True, slots=True)
class TokenOperation:
    """A bridge's token movement and the ledger record that authorised it."""

    operation_id: int
    record_hash: bytes
    token: bytes
    seq: int
    kind: str
    sender: bytes
    receiver: bytes
    amount: int


def decode_token_operation(topics: Sequence[bytes], data: bytes) -> TokenOperation:
    if len(topics) != 4 or bytes(topics[0]) != TOKEN_OPERATION_TOPIC:
        raise OnchainFormatError("not a TokenOperation log (topic 0 or topic count differs)")
    try:
        seq, kind, sender, receiver, amount = abi_decode(
            ["uint64", "uint8", "address", "address", "uint256"], data)
    except DecodingError as exc:
        raise OnchainFormatError(f"TokenOperation data does not decode: {exc}") from None
    if kind >= len(TOKEN_OPERATION_KINDS):
        raise OnchainFormatError(f"TokenOperation kind {kind} is unknown")
    return TokenOperation(
        operation_id=int.from_bytes(topics[1], "big"), record_hash=bytes(topics[2]),
        token=bytes(topics[3])[12:], seq=seq, kind=TOKEN_OPERATION_KINDS[kind],
        sender=bytes.fromhex(sender[2:]), receiver=bytes.fromhex(receiver[2:]), amount=amount)


def with_proofs(records: Iterable[LedgerRecord], entries: Iterable[Entry]) -> list[LedgerRecord]:
    """Attach each entry's attestation to its record, matched by (actor, nonce), which the
    contract makes unique. A record with no matching entry is returned without a proof."""
    proofs = {(e.actor, e.nonce): e.attestation for e in entries}
    out: list[LedgerRecord] = []
    for r in records:
        proof = proofs.get((r.actor, r.nonce), r.attestation)
        # The constructor rather than dataclasses.replace, at half the cost: a verifier joins
        # every record it walks.
        out.append(r if proof is r.attestation else LedgerRecord(
            seq=r.seq, actor=r.actor, event_type=r.event_type, delta=r.delta, nonce=r.nonce,
            attestation_id=r.attestation_id, data_hash=r.data_hash,
            previous_hash=r.previous_hash, timestamp=r.timestamp, block_height=r.block_height,
            record_hash=r.record_hash, attestation=proof))
    return out


_ERRORS: dict[bytes, tuple[str, list[str], str]] = {
    _selector(sig): (sig.split("(")[0], types, text)
    for sig, types, text in [
        ("ZeroAdmin()", [], "the admin address is zero; deploy with a real admin"),
        ("EmptyBatch()", [], "the batch is empty; send at least one record"),
        ("MalformedBatch(uint256,uint256)", ["uint256", "uint256"],
         "record {0}: the packed batch ends inside it (it starts at byte {1}); "
         "encode batches with chain.ledger.onchain.pack_batch"),
        ("InvalidEventType(uint256)", ["uint256"],
         "record {0}: the event type must be 1 to 32 ASCII characters"),
        ("EmptyDelta(uint256)", ["uint256"], "record {0}: the delta is empty"),
        ("DeltaTooLong(uint256,uint256)", ["uint256", "uint256"],
         "record {0}: the delta is {1} bytes; the ledger takes at most 65535"),
        ("ActorNotAttester(uint256,address)", ["uint256", "address"],
         "record {0}: actor {1} is not an authorised attester; grant it ATTESTER_ROLE first"),
        ("NonceNotIncreasing(uint256,address,uint64,uint64)",
         ["uint256", "address", "uint64", "uint64"],
         "record {0}: nonce {2} of actor {1} is not above its last recorded nonce {3} "
         "(a replay or a double submission); it is already on the ledger or must be re-attested"),
        ("UnknownScheme(uint256,uint8)", ["uint256", "uint8"],
         "record {0}: attestation scheme {1} is unknown to the contract (1 EIP-712, 2 BLS)"),
        ("SchemeNeedsRole(uint256,uint8,bytes32)", ["uint256", "uint8", "bytes32"],
         "record {0}: scheme {1} is not checked on chain, so the writer needs role {2}"),
        ("MalformedProof(uint256,uint8,uint256)", ["uint256", "uint8", "uint256"],
         "record {0}: the scheme {1} proof ({2} bytes) is malformed (EIP-712: 65 bytes r||s||v, "
         "v 27/28, low s)"),
        ("SignatureMismatch(uint256,address,address)", ["uint256", "address", "address"],
         "record {0}: the EIP-712 signature recovers {2}, not the actor {1}; the record, the "
         "chain id or the ledger address differs from what the actor signed"),
        ("AccessControlUnauthorizedAccount(address,bytes32)", ["address", "bytes32"],
         "account {0} lacks role {1}"),
        ("EnforcedPause()", [], "the ledger is paused; appends resume after unpause"),
        ("ExpectedPause()", [], "the ledger is not paused"),
    ]
}
_ROLE_NAMES = {v: k for k, v in ROLES.items()}


def explain_revert(data: bytes) -> str:
    """A sentence for the ledger's revert data (custom errors or an Error(string))."""
    if data[:4] == _selector("Error(string)"):
        try:
            (reason,) = abi_decode(["string"], data[4:])
            return str(reason)
        except DecodingError:
            pass
    known = _ERRORS.get(data[:4])
    if known is None:
        return f"unknown revert data 0x{data.hex()}"
    name, types, text = known
    try:
        values = abi_decode(types, data[4:]) if types else ()
    except DecodingError:
        return f"{name} with undecodable arguments 0x{data[4:].hex()}"
    shown = [
        _ROLE_NAMES.get(bytes(v), "0x" + bytes(v).hex()) if isinstance(v, bytes) else v
        for v in values
    ]
    return f"{name}: " + text.format(*shown)
