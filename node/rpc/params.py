"""Positional JSON-RPC parameters, parsed strictly; every error names the parameter and why.

The kinds ("Invalid block param", "Invalid address params"...) are Besu's messages for -32602;
the detail in parentheses is ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.abc import CallRequest
from node.rpc.errors import invalid_params

TAGS = ("latest", "earliest", "pending", "safe", "finalized")
MAX_UINT256 = 2**256 - 1

INVALID = "Invalid params"
BLOCK = "Invalid block param"
BLOCK_NUMBER = "Invalid block number params"
BLOCK_HASH = "Invalid block hash params"
ADDRESS = "Invalid address params"
TX_HASH = "Invalid transaction hash params"
TX = "Invalid transaction params (missing or incorrect)"
CALL = "Invalid call params"
FILTER = "Invalid filter params"
STORAGE_KEYS = "Invalid storage keys params"
POSITION = "Invalid position params"
DATA = "Invalid data params"
BLOCK_COUNT = "Invalid block count params"
PERCENTILES = "Invalid reward percentiles params"
VOTE_TYPE = "Invalid vote type params"
SUBSCRIPTION = "Invalid subscription params"
TIMESTAMP = "Invalid timestamp parameter"
RETURN_COMPLETE = "Invalid return complete transaction params"
ID = "Invalid ID params"


class ParamError(ValueError):
    """Why one value is not of its expected form; the caller adds where and which kind."""


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block parameter: a tag, a number, or (EIP-1898) a hash."""

    tag: str | None = None
    number: int | None = None
    hash: bytes | None = None
    require_canonical: bool = False


LATEST = BlockRef(tag="latest")


def quantity(value: Any, limit: int = MAX_UINT256) -> int:
    if isinstance(value, bool):
        raise ParamError(f"{value!r} is a boolean, expected a 0x-prefixed hex quantity")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        if not value.startswith(("0x", "0X")) or len(value) == 2:
            raise ParamError(f"{_show(value)} is not a 0x-prefixed hex quantity")
        try:
            n = int(value[2:], 16)
        except ValueError:
            raise ParamError(f"{_show(value)} is not valid hex") from None
    else:
        raise ParamError(f"{_kind(value)} where a 0x-prefixed hex quantity belongs")
    if not 0 <= n <= limit:
        raise ParamError(f"{n} is outside 0..{limit}")
    return n


def data(value: Any, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise ParamError(f"{_kind(value)} where 0x-prefixed hex data belongs")
    if not value.startswith(("0x", "0X")):
        raise ParamError(f"{_show(value)} lacks the 0x prefix")
    if len(value) % 2:
        raise ParamError(f"{_show(value)} has an odd number of hex digits")
    try:
        out = bytes.fromhex(value[2:])
    except ValueError:
        raise ParamError(f"{_show(value)} is not valid hex") from None
    if size is not None and len(out) != size:
        raise ParamError(f"{_show(value)} is {len(out)} bytes, expected {size}")
    return out


def block_ref(value: Any, *, allow_hash: bool) -> BlockRef:
    if isinstance(value, str):
        low = value.lower()
        if low in TAGS:
            return BlockRef(tag=low)
        if allow_hash and len(value) == 66 and low.startswith("0x"):
            return BlockRef(hash=data(value, 32))
        if low.startswith("0x"):
            return BlockRef(number=quantity(value, 2**63 - 1))
        if low.isdigit():
            return BlockRef(number=int(low))
        raise ParamError(f"{_show(value)} is not a block number, tag ({', '.join(TAGS)})"
                         + (" or block hash" if allow_hash else ""))
    if isinstance(value, int) and not isinstance(value, bool):
        return BlockRef(number=quantity(value, 2**63 - 1))
    if isinstance(value, dict) and allow_hash:
        if "blockHash" in value and "blockNumber" in value:
            raise ParamError("give blockHash or blockNumber, not both (EIP-1898)")
        if "blockHash" in value:
            canonical = value.get("requireCanonical", False)
            if not isinstance(canonical, bool):
                raise ParamError("requireCanonical must be true or false")
            return BlockRef(hash=data(value["blockHash"], 32), require_canonical=canonical)
        if "blockNumber" in value:
            return block_ref(value["blockNumber"], allow_hash=False)
        raise ParamError("an EIP-1898 block object needs blockHash or blockNumber")
    raise ParamError(f"{_kind(value)} where a block number, tag"
                     + (" or hash" if allow_hash else "") + " belongs")


def _plain_block(value: Any) -> BlockRef:
    return block_ref(value, allow_hash=False)


def _show(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


class Params:
    """The ``params`` array of one request, read by position."""

    __slots__ = ("values",)

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def has(self, i: int) -> bool:
        return i < len(self.values) and self.values[i] is not None

    def raw(self, i: int, kind: str) -> Any:
        if not self.has(i):
            raise invalid_params(kind, f"params[{i}] is missing")
        return self.values[i]

    def _parse(self, i: int, kind: str, parse: Any, *args: Any, **kwargs: Any) -> Any:
        value = self.raw(i, kind)
        try:
            return parse(value, *args, **kwargs)
        except ParamError as exc:
            raise invalid_params(kind, f"params[{i}]: {exc}") from None

    def at_most(self, n: int) -> None:
        if len(self.values) > n:
            raise invalid_params("Invalid number of params",
                                 f"{len(self.values)} given, at most {n} accepted")

    def quantity(self, i: int, kind: str = INVALID, limit: int = MAX_UINT256) -> int:
        return int(self._parse(i, kind, quantity, limit))

    def data(self, i: int, kind: str = DATA, size: int | None = None) -> bytes:
        return bytes(self._parse(i, kind, data, size))

    def address(self, i: int, kind: str = ADDRESS) -> bytes:
        return self.data(i, kind, 20)

    def hash(self, i: int, kind: str) -> bytes:
        return self.data(i, kind, 32)

    def boolean(self, i: int, kind: str, default: bool | None = None) -> bool:
        if default is not None and not self.has(i):
            return default
        value = self.raw(i, kind)
        if not isinstance(value, bool):
            raise invalid_params(kind, f"params[{i}]: {_kind(value)} where true or false belongs")
        return value

    def block(self, i: int, kind: str = BLOCK, *, allow_hash: bool = False,
              default: BlockRef | None = LATEST) -> BlockRef:
        if default is not None and not self.has(i):
            return default
        ref: BlockRef = self._parse(i, kind, block_ref, allow_hash=allow_hash)
        return ref

    def call(self, i: int) -> CallRequest:
        obj = self.raw(i, CALL)
        if not isinstance(obj, dict):
            raise invalid_params(CALL, f"params[{i}]: {_kind(obj)} where a call object belongs")
        try:
            return call_request(obj)
        except ParamError as exc:
            raise invalid_params(CALL, f"params[{i}].{exc}") from None


def _field(obj: dict[str, Any], name: str, parse: Any, *args: Any) -> Any:
    value = obj.get(name)
    if value is None:
        return None
    try:
        return parse(value, *args)
    except ParamError as exc:
        raise ParamError(f"{name}: {exc}") from None


def call_request(obj: dict[str, Any]) -> CallRequest:
    payload = _field(obj, "input", data)
    legacy_data = _field(obj, "data", data)
    if payload is not None and legacy_data is not None and payload != legacy_data:
        raise ParamError("input: input and data are both set and differ; send one of them")
    access: list[tuple[bytes, tuple[int, ...]]] = []
    for n, entry in enumerate(obj.get("accessList") or []):
        if not isinstance(entry, dict):
            raise ParamError(f"accessList[{n}]: expected an object with address and storageKeys")
        address = _field(entry, "address", data, 20)
        if address is None:
            raise ParamError(f"accessList[{n}].address is missing")
        keys = tuple(int.from_bytes(_field({"storageKey": k}, "storageKey", data, 32), "big")
                     for k in entry.get("storageKeys") or [])
        access.append((address, keys))
    return CallRequest(
        sender=_field(obj, "from", data, 20),
        to=_field(obj, "to", data, 20),
        gas=_field(obj, "gas", quantity, 2**64 - 1),
        gas_price=_field(obj, "gasPrice", quantity),
        max_fee_per_gas=_field(obj, "maxFeePerGas", quantity),
        max_priority_fee_per_gas=_field(obj, "maxPriorityFeePerGas", quantity),
        value=_field(obj, "value", quantity) or 0,
        data=payload if payload is not None else legacy_data or b"",
        access_list=tuple(access),
    )


@dataclass(frozen=True, slots=True)
class FilterSpec:
    from_block: BlockRef
    to_block: BlockRef
    block_hash: bytes | None
    addresses: tuple[bytes, ...]
    topics: tuple[tuple[bytes, ...] | None, ...]


def log_filter(obj: Any) -> FilterSpec:
    """An eth_getLogs / logs-subscription filter object."""
    if not isinstance(obj, dict):
        raise ParamError(f"{_kind(obj)} where a filter object belongs")
    block_hash = _field(obj, "blockHash", data, 32)
    if block_hash is not None and (obj.get("fromBlock") is not None or obj.get("toBlock") is not None):
        raise ParamError("blockHash excludes fromBlock and toBlock; send one or the other")
    start = _field(obj, "fromBlock", _plain_block)
    end = _field(obj, "toBlock", _plain_block)
    raw_address = obj.get("address")
    addresses: tuple[bytes, ...]
    if raw_address is None:
        addresses = ()
    elif isinstance(raw_address, list):
        addresses = tuple(_field({"address": a}, "address", data, 20) for a in raw_address)
    else:
        addresses = (_field(obj, "address", data, 20),)
    raw_topics = obj.get("topics") or []
    if not isinstance(raw_topics, list):
        raise ParamError("topics: expected an array")
    if len(raw_topics) > 4:
        raise ParamError(f"topics: {len(raw_topics)} positions given, a log has at most 4")
    topics: list[tuple[bytes, ...] | None] = []
    for n, t in enumerate(raw_topics):
        name = f"topics[{n}]"
        if t is None:
            topics.append(None)
        elif isinstance(t, list):
            alternatives = tuple(_field({name: x}, name, data, 32) for x in t if x is not None)
            topics.append(alternatives if alternatives and len(alternatives) == len(t) else None)
        else:
            topics.append((_field({name: t}, name, data, 32),))
    return FilterSpec(start or LATEST, end or LATEST, block_hash, addresses, tuple(topics))
