"""Ethereum block headers: the RLP layout Besu writes (``BlockHeader.writeTo``) and the JSON-RPC form.

Optional tail fields (baseFeePerGas from London, withdrawalsRoot from Shanghai, blob gas and the
parent beacon root from Cancun, requestsHash from Prague) are written only when present, each
only if the one before it is.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from eth_hash.auto import keccak

from chain import fastrlp

EMPTY_OMMERS_HASH = bytes.fromhex("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347")
EMPTY_TRIE_ROOT = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
BFT_MIX_HASH = b"ctical byzantine fault tolerance"  # BftHelpers.EXPECTED_MIX_HASH
ZERO_ADDRESS = bytes(20)
ZERO_HASH = bytes(32)


class HeaderError(ValueError):
    """A header that cannot be decoded or does not follow the QBFT header rules."""


@dataclass(frozen=True, slots=True)
class BlockHeader:
    parent_hash: bytes
    ommers_hash: bytes
    coinbase: bytes
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    logs_bloom: bytes
    difficulty: int
    number: int
    gas_limit: int
    gas_used: int
    timestamp: int
    extra_data: bytes
    mix_hash: bytes
    nonce: bytes
    base_fee: int | None = None
    withdrawals_root: bytes | None = None
    blob_gas_used: int | None = None
    excess_blob_gas: int | None = None
    parent_beacon_block_root: bytes | None = None
    requests_hash: bytes | None = None

    def with_extra_data(self, extra_data: bytes) -> BlockHeader:
        return replace(self, extra_data=extra_data)

    def rlp_fields(self) -> list[Any]:
        items: list[Any] = [
            self.parent_hash,
            self.ommers_hash,
            self.coinbase,
            self.state_root,
            self.transactions_root,
            self.receipts_root,
            self.logs_bloom,
            self.difficulty,
            self.number,
            self.gas_limit,
            self.gas_used,
            self.timestamp,
            self.extra_data,
            self.mix_hash,
            self.nonce,
        ]
        for value in _tail(self):
            if value is None:
                break
            items.append(value)
        return items

    def encode(self) -> bytes:
        return fastrlp.encode(self.rlp_fields())

    def raw_hash(self) -> bytes:
        """keccak256 of the header exactly as it stands (the genesis block hash rule)."""
        return bytes(keccak(self.encode()))

    @classmethod
    def decode(cls, data: bytes) -> BlockHeader:
        try:
            items = fastrlp.decode(data)
        except fastrlp.RLPError as exc:
            raise HeaderError(f"header is not valid RLP: {exc}") from exc
        return cls.from_rlp_fields(items)

    @classmethod
    def from_rlp_fields(cls, items: object) -> BlockHeader:
        if not isinstance(items, list) or not 15 <= len(items) <= 21:
            raise HeaderError("header RLP must be a list of 15 to 21 fields")
        if not all(isinstance(i, bytes) for i in items):
            raise HeaderError("header RLP fields must all be byte strings")
        it: list[bytes] = items

        def num(b: bytes, name: str) -> int:
            if b[:1] == b"\x00":
                raise HeaderError(f"header {name} has a leading zero byte")
            return int.from_bytes(b, "big")

        def fixed(b: bytes, n: int, name: str) -> bytes:
            if len(b) != n:
                raise HeaderError(f"header {name} is {len(b)} bytes, expected {n}")
            return b

        tail: list[Any] = [None] * 6
        kinds = [("baseFeePerGas", 0), ("withdrawalsRoot", 32), ("blobGasUsed", 0),
                 ("excessBlobGas", 0), ("parentBeaconBlockRoot", 32), ("requestsHash", 32)]
        for i, raw in enumerate(it[15:]):
            name, size = kinds[i]
            tail[i] = num(raw, name) if size == 0 else fixed(raw, size, name)
        return cls(
            parent_hash=fixed(it[0], 32, "parentHash"),
            ommers_hash=fixed(it[1], 32, "sha3Uncles"),
            coinbase=fixed(it[2], 20, "miner"),
            state_root=fixed(it[3], 32, "stateRoot"),
            transactions_root=fixed(it[4], 32, "transactionsRoot"),
            receipts_root=fixed(it[5], 32, "receiptsRoot"),
            logs_bloom=fixed(it[6], 256, "logsBloom"),
            difficulty=num(it[7], "difficulty"),
            number=num(it[8], "number"),
            gas_limit=num(it[9], "gasLimit"),
            gas_used=num(it[10], "gasUsed"),
            timestamp=num(it[11], "timestamp"),
            extra_data=it[12],
            mix_hash=fixed(it[13], 32, "mixHash"),
            nonce=fixed(it[14], 8, "nonce"),
            base_fee=tail[0],
            withdrawals_root=tail[1],
            blob_gas_used=tail[2],
            excess_blob_gas=tail[3],
            parent_beacon_block_root=tail[4],
            requests_hash=tail[5],
        )

    @classmethod
    def from_rpc(cls, block: dict[str, Any]) -> BlockHeader:
        """Header of a block as ``eth_getBlockByNumber`` returns it (Besu, geth, our node)."""

        def need(key: str) -> str:
            if key not in block or block[key] is None:
                raise HeaderError(f"block JSON lacks the field {key!r}")
            value = block[key]
            if not isinstance(value, str) or not value.startswith("0x"):
                raise HeaderError(f"block JSON field {key!r} is not a 0x-prefixed hex string")
            return value

        def data(key: str, size: int | None = None) -> bytes:
            raw = need(key)[2:]
            try:
                out = bytes.fromhex(raw)
            except ValueError as exc:
                raise HeaderError(f"block JSON field {key!r} is not valid hex") from exc
            if size is not None and len(out) != size:
                raise HeaderError(f"block JSON field {key!r} is {len(out)} bytes, expected {size}")
            return out

        def qty(key: str) -> int:
            try:
                return int(need(key), 16)
            except ValueError as exc:
                raise HeaderError(f"block JSON field {key!r} is not a hex quantity") from exc

        def opt_qty(key: str) -> int | None:
            return qty(key) if block.get(key) is not None else None

        def opt_data(key: str) -> bytes | None:
            return data(key, 32) if block.get(key) is not None else None

        nonce = data("nonce")
        return cls(
            parent_hash=data("parentHash", 32),
            ommers_hash=data("sha3Uncles", 32),
            coinbase=data("miner", 20),
            state_root=data("stateRoot", 32),
            transactions_root=data("transactionsRoot", 32),
            receipts_root=data("receiptsRoot", 32),
            logs_bloom=data("logsBloom", 256),
            difficulty=qty("difficulty"),
            number=qty("number"),
            gas_limit=qty("gasLimit"),
            gas_used=qty("gasUsed"),
            timestamp=qty("timestamp"),
            extra_data=data("extraData"),
            mix_hash=data("mixHash", 32),
            nonce=nonce.rjust(8, b"\x00"),
            base_fee=opt_qty("baseFeePerGas"),
            withdrawals_root=opt_data("withdrawalsRoot"),
            blob_gas_used=opt_qty("blobGasUsed"),
            excess_blob_gas=opt_qty("excessBlobGas"),
            parent_beacon_block_root=opt_data("parentBeaconBlockRoot"),
            requests_hash=opt_data("requestsHash"),
        )

    def to_rpc(self) -> dict[str, str]:
        """Header fields in Besu's ``BlockResult`` names (without hash, size and the body)."""
        out = {
            "parentHash": _h(self.parent_hash),
            "sha3Uncles": _h(self.ommers_hash),
            "miner": _h(self.coinbase),
            "stateRoot": _h(self.state_root),
            "transactionsRoot": _h(self.transactions_root),
            "receiptsRoot": _h(self.receipts_root),
            "logsBloom": _h(self.logs_bloom),
            "difficulty": hex(self.difficulty),
            "number": hex(self.number),
            "gasLimit": hex(self.gas_limit),
            "gasUsed": hex(self.gas_used),
            "timestamp": hex(self.timestamp),
            "extraData": _h(self.extra_data),
            "mixHash": _h(self.mix_hash),
            "nonce": _h(self.nonce),
        }
        names = ["baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas",
                 "parentBeaconBlockRoot", "requestsHash"]
        for name, value in zip(names, _tail(self), strict=True):
            if value is None:
                continue
            out[name] = hex(value) if isinstance(value, int) else _h(value)
        return out


def _tail(h: BlockHeader) -> tuple[Any, ...]:
    return (h.base_fee, h.withdrawals_root, h.blob_gas_used, h.excess_blob_gas,
            h.parent_beacon_block_root, h.requests_hash)


def _h(b: bytes) -> str:
    return "0x" + b.hex()


HEADER_FIELDS = tuple(f.name for f in fields(BlockHeader))
