"""Merkle-Patricia proofs of receipts, and receipts encoded as Besu and geth hash them.

- ``encode_receipt`` turns one JSON-RPC receipt (``eth_getBlockReceipts``,
  ``eth_getTransactionReceipt``) into the bytes the receipts trie holds: the RLP list
  ``[status, cumulativeGasUsed, logsBloom, logs]`` for a legacy transaction, ``type || that
  list`` for a typed (EIP-2718) one; a pre-Byzantium receipt carries its state root instead
  of the status.
- ``trie_root`` is the root of the trie mapping ``rlp(index)`` to each item (receipts or
  transactions, in block order), as the header's ``receiptsRoot`` commits to it.
- ``prove`` gives the nodes on the path to one index, ``verify_proof`` checks such a list of
  nodes against a root and returns the value it proves. A proof is exactly the hashed nodes on
  the path, root first, and nothing else: an extra, missing or altered node is refused.

Pure: no I/O, no node, only keccak and RLP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak

from chain import fastrlp

EMPTY_TRIE_ROOT = bytes(keccak(b"\x80"))


class ProofError(ValueError):
    """A proof or a receipt that does not establish what it is offered for."""


# --- receipts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptLog:
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class Receipt:
    """The consensus fields of a receipt: what its trie leaf is made of."""

    tx_type: int
    status: int | None
    """1 success, 0 failure; None for a pre-Byzantium receipt, which has ``state_root``."""
    cumulative_gas_used: int
    logs_bloom: bytes
    logs: tuple[ReceiptLog, ...]
    state_root: bytes | None = None

    def encode(self) -> bytes:
        first: Any = self.state_root if self.status is None else self.status
        body = fastrlp.encode([
            first, self.cumulative_gas_used, self.logs_bloom,
            [[log.address, list(log.topics), log.data] for log in self.logs],
        ])
        return body if self.tx_type == 0 else bytes([self.tx_type]) + body

    @classmethod
    def decode(cls, raw: bytes) -> Receipt:
        if not raw:
            raise ProofError("receipt is empty")
        tx_type = 0
        if raw[0] < 0x80:
            tx_type, raw = raw[0], raw[1:]
        try:
            items = fastrlp.decode(raw)
        except fastrlp.RLPError as exc:
            raise ProofError(f"receipt is not valid RLP: {exc}") from exc
        if not isinstance(items, list) or len(items) != 4:
            raise ProofError("receipt RLP must be [status, cumulativeGasUsed, logsBloom, logs]")
        first, gas, bloom, logs = items
        if not isinstance(first, bytes) or not isinstance(gas, bytes) or not isinstance(bloom, bytes):
            raise ProofError("receipt status, gas and bloom must be byte strings")
        if len(bloom) != 256:
            raise ProofError(f"receipt logsBloom is {len(bloom)} bytes, expected 256")
        if not isinstance(logs, list):
            raise ProofError("receipt logs must be a list")
        out: list[ReceiptLog] = []
        for i, log in enumerate(logs):
            if (not isinstance(log, list) or len(log) != 3 or not isinstance(log[0], bytes)
                    or len(log[0]) != 20 or not isinstance(log[1], list)
                    or not isinstance(log[2], bytes)):
                raise ProofError(f"receipt log {i} is not [address, topics, data]")
            topics = log[1]
            if not all(isinstance(t, bytes) and len(t) == 32 for t in topics):
                raise ProofError(f"receipt log {i} has a topic that is not 32 bytes")
            out.append(ReceiptLog(log[0], tuple(t for t in topics if isinstance(t, bytes)), log[2]))
        try:
            cumulative = fastrlp.to_int(gas, "cumulativeGasUsed")
            if len(first) == 32:
                return cls(tx_type, None, cumulative, bloom, tuple(out), state_root=first)
            status = fastrlp.to_int(first, "status")
        except fastrlp.RLPError as exc:
            raise ProofError(f"receipt: {exc}") from exc
        if status not in (0, 1):
            raise ProofError(f"receipt status is {status}, expected 0 or 1")
        return cls(tx_type, status, cumulative, bloom, tuple(out))

    @classmethod
    def from_rpc(cls, receipt: Mapping[str, Any]) -> Receipt:
        """A receipt as JSON-RPC returns it; ProofError naming the field that is wrong."""

        def need(key: str) -> str:
            value = receipt.get(key)
            if not isinstance(value, str) or not value.startswith("0x"):
                raise ProofError(f"receipt field {key!r} is missing or not a 0x hex string")
            return value

        def data(value: object, what: str, size: int | None = None) -> bytes:
            if not isinstance(value, str) or not value.startswith("0x"):
                raise ProofError(f"receipt {what} is not a 0x hex string")
            try:
                out = bytes.fromhex(value[2:])
            except ValueError:
                raise ProofError(f"receipt {what} is not valid hex") from None
            if size is not None and len(out) != size:
                raise ProofError(f"receipt {what} is {len(out)} bytes, expected {size}")
            return out

        def qty(key: str) -> int:
            try:
                return int(need(key), 16)
            except ValueError:
                raise ProofError(f"receipt field {key!r} is not a hex quantity") from None

        logs_json = receipt.get("logs")
        if not isinstance(logs_json, list):
            raise ProofError("receipt has no 'logs' list")
        logs: list[ReceiptLog] = []
        for i, log in enumerate(logs_json):
            if not isinstance(log, Mapping) or not isinstance(log.get("topics"), list):
                raise ProofError(f"receipt log {i} is not an object with a topics list")
            logs.append(ReceiptLog(
                data(log.get("address"), f"log {i} address", 20),
                tuple(data(t, f"log {i} topic", 32) for t in log["topics"]),
                data(log.get("data", "0x"), f"log {i} data"),
            ))
        tx_type = qty("type") if receipt.get("type") is not None else 0
        if receipt.get("status") is not None:
            status: int | None = qty("status")
            if status not in (0, 1):
                raise ProofError(f"receipt status is {status}, expected 0x0 or 0x1")
            root = None
        else:
            status, root = None, data(receipt.get("root"), "root", 32)
        return cls(tx_type, status, qty("cumulativeGasUsed"),
                   data(receipt.get("logsBloom"), "logsBloom", 256), tuple(logs), root)


def encode_receipt(receipt: Mapping[str, Any]) -> bytes:
    """The receipts-trie value of one JSON-RPC receipt."""
    return Receipt.from_rpc(receipt).encode()


def index_key(index: int) -> bytes:
    """The trie key of the item at ``index`` in a block: ``rlp(index)``."""
    return fastrlp.encode(index)


# --- the trie ------------------------------------------------------------------------------


def _nibbles(key: bytes) -> tuple[int, ...]:
    out: list[int] = []
    for b in key:
        out.append(b >> 4)
        out.append(b & 0x0F)
    return tuple(out)


def _compact(nibbles: Sequence[int], leaf: bool) -> bytes:
    """Hex-prefix encoding of a path (Yellow Paper appendix C)."""
    flag = 2 if leaf else 0
    if len(nibbles) % 2:
        head = [(flag + 1) << 4 | nibbles[0]]
        rest = nibbles[1:]
    else:
        head, rest = [flag << 4], nibbles
    return bytes(head + [rest[i] << 4 | rest[i + 1] for i in range(0, len(rest), 2)])


def _uncompact(path: bytes) -> tuple[tuple[int, ...], bool]:
    if not path:
        raise ProofError("trie node has an empty path")
    flag = path[0] >> 4
    if flag > 3:
        raise ProofError(f"trie node path has flag {flag}, expected 0 to 3")
    nibbles = _nibbles(path)
    if flag & 1:
        return nibbles[1:], bool(flag & 2)
    if path[0] & 0x0F:
        raise ProofError("trie node path of even length has a non-zero pad nibble")
    return nibbles[2:], bool(flag & 2)


Node = Any
"""A decoded trie node: a list (leaf/extension of 2 items, branch of 17)."""


def _ref(node: Node) -> Any:
    """How a parent refers to ``node``: the node itself if its RLP is under 32 bytes."""
    encoded = fastrlp.encode(node)
    return node if len(encoded) < 32 else bytes(keccak(encoded))


def _build(items: Sequence[tuple[tuple[int, ...], bytes]], depth: int) -> Node:
    if len(items) == 1:
        path, value = items[0]
        return [_compact(path[depth:], True), value]
    # The longest prefix every key shares from this depth on becomes an extension.
    first, last = items[0][0], items[-1][0]
    common = 0
    limit = min(len(first), len(last)) - depth
    while common < limit and first[depth + common] == last[depth + common]:
        common += 1
    if common:
        return [_compact(first[depth:depth + common], False),
                _ref(_build(items, depth + common))]
    branch: list[Any] = [b""] * 17
    start = 0
    if len(items[0][0]) == depth:
        branch[16] = items[0][1]
        start = 1
    i = start
    while i < len(items):
        nib = items[i][0][depth]
        j = i
        while j < len(items) and items[j][0][depth] == nib:
            j += 1
        branch[nib] = _ref(_build(items[i:j], depth + 1))
        i = j
    return branch


def _sorted_items(items: Mapping[bytes, bytes]) -> list[tuple[tuple[int, ...], bytes]]:
    if any(not v for v in items.values()):
        raise ValueError("trie values must not be empty")
    return sorted((_nibbles(k), v) for k, v in items.items())


def trie_root_of(items: Mapping[bytes, bytes]) -> bytes:
    """Root of the trie holding ``items`` (key -> value)."""
    if not items:
        return EMPTY_TRIE_ROOT
    return bytes(keccak(fastrlp.encode(_build(_sorted_items(items), 0))))


def trie_root(values: Sequence[bytes]) -> bytes:
    """Root of the trie mapping ``rlp(i)`` to ``values[i]``: a block's receipts or txs root."""
    return trie_root_of({index_key(i): v for i, v in enumerate(values)})


def prove(values: Sequence[bytes], index: int) -> list[bytes]:
    """The proof of ``values[index]`` under ``trie_root(values)``: hashed nodes, root first."""
    if not 0 <= index < len(values):
        raise ValueError(f"index {index} is outside the {len(values)} items")
    key = _nibbles(index_key(index))
    node = _build(_sorted_items({index_key(i): v for i, v in enumerate(values)}), 0)
    proof = [fastrlp.encode(node)]
    depth = 0
    while True:
        if len(node) == 17:
            if depth == len(key):
                break
            child = node[key[depth]]
            depth += 1
        else:
            path, is_leaf = _uncompact(node[0])
            if is_leaf:
                break
            depth += len(path)
            child = node[1]
        if isinstance(child, bytes):
            # A hash reference: the child node travels in the proof; rebuild it to continue.
            node = _find(values, child, key[:depth])
            proof.append(fastrlp.encode(node))
        else:
            node = child
    return proof


def _find(values: Sequence[bytes], digest: bytes, prefix: tuple[int, ...]) -> Node:
    """The subtree node under ``prefix`` whose hash is ``digest``."""
    items = [(k, v) for k, v in _sorted_items({index_key(i): v for i, v in enumerate(values)})
             if k[:len(prefix)] == prefix]
    node = _build(items, len(prefix))
    if bytes(keccak(fastrlp.encode(node))) != digest:  # pragma: no cover - a builder bug
        raise AssertionError("trie rebuild does not reproduce the referenced node")
    return node


def verify_proof(root: bytes, key: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The value ``proof`` proves for ``key`` under ``root`` (None: proven absent).

    ProofError if a node does not hash to its reference, is malformed, or if the proof has
    nodes left over or too few.
    """
    if len(root) != 32:
        raise ProofError(f"trie root is {len(root)} bytes, expected 32")
    nibbles = _nibbles(key)
    expected: Any = root
    depth = 0
    used = 0
    node: Node = None
    while True:
        if isinstance(expected, bytes):
            if used >= len(proof):
                raise ProofError(f"proof ends after {used} nodes, before reaching the key")
            raw = proof[used]
            if bytes(keccak(raw)) != expected:
                raise ProofError(f"proof node {used} does not hash to 0x{expected.hex()}")
            used += 1
            try:
                node = fastrlp.decode(raw)
            except fastrlp.RLPError as exc:
                raise ProofError(f"proof node {used - 1} is not valid RLP: {exc}") from exc
        else:
            node = expected
        if not isinstance(node, list):
            raise ProofError("trie node is a string, expected a list")
        value: bytes | None
        if len(node) == 17:
            if depth == len(nibbles):
                v = node[16]
                if not isinstance(v, bytes):
                    raise ProofError("branch value is a list")
                value = v or None
                break
            child = node[nibbles[depth]]
            depth += 1
            if child == b"":
                value = None
                break
        elif len(node) == 2:
            if not isinstance(node[0], bytes):
                raise ProofError("trie node path is a list")
            path, is_leaf = _uncompact(node[0])
            if tuple(nibbles[depth:depth + len(path)]) != path:
                value = None
                break
            depth += len(path)
            if is_leaf:
                if depth != len(nibbles):
                    value = None
                    break
                leaf = node[1]
                if not isinstance(leaf, bytes) or not leaf:
                    raise ProofError("leaf value is not a non-empty byte string")
                value = leaf
                break
            child = node[1]
        else:
            raise ProofError(f"trie node has {len(node)} items, expected 2 or 17")
        if isinstance(child, bytes) and len(child) != 32:
            raise ProofError(f"trie reference is {len(child)} bytes, expected a 32-byte hash")
        if isinstance(child, list) and len(fastrlp.encode(child)) >= 32:
            raise ProofError("an embedded trie node is 32 bytes or more; it must be hashed")
        expected = child
    if used != len(proof):
        raise ProofError(f"proof has {len(proof) - used} nodes beyond the path to the key")
    return value


def verify_receipt(receipts_root: bytes, index: int, proof: Sequence[bytes]) -> Receipt:
    """The receipt at ``index`` proven under ``receipts_root``; ProofError otherwise."""
    value = verify_proof(receipts_root, index_key(index), proof)
    if value is None:
        raise ProofError(f"the proof shows no receipt at index {index}")
    return Receipt.decode(value)


def receipts_root(receipts: Sequence[Mapping[str, Any]]) -> bytes:
    """``receiptsRoot`` of a block from its JSON-RPC receipts, in transaction order."""
    for i, r in enumerate(receipts):
        idx = r.get("transactionIndex")
        if idx is not None and (not isinstance(idx, str) or int(idx, 16) != i):
            raise ProofError(f"receipt {i} says transactionIndex {idx}: receipts out of order")
    return trie_root([encode_receipt(r) for r in receipts])


# --- logs blooms ---------------------------------------------------------------------------


def _bloom_bits(value: bytes) -> tuple[int, int, int]:
    digest = bytes(keccak(value))
    return tuple(((digest[i] << 8 | digest[i + 1]) & 0x7FF) for i in (0, 2, 4))  # type: ignore[return-value]


def bloom_add(bloom: bytearray, value: bytes) -> None:
    """Set the three bits of ``value`` (an address or a topic) in a 256-byte logs bloom."""
    for bit in _bloom_bits(value):
        bloom[255 - bit // 8] |= 1 << (bit % 8)


def bloom_may_contain(bloom: bytes, value: bytes) -> bool:
    """False only if no log of the block has ``value`` as its address or a topic."""
    return all(bloom[255 - bit // 8] & (1 << (bit % 8)) for bit in _bloom_bits(value))


def logs_bloom(logs: Sequence[ReceiptLog]) -> bytes:
    bloom = bytearray(256)
    for log in logs:
        bloom_add(bloom, log.address)
        for topic in log.topics:
            bloom_add(bloom, topic)
    return bytes(bloom)


# --- transactions ------------------------------------------------------------------------------


def _q(tx: Mapping[str, Any], key: str) -> int:
    value = tx.get(key)
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ProofError(f"transaction field {key!r} is missing or not a 0x hex quantity")
    try:
        return int(value, 16)
    except ValueError:
        raise ProofError(f"transaction field {key!r} is not a hex quantity") from None


def _b(tx: Mapping[str, Any], key: str, size: int | None = None) -> bytes:
    value = tx.get(key)
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ProofError(f"transaction field {key!r} is missing or not 0x hex data")
    try:
        out = bytes.fromhex(value[2:])
    except ValueError:
        raise ProofError(f"transaction field {key!r} is not hex") from None
    if size is not None and len(out) != size:
        raise ProofError(f"transaction field {key!r} is {len(out)} bytes, expected {size}")
    return out


def _access_list(tx: Mapping[str, Any]) -> list[Any]:
    items = tx.get("accessList") or []
    if not isinstance(items, list):
        raise ProofError("transaction accessList is not a list")
    out = []
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("storageKeys", []), list):
            raise ProofError("transaction accessList entry is not {address, storageKeys}")
        out.append([_b(item, "address", 20),
                    [_b({"k": k}, "k", 32) for k in item.get("storageKeys", [])]])
    return out


def encode_transaction(tx: Mapping[str, Any]) -> bytes:
    """A JSON-RPC transaction in its network encoding (the transactions-trie value, and what
    its hash is the keccak of): legacy as its RLP list, typed as ``type || rlp(fields)``."""
    tx_type = _q(tx, "type") if tx.get("type") is not None else 0
    to = b"" if tx.get("to") is None else _b(tx, "to", 20)
    data = _b(tx, "input") if tx.get("input") is not None else _b(tx, "data")
    common = [_q(tx, "nonce")]
    if tx_type == 0:
        return fastrlp.encode([*common, _q(tx, "gasPrice"), _q(tx, "gas"), to, _q(tx, "value"),
                               data, _q(tx, "v"), _q(tx, "r"), _q(tx, "s")])
    parity = _q(tx, "yParity") if tx.get("yParity") is not None else _q(tx, "v")
    signature = [parity, _q(tx, "r"), _q(tx, "s")]
    chain_id = _q(tx, "chainId")
    if tx_type == 1:
        fields = [chain_id, *common, _q(tx, "gasPrice"), _q(tx, "gas"), to, _q(tx, "value"), data,
                  _access_list(tx), *signature]
    elif tx_type in (2, 3, 4):
        fields = [chain_id, *common, _q(tx, "maxPriorityFeePerGas"), _q(tx, "maxFeePerGas"),
                  _q(tx, "gas"), to, _q(tx, "value"), data, _access_list(tx)]
        if tx_type == 3:
            hashes = tx.get("blobVersionedHashes") or []
            if not isinstance(hashes, list):
                raise ProofError("transaction blobVersionedHashes is not a list")
            fields += [_q(tx, "maxFeePerBlobGas"), [_b({"h": h}, "h", 32) for h in hashes]]
        elif tx_type == 4:
            auths = tx.get("authorizationList") or []
            if not isinstance(auths, list) or not all(isinstance(a, Mapping) for a in auths):
                raise ProofError("transaction authorizationList is not a list of objects")
            fields.append([[_q(a, "chainId"), _b(a, "address", 20), _q(a, "nonce"),
                            _q(a, "yParity"), _q(a, "r"), _q(a, "s")] for a in auths])
        fields += signature
    else:
        raise ProofError(f"transaction type {tx_type} is not one this verifier knows")
    return bytes([tx_type]) + fastrlp.encode(fields)


def transactions_root(transactions: Sequence[Mapping[str, Any]]) -> bytes:
    """``transactionsRoot`` of a block from its JSON-RPC transactions, in block order."""
    return trie_root([encode_transaction(t) for t in transactions])
