"""Signed transactions in their network encoding, decoded into the fields JSON-RPC shows.

Legacy (with or without EIP-155), EIP-2930, EIP-1559, EIP-4844 (network form, without the
blob sidecar) and EIP-7702. Decoding is strict: any RLP the chain would not accept raises
``TxDecodeError``. The sender is not recovered here unless asked (``sender``): blocks and
receipts already carry it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from coincurve import PublicKey
from eth_hash.auto import keccak

from chain import fastrlp
from chain.qbft.seals import check_seal_format, public_key_to_address


class TxDecodeError(ValueError):
    """Bytes that are not a signed transaction."""


AccessList = tuple[tuple[bytes, tuple[bytes, ...]], ...]


@dataclass(frozen=True, slots=True)
class Authorization:
    chain_id: int
    address: bytes
    nonce: int
    y_parity: int
    r: int
    s: int


@dataclass(frozen=True, slots=True)
class Tx:
    raw: bytes
    type: int
    chain_id: int | None
    nonce: int
    gas_price: int | None
    max_priority_fee_per_gas: int | None
    max_fee_per_gas: int | None
    gas: int
    to: bytes | None
    value: int
    data: bytes
    access_list: AccessList | None
    v: int
    """Legacy: the signature's v (27/28 or EIP-155); typed: the y parity."""
    r: int
    s: int
    max_fee_per_blob_gas: int | None = None
    blob_versioned_hashes: tuple[bytes, ...] | None = None
    authorization_list: tuple[Authorization, ...] | None = None

    @property
    def hash(self) -> bytes:
        return bytes(keccak(self.raw))

    @property
    def y_parity(self) -> int:
        if self.type != 0:
            return self.v
        return (self.v - 27) % 2 if self.chain_id is None else (self.v - 35) % 2

    def effective_gas_price(self, base_fee: int | None) -> int:
        if self.gas_price is not None:
            return self.gas_price
        assert self.max_fee_per_gas is not None and self.max_priority_fee_per_gas is not None
        if base_fee is None:
            return self.max_fee_per_gas
        return min(self.max_fee_per_gas, base_fee + self.max_priority_fee_per_gas)

    def signing_hash(self) -> bytes:
        # The signed payload is the transaction's own RLP minus its last three items (the
        # signature), re-wrapped; EIP-155 legacy transactions append [chainId, 0, 0].
        payload = self.raw if self.type == 0 else self.raw[1:]
        first = payload[0]
        body = payload[1 if first < 0xF8 else 1 + first - 0xF7:]
        signature = len(fastrlp.encode(self.v)) + len(fastrlp.encode(self.r)) + len(fastrlp.encode(self.s))
        unsigned = body[:-signature]
        if self.type == 0:
            if self.chain_id is not None:
                unsigned += fastrlp.encode(self.chain_id) + b"\x80\x80"
            return bytes(keccak(fastrlp.encode_list_payload(unsigned)))
        return bytes(keccak(bytes([self.type]) + fastrlp.encode_list_payload(unsigned)))

    def public_key(self) -> bytes:
        """Recover the signer's 64-byte public key (about 60 µs with coincurve)."""
        signature = self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.y_parity])
        try:
            check_seal_format(signature)
            key = PublicKey.from_signature_and_message(signature, self.signing_hash(), hasher=None)
        except Exception as exc:  # coincurve raises a bare Exception for unrecoverable points
            raise TxDecodeError(f"transaction signature does not recover a sender: {exc}") from exc
        return bytes(key.format(compressed=False)[1:])

    def sender(self) -> bytes:
        return public_key_to_address(self.public_key())


def _int(item: object, name: str) -> int:
    if not isinstance(item, bytes):
        raise TxDecodeError(f"transaction field {name} is a list, expected an integer")
    if item[:1] == b"\x00":
        raise TxDecodeError(f"transaction field {name} has a leading zero byte")
    if len(item) > 32:
        raise TxDecodeError(f"transaction field {name} is longer than 32 bytes")
    return int.from_bytes(item, "big")


def _bytes(item: object, name: str, size: int | None = None) -> bytes:
    if not isinstance(item, bytes):
        raise TxDecodeError(f"transaction field {name} is a list, expected bytes")
    if size is not None and len(item) != size:
        raise TxDecodeError(f"transaction field {name} is {len(item)} bytes, expected {size}")
    return item


def _to(item: object) -> bytes | None:
    to = _bytes(item, "to")
    if not to:
        return None
    if len(to) != 20:
        raise TxDecodeError(f"transaction field to is {len(to)} bytes, expected 20 or empty")
    return to


def _list(item: object, name: str) -> list[object]:
    if not isinstance(item, list):
        raise TxDecodeError(f"transaction field {name} is not a list")
    return item


def _access_list(item: object) -> AccessList:
    out = []
    for entry in _list(item, "accessList"):
        pair = _list(entry, "accessList entry")
        if len(pair) != 2:
            raise TxDecodeError("access list entry must be [address, [storageKeys]]")
        keys = tuple(_bytes(k, "storageKey", 32) for k in _list(pair[1], "storageKeys"))
        out.append((_bytes(pair[0], "accessList address", 20), keys))
    return tuple(out)


def _authorizations(item: object) -> tuple[Authorization, ...]:
    out = []
    for entry in _list(item, "authorizationList"):
        a = _list(entry, "authorization")
        if len(a) != 6:
            raise TxDecodeError("authorization must be [chainId, address, nonce, yParity, r, s]")
        out.append(Authorization(_int(a[0], "chainId"), _bytes(a[1], "address", 20),
                                 _int(a[2], "nonce"), _int(a[3], "yParity"), _int(a[4], "r"),
                                 _int(a[5], "s")))
    return tuple(out)


# Field counts per typed transaction, signature included.
_TYPED_LENGTHS = {1: 11, 2: 12, 3: 14, 4: 13}


def decode(raw: bytes) -> Tx:
    """A transaction as ``eth_sendRawTransaction`` takes it and a block body carries it."""
    if not raw:
        raise TxDecodeError("empty transaction")
    kind = raw[0]
    if kind >= 0xC0:
        payload, tx_type = raw, 0
    elif kind in _TYPED_LENGTHS:
        payload, tx_type = raw[1:], kind
    elif kind <= 0x7F:
        raise TxDecodeError(f"transaction type {kind} is not supported (types 0 to 4 are)")
    else:
        raise TxDecodeError("transaction is neither an RLP list nor a typed envelope")
    try:
        f = fastrlp.decode(payload)
    except fastrlp.RLPError as exc:
        raise TxDecodeError(f"transaction is not valid RLP: {exc}") from exc
    if not isinstance(f, list):
        raise TxDecodeError("transaction RLP is a string, expected a list")
    if tx_type == 0:
        if len(f) != 9:
            raise TxDecodeError(f"legacy transaction has {len(f)} fields, expected 9")
        v = _int(f[6], "v")
        if v in (27, 28):
            chain_id = None
        elif v >= 35:
            chain_id = (v - 35) // 2
        else:
            raise TxDecodeError(f"legacy transaction v = {v} is neither 27/28 nor EIP-155")
        return Tx(raw, 0, chain_id, _int(f[0], "nonce"), _int(f[1], "gasPrice"), None, None,
                  _int(f[2], "gas"), _to(f[3]), _int(f[4], "value"), _bytes(f[5], "data"), None,
                  v, _int(f[7], "r"), _int(f[8], "s"))
    if len(f) != _TYPED_LENGTHS[tx_type]:
        raise TxDecodeError(
            f"type {tx_type} transaction has {len(f)} fields, expected {_TYPED_LENGTHS[tx_type]}"
            + (" (blob sidecars are not accepted)" if tx_type == 3 and len(f) == 4 else ""))
    y_parity = _int(f[-3], "yParity")
    if y_parity > 1:
        raise TxDecodeError(f"transaction yParity is {y_parity}, expected 0 or 1")
    r, s = _int(f[-2], "r"), _int(f[-1], "s")
    chain_id = _int(f[0], "chainId")
    if tx_type == 1:
        return Tx(raw, 1, chain_id, _int(f[1], "nonce"), _int(f[2], "gasPrice"), None, None,
                  _int(f[3], "gas"), _to(f[4]), _int(f[5], "value"), _bytes(f[6], "data"),
                  _access_list(f[7]), y_parity, r, s)
    to = _to(f[5])
    tx = Tx(raw, tx_type, chain_id, _int(f[1], "nonce"), None, _int(f[2], "maxPriorityFeePerGas"),
            _int(f[3], "maxFeePerGas"), _int(f[4], "gas"), to, _int(f[6], "value"),
            _bytes(f[7], "data"), _access_list(f[8]), y_parity, r, s)
    if tx_type == 2:
        return tx
    if to is None:
        raise TxDecodeError(f"type {tx_type} transactions cannot create contracts (to is empty)")
    if tx_type == 3:
        hashes = tuple(_bytes(h, "blobVersionedHash", 32) for h in _list(f[10], "blobVersionedHashes"))
        return replace(tx, max_fee_per_blob_gas=_int(f[9], "maxFeePerBlobGas"),
                       blob_versioned_hashes=hashes)
    return replace(tx, authorization_list=_authorizations(f[9]))
