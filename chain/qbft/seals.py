"""secp256k1 signatures as Besu writes them: 65 bytes ``r || s || recId`` with recId 0 or 1.

Signing and recovery go through coincurve (libsecp256k1); it is a hard dependency because the
pure-Python fallback of eth-keys is about ten times slower. Signatures are deterministic
(RFC 6979) and low-s, as Besu's.
"""

from __future__ import annotations

from functools import lru_cache

from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2


class SealError(ValueError):
    """A signature that is malformed or does not recover."""


def check_seal_format(seal: bytes, *, require_low_s: bool = False) -> None:
    """Raise SealError unless ``seal`` is a signature Besu's ``decodeSignature`` accepts."""
    if len(seal) != 65:
        raise SealError(f"signature is {len(seal)} bytes, expected 65 (r || s || recId)")
    rec_id = seal[64]
    if rec_id not in (0, 1):
        raise SealError(f"signature recId is {rec_id}, expected 0 or 1 (27/28 is not accepted)")
    r = int.from_bytes(seal[:32], "big")
    s = int.from_bytes(seal[32:64], "big")
    if not 1 <= r < SECP256K1_N:
        raise SealError("signature r is outside [1, n-1]")
    if not 1 <= s < SECP256K1_N:
        raise SealError("signature s is outside [1, n-1]")
    if require_low_s and s > SECP256K1_HALF_N:
        raise SealError("signature s is in the upper half of the curve order (high-s)")


keccak(b"")  # settles eth-hash's backend (see chain/__init__), so that hasher is its function
_keccak256 = keccak.hasher


def public_key_to_address(public_key_64: bytes) -> bytes:
    return _keccak256(public_key_64)[12:]


@lru_cache(maxsize=256)
def _private_key(secret: bytes) -> PrivateKey:
    return PrivateKey(secret)


def address_of(secret: bytes) -> bytes:
    """Ethereum address of a 32-byte private key."""
    return public_key_to_address(_private_key(secret).public_key.format(compressed=False)[1:])


def public_key_of(secret: bytes) -> bytes:
    """64-byte uncompressed public key (without the 04 prefix), as Besu's ``key.pub``."""
    return bytes(_private_key(secret).public_key.format(compressed=False)[1:])


def sign(secret: bytes, digest: bytes) -> bytes:
    """Sign a 32-byte digest; returns ``r || s || recId``, deterministic and low-s."""
    if len(digest) != 32:
        raise SealError(f"digest is {len(digest)} bytes, expected 32")
    return bytes(_private_key(secret).sign_recoverable(digest, hasher=None))


def recover(seal: bytes, digest: bytes, *, require_low_s: bool = False) -> bytes:
    """Address that produced ``seal`` over ``digest``; SealError if it cannot be recovered."""
    check_seal_format(seal, require_low_s=require_low_s)
    try:
        public_key = PublicKey.from_signature_and_message(seal, digest, hasher=None)
    except Exception as exc:  # coincurve raises a bare Exception for unrecoverable points
        raise SealError(f"signature does not recover a public key: {exc}") from exc
    return public_key_to_address(public_key.format(compressed=False)[1:])
