"""Pluggable attestation: a scheme id plus its proof; EIP-712 by the actor's key is the default."""

from __future__ import annotations

from chain.abc import Attestation, AttestationError, AttestationScheme, AttestedEvent, LedgerDomain
from chain.attest.bls import BlsAggregateScheme
from chain.attest.eip712 import Eip712Scheme

SCHEMES: dict[int, AttestationScheme] = {
    Eip712Scheme.scheme_id: Eip712Scheme(),
    BlsAggregateScheme.scheme_id: BlsAggregateScheme(),
}
DEFAULT_SCHEME = Eip712Scheme.scheme_id


def scheme(scheme_id: int) -> AttestationScheme:
    try:
        return SCHEMES[scheme_id]
    except KeyError:
        known = ", ".join(f"{k} ({v.name})" for k, v in sorted(SCHEMES.items()))
        raise AttestationError(f"unknown attestation scheme {scheme_id}; known: {known}") from None


def verify(event: AttestedEvent, domain: LedgerDomain, attestation: Attestation) -> None:
    """Verify ``attestation`` with the scheme its id names; AttestationError if it fails."""
    scheme(attestation.scheme_id).verify(event, domain, attestation)


__all__ = [
    "DEFAULT_SCHEME",
    "SCHEMES",
    "Attestation",
    "AttestationError",
    "AttestedEvent",
    "BlsAggregateScheme",
    "Eip712Scheme",
    "LedgerDomain",
    "scheme",
    "verify",
]
