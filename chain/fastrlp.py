"""A small, strict RLP codec for the hot paths (headers, extraData, blocks, messages).

pyrlp infers a sedes for every item, which dominated header verification (more than the
signature recoveries). This codec handles only what the protocol formats use — byte strings,
non-negative integers and lists — and decodes canonically: a single byte below 0x80 must stand
alone, the long forms only for 56 bytes or more, no leading zeros in lengths, and nothing after
the top-level item. ``tests/chain/test_fastrlp.py`` holds it to pyrlp's answers.
"""

from __future__ import annotations

from typing import Any

Item = bytes | list["Item"]


class RLPError(ValueError):
    """Bytes that are not canonical RLP."""


def _prefix(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes((offset + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


def encode(item: Any) -> bytes:
    if isinstance(item, bytes | bytearray | memoryview):
        b = bytes(item)
        if len(b) == 1 and b[0] < 0x80:
            return b
        return _prefix(len(b), 0x80) + b
    if isinstance(item, bool):
        raise TypeError("RLP has no booleans; encode 0 or 1")
    if isinstance(item, int):
        if item < 0:
            raise ValueError("RLP cannot encode a negative integer")
        if item == 0:
            return b"\x80"
        if item < 0x80:
            return bytes((item,))
        b = item.to_bytes((item.bit_length() + 7) // 8, "big")
        return _prefix(len(b), 0x80) + b
    if isinstance(item, list | tuple):
        payload = b"".join([encode(x) for x in item])
        return _prefix(len(payload), 0xC0) + payload
    raise TypeError(f"cannot RLP-encode {type(item).__name__}")


def encode_list_payload(payload: bytes) -> bytes:
    """An RLP list around items that are already encoded and concatenated."""
    return _prefix(len(payload), 0xC0) + payload


def _item(data: bytes, pos: int, end: int) -> tuple[Item, int]:
    if pos >= end:
        raise RLPError("RLP input ends before an item")
    first = data[pos]
    if first < 0x80:
        return data[pos : pos + 1], pos + 1
    if first < 0xB8:
        length = first - 0x80
        start = pos + 1
        if start + length > end:
            raise RLPError("RLP string runs past the end of its input")
        if length == 1 and data[start] < 0x80:
            raise RLPError("non-canonical RLP: a single byte below 0x80 must not be prefixed")
        return data[start : start + length], start + length
    if first < 0xC0:
        start, length = _long_length(data, pos, first - 0xB7, end)
        return data[start : start + length], start + length
    if first < 0xF8:
        start, length = pos + 1, first - 0xC0
    else:
        start, length = _long_length(data, pos, first - 0xF7, end)
    if start + length > end:
        raise RLPError("RLP list runs past the end of its input")
    items: list[Item] = []
    cursor, stop = start, start + length
    while cursor < stop:
        value, cursor = _item(data, cursor, stop)
        items.append(value)
    return items, stop


def _long_length(data: bytes, pos: int, size: int, end: int) -> tuple[int, int]:
    start = pos + 1 + size
    if start > end:
        raise RLPError("RLP length prefix runs past the end of its input")
    if data[pos + 1] == 0:
        raise RLPError("non-canonical RLP: length with a leading zero byte")
    length = int.from_bytes(data[pos + 1 : start], "big")
    if length < 56:
        raise RLPError("non-canonical RLP: long form used for fewer than 56 bytes")
    if start + length > end:
        raise RLPError("RLP item runs past the end of its input")
    return start, length


def decode(data: bytes) -> Item:
    """Decode exactly one canonical RLP item; RLPError on anything else."""
    data = bytes(data)
    value, pos = _item(data, 0, len(data))
    if pos != len(data):
        raise RLPError(f"{len(data) - pos} bytes follow the RLP item")
    return value


def to_int(b: bytes, what: str = "integer") -> int:
    """A canonical RLP scalar (no leading zero bytes)."""
    if b[:1] == b"\x00":
        raise RLPError(f"{what} has a leading zero byte")
    return int.from_bytes(b, "big")
