"""Transactions as the node handles them: decoded once, sender recovered once, checked once.

``decode`` turns network bytes into a ``Tx`` (py-evm's transaction object for the fork, the
hash, the sender) and applies every check that needs no state, with Besu's rejection wording.
The sender is recovered with coincurve directly and stored on the py-evm object, so neither
py-evm nor a later block validation recovers it again; ``TxCache`` keeps decoded transactions
by hash so a transaction seen by the pool is not decoded again when a block carries it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, cast

from coincurve import PublicKey
from eth.vm.forks.berlin.transactions import AccessListTransaction
from eth.vm.forks.london.transactions import DynamicFeeTransaction
from eth.vm.forks.prague.transactions import SetCodeTransaction
from eth_hash.auto import keccak

from chain import fastrlp
from chain.abc import TxRejected
from chain.execution.forks import Fork

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_INITCODE_SIZE = 2 * 24576
_TYPE_NAMES = {0: "legacy", 1: "EIP-2930", 2: "EIP-1559", 3: "blob (EIP-4844)", 4: "EIP-7702"}
_SEDES: dict[int, Any] = {1: AccessListTransaction, 2: DynamicFeeTransaction, 4: SetCodeTransaction}
"""The payload classes py-evm's typed-transaction decoders use, for every fork that has the type."""


@dataclass(frozen=True, slots=True)
class Tx:
    raw: bytes
    hash: bytes
    tx: Any
    """py-evm's signed transaction for ``fork``, with its sender already recovered."""
    sender: bytes
    type: int
    fork: str

    @property
    def nonce(self) -> int:
        return int(self.tx.nonce)

    @property
    def gas(self) -> int:
        return int(self.tx.gas)

    @property
    def max_fee(self) -> int:
        return int(self.tx.max_fee_per_gas)

    @property
    def max_priority_fee(self) -> int:
        return int(self.tx.max_priority_fee_per_gas)

    @property
    def value(self) -> int:
        return int(self.tx.value)

    @property
    def to(self) -> bytes | None:
        to = self.tx.to
        return bytes(to) if to else None

    def tip(self, base_fee: int) -> int:
        """Effective priority fee per gas at this base fee (what orders the pool)."""
        return min(self.max_priority_fee, self.max_fee - base_fee)


def tx_type(raw: bytes) -> int:
    if not raw:
        raise TxRejected("Invalid params", "the transaction is empty")
    return 0 if raw[0] >= 0xC0 else raw[0]


def decode(raw: bytes, fork: Fork, chain_id: int, *, allow_unprotected: bool = True) -> Tx:
    """Decode, recover the sender and check what needs no state; TxRejected otherwise."""
    kind = tx_type(raw)
    if kind not in fork.tx_types:
        if kind == 3:
            raise TxRejected("Invalid transaction type",
                             "blob transactions (type 3) are not accepted: a QBFT network "
                             "carries no blobs; send a type 0, 1 or 2 transaction")
        raise TxRejected("Invalid transaction type",
                         f"type {kind} ({_TYPE_NAMES.get(kind, 'unknown')}) is not valid at the "
                         f"{fork.name} fork; accepted types are {list(fork.tx_types)}")
    try:
        fields = cast(list[Any], fastrlp.decode(raw[1:] if kind else raw))
        tx = _pyevm(fork, kind, fields)
    except Exception as exc:  # rlp and py-evm raise several unrelated types for bad encodings
        raise TxRejected("Invalid params", f"transaction bytes do not decode as a {_TYPE_NAMES[kind]} "
                                           f"transaction: {exc}") from None
    if kind == 0:
        v = tx.v
        if v in (27, 28):
            if not allow_unprotected:
                raise TxRejected("ChainId is required",
                                 "the transaction is not replay-protected (EIP-155); sign it "
                                 f"with chain id {chain_id}")
        elif tx.chain_id != chain_id:
            raise TxRejected("Wrong chainId", f"signed for chain {tx.chain_id}, this network is "
                                              f"chain {chain_id}")
    elif tx.chain_id != chain_id:
        raise TxRejected("Wrong chainId", f"signed for chain {tx.chain_id}, this network is "
                                          f"chain {chain_id}")
    r, s, y = tx.r, tx.s, tx.y_parity
    if not (1 <= r < SECP256K1_N and 1 <= s <= SECP256K1_N // 2 and y in (0, 1)):
        raise TxRejected("Invalid signature", "r and s must be in [1, n-1], s in the lower half "
                                              "of the curve order (EIP-2), yParity 0 or 1")
    try:
        digest = keccak(_signing_payload(raw[:1] if kind else b"", fields,
                                         tx.chain_id if kind == 0 else None))
        public = PublicKey.from_signature_and_message(
            r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((y,)), digest, hasher=None)
    except Exception:  # coincurve raises bare Exception for a point that does not recover
        raise TxRejected("Invalid signature", "the signature does not recover a public key") from None
    sender = bytes(keccak(public.format(compressed=False)[1:])[12:])
    tx.__dict__["sender"] = sender  # py-evm caches the sender here (cached_property)
    if tx.nonce >= 2**64 - 1:
        raise TxRejected("Nonce overflow", "the nonce must be below 2^64 - 1 (EIP-2681)")
    if kind >= 2 and tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
        raise TxRejected("Max priority fee per gas exceeds max fee per gas",
                         f"maxPriorityFeePerGas {tx.max_priority_fee_per_gas} > maxFeePerGas "
                         f"{tx.max_fee_per_gas}")
    if not tx.to and fork.shanghai and len(tx.data) > MAX_INITCODE_SIZE:
        raise TxRejected("Initcode size exceeds maximum size",
                         f"{len(tx.data)} bytes of initcode, the limit is {MAX_INITCODE_SIZE} (EIP-3860)")
    intrinsic = tx.intrinsic_gas
    if intrinsic > tx.gas:
        raise TxRejected("Intrinsic gas exceeds gas limit",
                         f"the transaction needs at least {intrinsic} gas, its gas limit is {tx.gas}")
    return Tx(raw, bytes(keccak(raw)), tx, sender, kind, fork.name)


def _pyevm(fork: Fork, kind: int, fields: list[Any]) -> Any:
    """py-evm's signed transaction from its decoded RLP fields: what
    ``fork.transaction_builder.decode`` builds (the same field checks, through the same
    sedes), without parsing the bytes a second time with pyrlp."""
    builder = fork.transaction_builder
    if kind == 0:
        return builder.legacy_signed.deserialize(fields)
    return builder.typed_transaction(kind, _SEDES[kind].deserialize(fields))


def _signing_payload(type_byte: bytes, fields: list[Any], legacy_chain_id: int | None) -> bytes:
    """What the sender signed: the fields before the signature, re-encoded (plus the chain id
    for EIP-155). py-evm rebuilds an unsigned transaction object for this, which costs more
    than recovering the key."""
    if type_byte:
        return type_byte + fastrlp.encode(fields[:-3])
    unsigned = fields[:6]
    if legacy_chain_id is not None:
        unsigned += [legacy_chain_id, b"", b""]
    return fastrlp.encode(unsigned)


class TxCache:
    """Decoded transactions by hash, bounded; shared by the pool and block validation."""

    def __init__(self, size: int = 30_000) -> None:
        self._items: OrderedDict[bytes, Tx] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, tx_hash: bytes, fork: Fork) -> Tx | None:
        tx = self._items.get(tx_hash)
        return tx if tx is not None and tx.fork == fork.name else None

    def put(self, tx: Tx) -> None:
        with self._lock:
            self._items[tx.hash] = tx
            if len(self._items) > self._size:
                self._items.popitem(last=False)

    def decode(self, raw: bytes, fork: Fork, chain_id: int) -> Tx:
        """A transaction as a block carries it: from the cache when seen before."""
        tx_hash = bytes(keccak(raw))
        tx = self.get(tx_hash, fork)
        if tx is not None and tx.raw == raw:
            return tx
        tx = decode(raw, fork, chain_id)
        self.put(tx)
        return tx
