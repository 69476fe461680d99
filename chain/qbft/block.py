"""A whole block as it travels in a QBFT PROPOSAL and in ``eth`` block bodies.

RLP ``[header, transactions, ommers, withdrawals?]``. Each transaction is kept in its network
encoding, exactly the bytes ``eth_sendRawTransaction`` takes: a legacy transaction is an RLP
list and sits in the block as that list; a typed (EIP-2718) transaction is ``type || payload``
and sits in the block as an RLP byte string. QBFT blocks have no ommers; from Shanghai on the
withdrawals list is present and empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain import fastrlp
from chain.qbft.hashing import block_hash
from chain.qbft.header import BlockHeader, HeaderError


def _length_prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(size)]) + size


def encode_list_raw(encoded_items: list[bytes]) -> bytes:
    """An RLP list from items that are already RLP-encoded."""
    payload = b"".join(encoded_items)
    return _length_prefix(len(payload), 0xC0) + payload


def tx_item(raw_tx: bytes) -> bytes:
    """How a transaction sits inside a block body: legacy as its list, typed as a string."""
    if not raw_tx:
        raise ValueError("empty transaction")
    return raw_tx if raw_tx[0] >= 0xC0 else fastrlp.encode(raw_tx)


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    transactions: tuple[bytes, ...] = ()
    withdrawals: tuple[bytes, ...] | None = None

    @property
    def hash(self) -> bytes:
        return block_hash(self.header)

    def encode(self) -> bytes:
        items = [
            self.header.encode(),
            encode_list_raw([tx_item(t) for t in self.transactions]),
            encode_list_raw([]),
        ]
        if self.withdrawals is not None:
            items.append(encode_list_raw(list(self.withdrawals)))
        return encode_list_raw(items)

    @classmethod
    def decode(cls, data: bytes) -> Block:
        try:
            items = fastrlp.decode(data)
        except fastrlp.RLPError as exc:
            raise HeaderError(f"block is not valid RLP: {exc}") from exc
        if not isinstance(items, list) or len(items) not in (3, 4):
            raise HeaderError("block RLP must be [header, transactions, ommers(, withdrawals)]")
        header = BlockHeader.from_rlp_fields(items[0])
        if not isinstance(items[1], list) or not isinstance(items[2], list):
            raise HeaderError("block transactions and ommers must be lists")
        if items[2]:
            raise HeaderError("QBFT blocks carry no ommers")
        txs = tuple(fastrlp.encode(t) if isinstance(t, list) else bytes(t) for t in items[1])
        withdrawals: tuple[bytes, ...] | None = None
        if len(items) == 4:
            if not isinstance(items[3], list):
                raise HeaderError("block withdrawals must be a list")
            withdrawals = tuple(fastrlp.encode(w) for w in items[3])
        return cls(header, txs, withdrawals)
