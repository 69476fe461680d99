"""Trie nodes and code in memory, for executing a chain without a database (the observer's
replay). Memory stays proportional to one state, not to the chain's history: ``prune`` keeps
only what the latest state root reaches (its account trie, every storage trie, every code),
and the caller prunes whenever the store has doubled since the last prune, so the cost of
pruning is spread evenly over the blocks.
"""

from __future__ import annotations

from collections.abc import Callable

from chain.execution import mpt
from chain.execution.statedb import EMPTY_CODE_HASH, decode_account


class MemoryNodes:
    """Trie nodes and code by hash; ``read`` is the read function of a ``StateSource``."""

    def __init__(self, *, prune_floor: int = 200_000) -> None:
        self._items: dict[bytes, bytes] = {}
        self._prune_floor = prune_floor
        self._after_prune = 0

    def read(self, digest: bytes) -> bytes | None:
        return self._items.get(digest)

    def __len__(self) -> int:
        return len(self._items)

    def write(self, nodes: dict[bytes, bytes]) -> None:
        self._items.update(nodes)

    def due(self) -> bool:
        """Whether the store has grown enough since the last prune to prune again."""
        return len(self._items) > max(self._prune_floor, 2 * self._after_prune)

    def prune(self, state_root: bytes) -> int:
        """Keep only what ``state_root`` reaches; the number of entries dropped."""
        keep = reachable(state_root, self._items.get)
        before = len(self._items)
        # a new dict: deleting keys would not give the old one's memory back
        self._items = {h: self._items[h] for h in keep}
        self._after_prune = len(self._items)
        return before - len(self._items)


def reachable(state_root: bytes, read: Callable[[bytes], bytes | None]) -> set[bytes]:
    """Hashes of every stored node and code the state with this root refers to; MissingNode if
    one of them is not there."""
    keep: set[bytes] = set()
    pending: list[tuple[bytes, bool]] = [(state_root, True)]  # (node hash, in the account trie)
    while pending:
        digest, accounts = pending.pop()
        if digest == mpt.BLANK_ROOT or digest in keep:
            continue
        raw = read(digest)
        if raw is None:
            raise mpt.MissingNode(digest)
        keep.add(digest)
        stack: list[mpt.Node] = [mpt.decode_node(raw)]
        while stack:
            node = stack.pop()
            if isinstance(node, mpt.Leaf):
                if accounts:
                    account = decode_account(node.value)
                    pending.append((account.storage_root, False))
                    if account.code_hash != EMPTY_CODE_HASH:
                        if read(account.code_hash) is None:
                            raise mpt.MissingNode(account.code_hash)
                        keep.add(account.code_hash)
                continue
            children = [node.child] if isinstance(node, mpt.Extension) else node.children
            for child in children:
                if isinstance(child, bytes):
                    pending.append((child, accounts))
                elif child is not None:
                    stack.append(child)  # embedded in its parent: no hash of its own
    return keep
