"""Merkle-Patricia tries as Ethereum hashes them, built for batches: nodes live in memory as
immutable objects, a change copies only the path it touches, and each new node is encoded and
hashed once, when the trie is committed (py-trie re-encodes the whole path on every key).

Paths are strings of hex digits (one character per nibble), which Python compares, slices and
prefixes quickly. A trie is a root node object; unresolved children are their 32-byte hashes
and are fetched through a ``load`` function only when a lookup or change reaches them. Nodes
are never mutated after they are built, so tries of consecutive blocks share structure safely.

No I/O here: ``load`` supplies stored nodes and ``commit`` returns the new ones to store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping

from eth_hash.auto import keccak

from chain import fastrlp

BLANK_ROOT = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
_HEX = "0123456789abcdef"
_NIBBLE = {c: i for i, c in enumerate(_HEX)}


class MissingNode(KeyError):
    """A node the trie refers to is not in the store (the state was never stored or was pruned)."""


class Leaf:
    __slots__ = ("enc", "path", "value")

    def __init__(self, path: str, value: bytes, enc: bytes | None = None) -> None:
        self.path = path
        self.value = value
        self.enc = enc


class Extension:
    __slots__ = ("child", "enc", "path")

    def __init__(self, path: str, child: Child, enc: bytes | None = None) -> None:
        self.path = path
        self.child = child
        self.enc = enc


class Branch:
    __slots__ = ("children", "enc", "value")

    def __init__(self, children: list[Child], value: bytes, enc: bytes | None = None) -> None:
        self.children = children
        self.value = value
        self.enc = enc


Node = Leaf | Extension | Branch
Child = Node | bytes | None
"""A node object, the 32-byte hash of a stored node, or None for an empty slot."""
Loader = Callable[[bytes], Node]


# ---- RLP, by hand for the two shapes a trie needs ---------------------------------------------

def _length(n: int, offset: int) -> bytes:
    if n < 56:
        return bytes((offset + n,))
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


def rlp_bytes(b: bytes) -> bytes:
    if len(b) == 1 and b[0] < 0x80:
        return b
    return _length(len(b), 0x80) + b


def rlp_list(payload: bytes) -> bytes:
    return _length(len(payload), 0xC0) + payload


def hex_prefix(path: str, leaf: bool) -> bytes:
    flag = 2 if leaf else 0
    if len(path) % 2:
        return bytes.fromhex(_HEX[flag + 1] + path)
    return bytes.fromhex(_HEX[flag] + "0" + path)


def _unprefix(b: bytes) -> tuple[str, bool]:
    h = b.hex()
    if not h:
        raise ValueError("trie node path is empty")
    flag = _NIBBLE[h[0]]
    if flag > 3:
        raise ValueError(f"trie node path has an invalid hex-prefix flag {flag}")
    return (h[1:] if flag & 1 else h[2:]), bool(flag & 2)


# ---- decoding stored nodes ---------------------------------------------------------------------

def decode_node(enc: bytes) -> Node:
    """A node object from its RLP (embedded children become objects, hashed ones stay hashes)."""
    node = _from_items(fastrlp.decode(enc))
    node.enc = enc
    return node


def _from_items(items: object) -> Node:
    if not isinstance(items, list):
        raise ValueError("trie node is not an RLP list")
    if len(items) == 17:
        children: list[Child] = [_child(c) for c in items[:16]]
        value = items[16]
        if not isinstance(value, bytes):
            raise ValueError("trie branch value is not a byte string")
        return Branch(children, value)
    if len(items) == 2:
        raw_path, second = items
        if not isinstance(raw_path, bytes):
            raise ValueError("trie node path is not a byte string")
        path, leaf = _unprefix(raw_path)
        if leaf:
            if not isinstance(second, bytes):
                raise ValueError("trie leaf value is not a byte string")
            return Leaf(path, second)
        child = _child(second)
        if child is None:
            raise ValueError("trie extension has no child")
        return Extension(path, child)
    raise ValueError(f"trie node has {len(items)} items, expected 2 or 17")


def _child(item: object) -> Child:
    if isinstance(item, bytes):
        if not item:
            return None
        if len(item) != 32:
            raise ValueError(f"trie child reference is {len(item)} bytes, expected 32")
        return item
    embedded = _from_items(item)
    embedded.enc = fastrlp.encode(item)
    return embedded


# ---- reads -----------------------------------------------------------------------------------

def _resolve(child: Node | bytes, load: Loader) -> Node:
    return load(child) if isinstance(child, bytes) else child


def get(root: Child, key: bytes, load: Loader) -> bytes | None:
    """The value stored under ``key``, or None."""
    path = key.hex()
    node = root
    while node is not None:
        if isinstance(node, bytes):
            node = load(node)
        if isinstance(node, Leaf):
            return node.value if node.path == path else None
        if isinstance(node, Extension):
            if not path.startswith(node.path):
                return None
            path = path[len(node.path):]
            node = node.child
            continue
        if not path:
            return node.value or None
        node = node.children[_NIBBLE[path[0]]]
        path = path[1:]
    return None


def prove(root: Child, key: bytes, load: Loader) -> list[bytes]:
    """The RLP of every stored node on the way to ``key`` (the root first), as eth_getProof
    lists them; nodes embedded in their parent are not listed on their own."""
    path = key.hex()
    out: list[bytes] = []
    node = root
    first = True
    while node is not None:
        if isinstance(node, bytes):
            node = load(node)
        enc = encode(node)
        if first or len(enc) >= 32:
            out.append(enc)
        first = False
        if isinstance(node, Leaf):
            break
        if isinstance(node, Extension):
            if not path.startswith(node.path):
                break
            path = path[len(node.path):]
            node = node.child
            continue
        if not path:
            break
        node = node.children[_NIBBLE[path[0]]]
        path = path[1:]
    return out


# ---- changes ---------------------------------------------------------------------------------

def _common(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def put(root: Child, key: bytes, value: bytes, load: Loader) -> Node:
    """A new root with ``key`` set to ``value`` (non-empty); the old root is unchanged."""
    if not value:
        raise ValueError("an empty value deletes the key; use delete()")
    return _put(root, key.hex(), value, load)


def _put(node: Child, path: str, value: bytes, load: Loader) -> Node:
    if node is None:
        return Leaf(path, value)
    if isinstance(node, bytes):
        node = load(node)
    if isinstance(node, Leaf):
        if node.path == path:
            return node if node.value == value else Leaf(path, value)
        k = _common(node.path, path)
        branch = Branch([None] * 16, b"")
        _place(branch, node.path[k:], Leaf(node.path[k + 1:], node.value), node.value)
        _place(branch, path[k:], Leaf(path[k + 1:], value), value)
        return Extension(path[:k], branch) if k else branch
    if isinstance(node, Extension):
        k = _common(node.path, path)
        if k == len(node.path):
            child = _put(node.child, path[k:], value, load)
            return Extension(node.path, child)
        branch = Branch([None] * 16, b"")
        rest = node.path[k:]
        branch.children[_NIBBLE[rest[0]]] = (Extension(rest[1:], node.child) if len(rest) > 1
                                            else node.child)
        _place(branch, path[k:], Leaf(path[k + 1:], value), value)
        return Extension(path[:k], branch) if k else branch
    children = list(node.children)
    if not path:
        return Branch(children, value)
    i = _NIBBLE[path[0]]
    children[i] = _put(children[i], path[1:], value, load)
    return Branch(children, node.value)


def _place(branch: Branch, rest: str, leaf: Leaf, value: bytes) -> None:
    if rest:
        branch.children[_NIBBLE[rest[0]]] = leaf
    else:
        branch.value = value


def delete(root: Child, key: bytes, load: Loader) -> Child:
    """A new root without ``key`` (the same root if the key is absent)."""
    return _delete(root, key.hex(), load)


def _delete(node: Child, path: str, load: Loader) -> Child:
    if node is None:
        return None
    if isinstance(node, bytes):
        resolved = load(node)
        out = _delete(resolved, path, load)
        return node if out is resolved else out
    if isinstance(node, Leaf):
        return None if node.path == path else node
    if isinstance(node, Extension):
        if not path.startswith(node.path):
            return node
        child = _delete(node.child, path[len(node.path):], load)
        if child is node.child:
            return node
        return _join(node.path, child, load)
    children = node.children
    if not path:
        if not node.value:
            return node
        return _collapse(list(children), b"", load)
    i = _NIBBLE[path[0]]
    child = _delete(children[i], path[1:], load)
    if child is children[i]:
        return node
    new = list(children)
    new[i] = child
    return _collapse(new, node.value, load)


def _join(path: str, child: Child, load: Loader) -> Child:
    """An extension over ``child``, merged with it when the child is a leaf or extension."""
    if child is None:
        return None
    if isinstance(child, bytes):
        resolved = load(child)
        if isinstance(resolved, Branch):
            return Extension(path, child)
        child = resolved
    if isinstance(child, Leaf):
        return Leaf(path + child.path, child.value)
    if isinstance(child, Extension):
        return Extension(path + child.path, child.child)
    return Extension(path, child)


def _collapse(children: list[Child], value: bytes, load: Loader) -> Child:
    """A branch, or what it shrinks to when it is left with one entry."""
    used = [i for i, c in enumerate(children) if c is not None]
    if len(used) > 1 or (used and value):
        return Branch(children, value)
    if not used:
        return Leaf("", value) if value else None
    i = used[0]
    return _join(_HEX[i], children[i], load)


# ---- commit ----------------------------------------------------------------------------------

def encode(node: Node, out: MutableMapping[bytes, bytes] | None = None) -> bytes:
    """RLP of ``node``; every node newly hashed on the way is added to ``out``."""
    enc = node.enc
    if enc is not None:
        return enc
    if isinstance(node, Leaf):
        enc = rlp_list(rlp_bytes(hex_prefix(node.path, True)) + rlp_bytes(node.value))
    elif isinstance(node, Extension):
        enc = rlp_list(rlp_bytes(hex_prefix(node.path, False)) + _ref(node.child, out))
    else:
        enc = rlp_list(b"".join([_ref(c, out) for c in node.children]) + rlp_bytes(node.value))
    node.enc = enc
    return enc


def _ref(child: Child, out: MutableMapping[bytes, bytes] | None) -> bytes:
    if child is None:
        return b"\x80"
    if isinstance(child, bytes):
        return b"\xa0" + child
    fresh = child.enc is None
    enc = encode(child, out)
    if len(enc) < 32:
        return enc
    digest = keccak(enc)
    if fresh and out is not None:
        out[digest] = enc
    return b"\xa0" + digest


def commit(root: Child, out: MutableMapping[bytes, bytes]) -> bytes:
    """The root hash; the RLP of every node built since the trie was loaded goes to ``out``."""
    if root is None:
        return BLANK_ROOT
    if isinstance(root, bytes):
        return root
    fresh = root.enc is None
    enc = encode(root, out)
    digest = keccak(enc)
    if fresh or len(enc) < 32:
        out[digest] = enc
    return digest


def root_of(items: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, dict[bytes, bytes]]:
    """Root hash and nodes of a fresh trie holding ``items`` (keys unique, values non-empty)."""

    def no_load(h: bytes) -> Node:
        raise MissingNode(h)

    root: Child = None
    for key, value in items:
        root = _put(root, key.hex(), value, no_load)
    nodes: dict[bytes, bytes] = {}
    return commit(root, nodes), nodes


def ordered_root(values: list[bytes]) -> bytes:
    """transactionsRoot / receiptsRoot / withdrawalsRoot: the trie of rlp(index) -> value."""
    if not values:
        return BLANK_ROOT
    return root_of((rlp_bytes(_index_bytes(i)), v) for i, v in enumerate(values))[0]


def _index_bytes(i: int) -> bytes:
    return b"" if i == 0 else i.to_bytes((i.bit_length() + 7) // 8, "big")
