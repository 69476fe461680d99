"""Receipts and log blooms in their consensus encoding (what receiptsRoot and logsBloom hash)."""

from __future__ import annotations

from collections.abc import Iterable

from eth_hash.auto import keccak

from chain.execution.mpt import rlp_bytes, rlp_list

LogEntry = tuple[bytes, tuple[bytes, ...], bytes]
"""(address, topics, data) of one log."""


def bloom_add(bloom: int, value: bytes) -> int:
    """Set the three bits of ``value`` (an address or topic) in a 2048-bit bloom."""
    h = keccak(value)
    for i in (0, 2, 4):
        bloom |= 1 << (((h[i] << 8) | h[i + 1]) & 2047)
    return bloom


def logs_bloom(logs: Iterable[LogEntry]) -> int:
    bloom = 0
    for address, topics, _data in logs:
        bloom = bloom_add(bloom, address)
        for topic in topics:
            bloom = bloom_add(bloom, topic)
    return bloom


def bloom_bytes(bloom: int) -> bytes:
    return bloom.to_bytes(256, "big")


def bloom_matches(bloom: bytes, value: bytes) -> bool:
    """Whether ``value`` may be among the addresses and topics a bloom summarises."""
    b = int.from_bytes(bloom, "big")
    return bloom_add(0, value) & b == bloom_add(0, value)


def encode_log(entry: LogEntry) -> bytes:
    address, topics, data = entry
    return rlp_list(rlp_bytes(address) + rlp_list(b"".join(rlp_bytes(t) for t in topics))
                    + rlp_bytes(data))


def encode_receipt(tx_type: int, status: int, cumulative_gas: int, bloom: bytes,
                   logs: Iterable[LogEntry]) -> bytes:
    """``rlp([status, cumulativeGasUsed, logsBloom, logs])``, prefixed by the type byte for a
    typed transaction (EIP-2718)."""
    gas = cumulative_gas.to_bytes((cumulative_gas.bit_length() + 7) // 8, "big") if cumulative_gas else b""
    body = rlp_list(rlp_bytes(b"\x01" if status else b"") + rlp_bytes(gas) + rlp_bytes(bloom)
                    + rlp_list(b"".join(encode_log(e) for e in logs)))
    return body if tx_type == 0 else bytes((tx_type,)) + body
