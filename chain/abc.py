"""Every pluggable role of chain/ in one place (after py-evm's ``eth/abc.py``).

Concrete classes live in their own modules: keystore and in-memory signers in
``chain.attest.keys``, the EIP-712 and BLS attestation schemes in ``chain.attest.eip712`` and
``chain.attest.bls``. A KMS or HSM signer, or an external attestation service, implements the
same small interface. Execution's shared vocabulary (``TxRejected``, ``CallRequest``,
``CallResult``) is here too: ``chain.execution`` raises and takes it, the node passes it on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak


class Signer(ABC):
    """Holds one secp256k1 key and signs 32-byte digests with it; never reveals the key."""

    @property
    @abstractmethod
    def address(self) -> bytes:
        """The 20-byte Ethereum address of the key."""

    @abstractmethod
    def sign_digest(self, digest: bytes) -> bytes:
        """Deterministic, low-s signature ``r || s || recId`` (recId 0 or 1) over ``digest``."""


class AttestationError(ValueError):
    """An attestation that does not prove what it claims to prove."""


@dataclass(frozen=True, slots=True)
class AttestedEvent:
    """What an actor attests: who, what (by the hash of the delta), and a per-actor nonce.

    The nonce strictly increases per actor, so a replayed attestation is refused on chain.
    """

    actor: bytes
    event_type: str
    data_hash: bytes
    nonce: int


@dataclass(frozen=True, slots=True)
class LedgerDomain:
    """Binds attestations and the hash chain to one ledger contract on one chain."""

    chain_id: int
    ledger_address: bytes


@dataclass(frozen=True, slots=True)
class Attestation:
    scheme_id: int
    proof: bytes

    @property
    def id(self) -> bytes:
        """attestationId = keccak256(schemeId as one byte || proof): names this exact proof."""
        return attestation_id(self.scheme_id, self.proof)


def attestation_id(scheme_id: int, proof: bytes) -> bytes:
    if not 0 <= scheme_id <= 255:
        raise AttestationError(f"scheme id {scheme_id} does not fit one byte")
    return bytes(keccak(bytes([scheme_id]) + proof))


class AttestationScheme(ABC):
    """One way to prove that the actor (or several parties) stand behind an event."""

    scheme_id: int
    name: str

    @abstractmethod
    def attest(
        self, event: AttestedEvent, domain: LedgerDomain, signers: Sequence[Any]
    ) -> Attestation:
        """Produce the proof for ``event`` from the scheme's own kind of signers."""

    @abstractmethod
    def verify(self, event: AttestedEvent, domain: LedgerDomain, attestation: Attestation) -> None:
        """Raise AttestationError naming what is wrong, or return if the proof holds."""


# --- execution (chain.execution), shared with the node's pool and RPC ---------------------


class TxRejected(ValueError):
    """A transaction refused before execution (its encoding, signature or chain id, a pool
    check, a call's fees); ``reason`` is Besu's wording (e.g. "Nonce too low")."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CallRequest:
    sender: bytes | None = None
    to: bytes | None = None
    gas: int | None = None
    gas_price: int | None = None
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    value: int = 0
    data: bytes = b""
    access_list: tuple[tuple[bytes, tuple[int, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class CallResult:
    output: bytes
    gas_used: int
    error: str | None = None
    """None on success; "execution reverted" (with ``output`` the revert data) or the EVM error."""
