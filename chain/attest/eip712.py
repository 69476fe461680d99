"""The default attestation: an EIP-712 typed-data signature by the actor's own key.

Domain ``EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)``
with name "SMART-TA CeFi Event Ledger", version "1", the chain id and the ledger contract;
message ``LedgerEvent(address actor,bytes32 eventType,bytes32 dataHash,uint64 nonce)``. The proof
is ``r || s || v`` with v 27 or 28 and low s, exactly what Solidity's ``ecrecover`` and
OpenZeppelin's ``ECDSA.recover`` accept, so the contract checks the same bytes on chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from chain.abc import (
    Attestation,
    AttestationError,
    AttestationScheme,
    AttestedEvent,
    LedgerDomain,
    Signer,
)
from chain.qbft.seals import SealError, recover

DOMAIN_NAME = "SMART-TA CeFi Event Ledger"
DOMAIN_VERSION = "1"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
EVENT_TYPE = "LedgerEvent(address actor,bytes32 eventType,bytes32 dataHash,uint64 nonce)"
DOMAIN_TYPEHASH = bytes(keccak(DOMAIN_TYPE.encode()))
EVENT_TYPEHASH = bytes(keccak(EVENT_TYPE.encode()))

keccak256: Callable[[bytes], bytes] = keccak.hasher
"""The keccak256 of the backend eth_hash chose (pysha3 when installed, see chain/__init__;
settled by the first hash above), called without ``keccak()``'s type check and dispatch:
~0.5 us a call, and a verifier hashes about eight times per record."""


@lru_cache(maxsize=256)  # a pure function of the string; every record hashes its type 2-3 times
def event_type_bytes32(event_type: str) -> bytes:
    """An event type as Solidity's ``bytes32("ORDER_PLACED")``: ASCII, right-padded with zeros."""
    try:
        raw = event_type.encode("ascii", errors="strict")
    except UnicodeEncodeError:
        raw = b""
    if not 1 <= len(raw) <= 32:
        raise AttestationError(f"event type {event_type!r} must be 1 to 32 ASCII characters")
    return raw.ljust(32, b"\x00")


@lru_cache(maxsize=64)
def domain_separator(domain: LedgerDomain) -> bytes:
    # Cached: a verifier checks every record of a ledger under the same domain.
    return bytes(
        keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    DOMAIN_TYPEHASH,
                    keccak(DOMAIN_NAME.encode()),
                    keccak(DOMAIN_VERSION.encode()),
                    domain.chain_id,
                    domain.ledger_address,
                ],
            )
        )
    )


def struct_hash(event: AttestedEvent) -> bytes:
    if not 0 <= event.nonce < 2**64:
        raise AttestationError(f"nonce {event.nonce} does not fit uint64")
    event_type = event_type_bytes32(event.event_type)
    if len(event.actor) == 20 and len(event.data_hash) == 32:
        # Every field already has its ABI width: pad by hand, as record_hash does (eth_abi's
        # general encoder was most of the cost of checking an attestation).
        return keccak256(b"".join((EVENT_TYPEHASH, bytes(12), event.actor, event_type,
                                   event.data_hash, event.nonce.to_bytes(32, "big"))))
    return bytes(
        keccak(
            abi_encode(
                ["bytes32", "address", "bytes32", "bytes32", "uint64"],
                [
                    EVENT_TYPEHASH,
                    event.actor,
                    event_type,
                    event.data_hash,
                    event.nonce,
                ],
            )
        )
    )


def digest(event: AttestedEvent, domain: LedgerDomain) -> bytes:
    """The EIP-712 digest ``keccak256(0x1901 || domainSeparator || structHash)``."""
    return keccak256(b"\x19\x01" + domain_separator(domain) + struct_hash(event))


class Eip712Scheme(AttestationScheme):
    scheme_id = 1
    name = "eip712"

    def attest(
        self, event: AttestedEvent, domain: LedgerDomain, signers: Sequence[Signer]
    ) -> Attestation:
        if len(signers) != 1:
            raise AttestationError("an EIP-712 attestation takes exactly one signer: the actor")
        signer = signers[0]
        if signer.address != event.actor:
            raise AttestationError(
                f"signer 0x{signer.address.hex()} is not the actor 0x{event.actor.hex()}: "
                "the actor attests its own events"
            )
        sig = signer.sign_digest(digest(event, domain))
        return Attestation(self.scheme_id, sig[:64] + bytes([sig[64] + 27]))

    def verify(self, event: AttestedEvent, domain: LedgerDomain, attestation: Attestation) -> None:
        proof = attestation.proof
        if attestation.scheme_id != self.scheme_id:
            raise AttestationError(f"attestation is scheme {attestation.scheme_id}, not eip712")
        if len(proof) != 65:
            raise AttestationError(f"EIP-712 proof is {len(proof)} bytes, expected 65 (r||s||v)")
        if proof[64] not in (27, 28):
            raise AttestationError(f"EIP-712 proof v is {proof[64]}, expected 27 or 28")
        try:
            signer = recover(proof[:64] + bytes([proof[64] - 27]), digest(event, domain),
                             require_low_s=True)
        except SealError as exc:
            raise AttestationError(f"EIP-712 signature is malformed: {exc}") from exc
        if signer != event.actor:
            raise AttestationError(
                f"EIP-712 signature recovers 0x{signer.hex()}, not the actor 0x{event.actor.hex()}"
            )
