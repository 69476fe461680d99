"""Precompiles the node runs faster than py-evm with the same results.

``ecrecover`` (address 0x01): py-evm wraps coincurve's recovery in eth-keys objects and
validations that cost several times the recovery itself; CeFiEventLedger calls it once per
record. Same inputs, same checks (r and s below the curve order, v 27 or 28), same output (the
signer's address left-padded to 32 bytes, or nothing when the signature does not recover), same
3,000 gas.
"""

from __future__ import annotations

from typing import Any

from coincurve import PublicKey
from eth.constants import GAS_ECRECOVER
from eth_hash.auto import keccak

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ECRECOVER_ADDRESS = b"\x00" * 19 + b"\x01"


def ecrecover(computation: Any) -> Any:
    computation.consume_gas(GAS_ECRECOVER, reason="ECRecover Precompile")
    data = computation.msg.data_as_bytes
    digest = data[:32].ljust(32, b"\x00")
    v = int.from_bytes(data[32:64].ljust(32, b"\x00"))
    r = int.from_bytes(data[64:96].ljust(32, b"\x00"))
    s = int.from_bytes(data[96:128].ljust(32, b"\x00"))
    if r >= SECP256K1_N or s >= SECP256K1_N or v not in (27, 28):
        return computation
    try:
        key = PublicKey.from_signature_and_message(
            r.to_bytes(32) + s.to_bytes(32) + bytes((v - 27,)), bytes(digest), hasher=None)
    except Exception:  # coincurve raises bare Exception for a signature that does not recover
        return computation
    computation.output = bytes(12) + bytes(keccak(key.format(compressed=False)[1:]))[12:]
    return computation
