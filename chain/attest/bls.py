"""A BLS12-381 aggregate attestation: several parties co-sign one event (a NAV signed by the
fund administrator and the depositary, say).

Each party signs the same EIP-712 digest as the default scheme, with the proof-of-possession
ciphersuite of py-ecc (public keys in G1, 48 bytes; signatures in G2, 96 bytes), so rogue-key
attacks are excluded once each key's proof of possession has been checked at registration
(``BlsKey.proof_of_possession`` / ``check_proof_of_possession``). The proof is
``k (1 byte) || k public keys || aggregate signature``. BLS cannot be checked on chain before
the Prague precompiles, so this scheme is verified by the observer and the indexer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_typing import BLSPubkey, BLSSignature
from py_ecc.bls.ciphersuites import G2ProofOfPossession as Bls

from chain.abc import Attestation, AttestationError, AttestationScheme, AttestedEvent, LedgerDomain
from chain.attest.eip712 import digest

PUBKEY_LEN = 48
SIGNATURE_LEN = 96


@dataclass(frozen=True)
class BlsKey:
    """A BLS secret key; ``from_seed`` derives it with the standard KeyGen (>= 32 bytes of IKM)."""

    secret: int

    @classmethod
    def from_seed(cls, ikm: bytes) -> BlsKey:
        if len(ikm) < 32:
            raise AttestationError("BLS key material must be at least 32 bytes")
        return cls(Bls.KeyGen(ikm))

    @property
    def public_key(self) -> bytes:
        return bytes(Bls.SkToPk(self.secret))

    def sign(self, message: bytes) -> bytes:
        return bytes(Bls.Sign(self.secret, message))

    def proof_of_possession(self) -> bytes:
        return bytes(Bls.PopProve(self.secret))


def check_proof_of_possession(public_key: bytes, proof: bytes) -> None:
    if not Bls.PopVerify(BLSPubkey(public_key), BLSSignature(proof)):
        raise AttestationError(f"BLS key 0x{public_key.hex()[:16]}…: proof of possession invalid")


def split_proof(proof: bytes) -> tuple[list[bytes], bytes]:
    if not proof:
        raise AttestationError("BLS proof is empty")
    k = proof[0]
    if k == 0:
        raise AttestationError("BLS proof names no signers")
    expected = 1 + k * PUBKEY_LEN + SIGNATURE_LEN
    if len(proof) != expected:
        raise AttestationError(
            f"BLS proof is {len(proof)} bytes; {k} signers need {expected} "
            "(1 count byte, 48 per public key, 96 for the aggregate signature)"
        )
    keys = [proof[1 + i * PUBKEY_LEN : 1 + (i + 1) * PUBKEY_LEN] for i in range(k)]
    return keys, proof[1 + k * PUBKEY_LEN :]


class BlsAggregateScheme(AttestationScheme):
    scheme_id = 2
    name = "bls12-381-aggregate"

    def attest(
        self, event: AttestedEvent, domain: LedgerDomain, signers: Sequence[Any]
    ) -> Attestation:
        keys = list(signers)
        if not keys or not all(isinstance(k, BlsKey) for k in keys):
            raise AttestationError("a BLS attestation needs one or more BlsKey co-signers")
        if len(keys) > 255:
            raise AttestationError("a BLS attestation takes at most 255 co-signers")
        pubkeys = [k.public_key for k in keys]
        if len(set(pubkeys)) != len(pubkeys):
            raise AttestationError("a BLS attestation lists the same co-signer twice")
        message = digest(event, domain)
        aggregate = Bls.Aggregate([k.sign(message) for k in keys])
        return Attestation(self.scheme_id, bytes([len(keys)]) + b"".join(pubkeys) + aggregate)

    def signers(self, attestation: Attestation) -> list[bytes]:
        """The co-signers' public keys, for the caller's authorisation policy."""
        return split_proof(attestation.proof)[0]

    def verify(self, event: AttestedEvent, domain: LedgerDomain, attestation: Attestation) -> None:
        if attestation.scheme_id != self.scheme_id:
            raise AttestationError(f"attestation is scheme {attestation.scheme_id}, not BLS")
        pubkeys, signature = split_proof(attestation.proof)
        if len(set(pubkeys)) != len(pubkeys):
            raise AttestationError("BLS proof lists the same co-signer twice")
        for pk in pubkeys:
            if not Bls.KeyValidate(BLSPubkey(pk)):
                raise AttestationError(f"BLS public key 0x{pk.hex()[:16]}… is not a valid G1 point")
        if not Bls.FastAggregateVerify([BLSPubkey(p) for p in pubkeys], digest(event, domain),
                                       BLSSignature(signature)):
            raise AttestationError(
                f"BLS aggregate signature does not verify for the {len(pubkeys)} listed co-signers"
            )
