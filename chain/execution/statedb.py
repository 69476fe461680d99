"""World state for py-evm, read from stored trie nodes and committed in one batch per block.

``StateDB`` implements py-evm's ``AccountDatabaseAPI`` in place of ``eth.db.account.AccountDB``.
Accounts and storage slots are plain Python values in two change layers (the current
transaction, with an undo journal for py-evm's snapshots, and the block's earlier transactions);
nothing is RLP-encoded or hashed until ``make_state_root`` writes the block's changes into the
tries at once (``chain.execution.mpt``). The new trie nodes and code are left in ``nodes`` for
the caller to store with the block; StateDB does no I/O of its own.

``StateSource`` reads stored nodes through one function and keeps decoded nodes and the tries
of recently imported blocks in memory, so executing on the head rarely decodes a node.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from eth.abc import AccountDatabaseAPI, MetaWitnessAPI
from eth.db.journal import get_next_checkpoint
from eth.db.witness import MetaWitness
from eth.typing import JournalDBCheckpoint
from eth_hash.auto import keccak
from eth_typing import Address, Hash32
from eth_utils.exceptions import ValidationError

from chain import fastrlp
from chain.execution import mpt

EMPTY_CODE_HASH = bytes(keccak(b""))
BLANK_ROOT = mpt.BLANK_ROOT
_UINT256 = 2**256


class Account(NamedTuple):
    nonce: int = 0
    balance: int = 0
    storage_root: bytes = BLANK_ROOT
    code_hash: bytes = EMPTY_CODE_HASH


EMPTY_ACCOUNT = Account()


def encode_account(a: Account) -> bytes:
    return mpt.rlp_list(mpt.rlp_bytes(_int_bytes(a.nonce)) + mpt.rlp_bytes(_int_bytes(a.balance))
                        + mpt.rlp_bytes(a.storage_root) + mpt.rlp_bytes(a.code_hash))


def decode_account(raw: bytes) -> Account:
    items = fastrlp.decode(raw)
    if not isinstance(items, list) or len(items) != 4 or not all(isinstance(i, bytes) for i in items):
        raise ValueError("stored account is not a 4-item RLP list")
    nonce, balance, root, code_hash = cast(list[bytes], items)
    return Account(int.from_bytes(nonce, "big"), int.from_bytes(balance, "big"), root, code_hash)


def _int_bytes(v: int) -> bytes:
    return v.to_bytes((v.bit_length() + 7) // 8, "big") if v else b""


def slot_key(slot: int) -> bytes:
    return bytes(keccak(slot.to_bytes(32, "big")))


def encode_slot_value(v: int) -> bytes:
    return mpt.rlp_bytes(_int_bytes(v))


class StateSource:
    """Stored trie nodes and code, read through ``read(hash) -> bytes | None``.

    Keeps decoded nodes (bounded) and the in-memory tries of recently imported blocks by root
    hash. Safe to share between threads: the caches only ever map a hash to what it names.
    """

    def __init__(self, read: Callable[[bytes], bytes | None], *, node_cache: int = 250_000,
                 live_nodes: int = 400_000) -> None:
        self._read = read
        self._nodes: dict[bytes, mpt.Node] = {}
        self._node_cache = node_cache
        self._roots: OrderedDict[bytes, mpt.Node] = OrderedDict()
        self._live_nodes = live_nodes
        self._live = 0
        self._lock = threading.Lock()

    def load(self, digest: bytes) -> mpt.Node:
        node = self._nodes.get(digest)
        if node is None:
            raw = self._read(digest)
            if raw is None:
                raise mpt.MissingNode(digest)
            node = mpt.decode_node(raw)
            if len(self._nodes) >= self._node_cache:
                self._nodes.clear()
            self._nodes[digest] = node
        return node

    def code(self, code_hash: bytes) -> bytes:
        raw = self._read(code_hash)
        if raw is None:
            raise mpt.MissingNode(code_hash)
        return raw

    def trie(self, root_hash: bytes) -> mpt.Child:
        """The trie with this root: its in-memory nodes if a recent block built it, else the
        hash (resolved on demand)."""
        if root_hash == BLANK_ROOT:
            return None
        return self._roots.get(root_hash, root_hash)

    def keep(self, tries: dict[bytes, mpt.Node], built: int) -> None:
        """Remember the tries of an imported block; ``built`` nodes were created for it. When
        too many built nodes are alive the in-memory tries are dropped and reads go back to
        the decoded-node cache, which bounds memory however large the state grows."""
        with self._lock:
            self._live += built
            if self._live > self._live_nodes:
                self._roots.clear()
                self._live = 0
                return
            for root, node in tries.items():
                self._roots[root] = node
                self._roots.move_to_end(root)
            while len(self._roots) > 4096:
                self._roots.popitem(last=False)

    def forget(self) -> None:
        """Drop every in-memory trie (after the chain was rewound)."""
        with self._lock:
            self._roots.clear()
            self._live = 0


_MISSING: Any = object()
_ACCT, _SLOT, _WIPE, _WARM_ADDR, _WARM_SLOT = range(5)


class StateDB(AccountDatabaseAPI):
    """py-evm's account database over a ``StateSource`` and one state root.

    ``nodes`` collects what ``make_state_root`` built (trie nodes and new code, by hash) and
    ``tries`` the in-memory trie of each new root, for the caller to store and keep.
    """

    def __init__(self, db: Any, state_root: bytes = BLANK_ROOT) -> None:
        if not isinstance(db, StateSource):
            raise TypeError("StateDB reads from a chain.execution.statedb.StateSource")
        self._src = db
        self._root_hash = bytes(state_root)
        self._root: mpt.Child = db.trie(self._root_hash)
        self._base_accounts: dict[bytes, Account | None] = {}
        self._base_slots: dict[bytes, dict[int, int]] = {}
        self._storage_tries: dict[bytes, mpt.Child] = {}
        # changes of the block's transactions that are already locked in
        self._accounts: dict[bytes, Account | None] = {}
        self._slots: dict[bytes, dict[int, int]] = {}
        self._wiped: set[bytes] = set()
        # changes of the current transaction, undone through the journal
        self._tx_accounts: dict[bytes, Account | None] = {}
        self._tx_slots: dict[bytes, dict[int, int]] = {}
        self._tx_wiped: set[bytes] = set()
        self._warm_addresses: set[bytes] = set()
        self._warm_slots: set[tuple[bytes, int]] = set()
        self._journal: list[tuple[int, Any, Any]] = []
        self._checkpoints: dict[int, int] = {}
        self._code: dict[bytes, bytes] = {}
        self.nodes: dict[bytes, bytes] = {}
        self.tries: dict[bytes, mpt.Node] = {}

    # ---- reads ---------------------------------------------------------------------------

    def _base_account(self, address: bytes) -> Account | None:
        try:
            return self._base_accounts[address]
        except KeyError:
            pass
        raw = mpt.get(self._root, keccak(address), self._src.load)
        acct = None if raw is None else decode_account(raw)
        self._base_accounts[address] = acct
        return acct

    def _account(self, address: bytes) -> Account | None:
        acct = self._tx_accounts.get(address, _MISSING)
        if acct is not _MISSING:
            return acct  # type: ignore[no-any-return]
        acct = self._accounts.get(address, _MISSING)
        if acct is not _MISSING:
            return acct  # type: ignore[no-any-return]
        return self._base_account(address)

    def _base_slot(self, address: bytes, slot: int) -> int:
        cached = self._base_slots.get(address)
        if cached is None:
            cached = self._base_slots[address] = {}
        elif slot in cached:
            return cached[slot]
        trie = self._storage_tries.get(address, _MISSING)
        if trie is _MISSING:
            base = self._base_account(address)
            trie = self._src.trie(base.storage_root) if base is not None else None
            self._storage_tries[address] = trie
        raw = mpt.get(trie, slot_key(slot), self._src.load)
        value = int.from_bytes(fastrlp.decode(raw), "big") if raw else 0  # type: ignore[arg-type]
        cached[slot] = value
        return value

    def get_storage(self, address: Address, slot: int, from_journal: bool = True) -> int:
        if from_journal:
            d = self._tx_slots.get(address)
            if d is not None and slot in d:
                return d[slot]
            if address in self._tx_wiped:
                return 0
        d = self._slots.get(address)
        if d is not None and slot in d:
            return d[slot]
        if address in self._wiped:
            return 0
        return self._base_slot(address, slot)

    def get_balance(self, address: Address) -> int:
        acct = self._account(address)
        return 0 if acct is None else acct.balance

    def get_nonce(self, address: Address) -> int:
        acct = self._account(address)
        return 0 if acct is None else acct.nonce

    def get_code_hash(self, address: Address) -> Hash32:
        acct = self._account(address)
        return Hash32(EMPTY_CODE_HASH if acct is None else acct.code_hash)

    def get_code(self, address: Address) -> bytes:
        code_hash = self.get_code_hash(address)
        if code_hash == EMPTY_CODE_HASH:
            return b""
        code = self._code.get(code_hash)
        return code if code is not None else self._src.code(code_hash)

    def account_has_code_or_nonce(self, address: Address) -> bool:
        acct = self._account(address)
        return acct is not None and (acct.nonce != 0 or acct.code_hash != EMPTY_CODE_HASH)

    def account_exists(self, address: Address) -> bool:
        return self._account(address) is not None

    def account_is_empty(self, address: Address) -> bool:
        acct = self._account(address)
        return acct is None or (acct.nonce == 0 and acct.balance == 0
                                and acct.code_hash == EMPTY_CODE_HASH)

    # ---- writes (current transaction) ---------------------------------------------------

    def _set(self, address: bytes, acct: Account | None) -> None:
        self._journal.append((_ACCT, address, self._tx_accounts.get(address, _MISSING)))
        self._tx_accounts[address] = acct

    def set_balance(self, address: Address, balance: int) -> None:
        if not 0 <= balance < _UINT256:
            raise ValidationError(f"balance {balance} of 0x{address.hex()} is outside uint256")
        self._set(address, (self._account(address) or EMPTY_ACCOUNT)._replace(balance=balance))

    def set_nonce(self, address: Address, nonce: int) -> None:
        self._set(address, (self._account(address) or EMPTY_ACCOUNT)._replace(nonce=nonce))

    def increment_nonce(self, address: Address) -> None:
        acct = self._account(address) or EMPTY_ACCOUNT
        self._set(address, acct._replace(nonce=acct.nonce + 1))

    def set_code(self, address: Address, code: bytes) -> None:
        code_hash = bytes(keccak(code))
        self._code[code_hash] = code
        self._set(address, (self._account(address) or EMPTY_ACCOUNT)._replace(code_hash=code_hash))

    def delete_code(self, address: Address) -> None:
        self._set(address, (self._account(address) or EMPTY_ACCOUNT)._replace(
            code_hash=EMPTY_CODE_HASH))

    def touch_account(self, address: Address) -> None:
        self._set(address, self._account(address) or EMPTY_ACCOUNT)

    def delete_account(self, address: Address) -> None:
        self._wipe(address)
        self._set(address, None)

    def set_storage(self, address: Address, slot: int, value: int) -> None:
        d = self._tx_slots.get(address)
        if d is None:
            d = self._tx_slots[address] = {}
        self._journal.append((_SLOT, (address, slot), d.get(slot, _MISSING)))
        d[slot] = value

    def delete_storage(self, address: Address) -> None:
        self._wipe(address)

    def _wipe(self, address: bytes) -> None:
        self._journal.append((_WIPE, address, (self._tx_slots.get(address),
                                               address in self._tx_wiped)))
        self._tx_slots[address] = {}
        self._tx_wiped.add(address)

    # ---- EIP-2929 access sets (per transaction, reverted with the frame) -------------

    def is_address_warm(self, address: Address) -> bool:
        return address in self._warm_addresses

    def mark_address_warm(self, address: Address) -> None:
        if address not in self._warm_addresses:
            self._warm_addresses.add(address)
            self._journal.append((_WARM_ADDR, address, None))

    def is_storage_warm(self, address: Address, slot: int) -> bool:
        return (address, slot) in self._warm_slots

    def mark_storage_warm(self, address: Address, slot: int) -> None:
        key = (address, slot)
        if key not in self._warm_slots:
            self._warm_slots.add(key)
            self._journal.append((_WARM_SLOT, key, None))

    # ---- journal ---------------------------------------------------------------------

    def record(self) -> JournalDBCheckpoint:
        # py-evm's transient storage shares checkpoint ids with its own journals, which draw
        # them from one process-wide counter; ours must come from the same counter.
        cp = get_next_checkpoint()
        self._checkpoints[cp] = len(self._journal)
        return JournalDBCheckpoint(cp)

    def discard(self, checkpoint: JournalDBCheckpoint) -> None:
        size = self._pop_checkpoints(checkpoint)
        journal = self._journal
        while len(journal) > size:
            kind, key, old = journal.pop()
            if kind == _ACCT:
                if old is _MISSING:
                    del self._tx_accounts[key]
                else:
                    self._tx_accounts[key] = old
            elif kind == _SLOT:
                address, slot = key
                if old is _MISSING:
                    del self._tx_slots[address][slot]
                else:
                    self._tx_slots[address][slot] = old
            elif kind == _WIPE:
                slots, was_wiped = old
                if slots is None:
                    del self._tx_slots[key]
                else:
                    self._tx_slots[key] = slots
                if not was_wiped:
                    self._tx_wiped.discard(key)
            elif kind == _WARM_ADDR:
                self._warm_addresses.discard(key)
            else:
                self._warm_slots.discard(key)

    def commit(self, checkpoint: JournalDBCheckpoint) -> None:
        self._pop_checkpoints(checkpoint)

    def _pop_checkpoints(self, checkpoint: int) -> int:
        try:
            size = self._checkpoints[checkpoint]
        except KeyError:
            raise ValidationError(f"checkpoint {checkpoint} is unknown or already closed") from None
        for cp in [c for c in self._checkpoints if c >= checkpoint]:
            del self._checkpoints[cp]
        return size

    def lock_changes(self) -> None:
        """End of a transaction: its changes join the block's and can no longer be undone."""
        for address in self._tx_wiped:
            self._slots[address] = {}
            self._wiped.add(address)
        for address, slots in self._tx_slots.items():
            if slots:
                self._slots.setdefault(address, {}).update(slots)
        self._accounts.update(self._tx_accounts)
        self._tx_accounts = {}
        self._tx_slots = {}
        self._tx_wiped = set()
        self._journal = []
        self._checkpoints = {}
        self._warm_addresses = set()
        self._warm_slots = set()

    # ---- roots -----------------------------------------------------------------------

    @property
    def state_root(self) -> Hash32:
        return Hash32(self._root_hash)

    @state_root.setter
    def state_root(self, value: Hash32) -> None:
        # py-evm's State.revert restores the root it saw at the snapshot, which stays the
        # committed one because roots are only computed once per block.
        if value != self._root_hash:
            raise ValidationError("StateDB cannot jump to another state root; open a new StateDB")

    def has_root(self, state_root: bytes) -> bool:
        if state_root in (self._root_hash, BLANK_ROOT):
            return True
        try:
            self._src.load(state_root)
        except mpt.MissingNode:
            return False
        return True

    def make_state_root(self) -> Hash32:
        self.lock_changes()
        load = self._src.load
        root = self._root
        touched = set(self._accounts) | set(self._slots) | self._wiped
        for address in sorted(touched):
            acct = self._account(address)
            key = keccak(address)
            if acct is None:
                root = mpt.delete(root, key, load)
                continue
            if address in self._slots or address in self._wiped:
                acct = acct._replace(storage_root=self._commit_storage(address))
            root = mpt.put(root, key, encode_account(acct), load)
            self._base_accounts[address] = acct
        for address in touched:
            if self._accounts.get(address, _MISSING) is None:
                self._base_accounts[address] = None
                self._storage_tries.pop(address, None)
                self._base_slots.pop(address, None)
        self._root_hash = mpt.commit(root, self.nodes)
        self._root = root
        if root is not None and not isinstance(root, bytes):
            self.tries[self._root_hash] = root
        self.nodes.update(self._code)
        self._accounts = {}
        self._slots = {}
        self._wiped = set()
        return Hash32(self._root_hash)

    def _commit_storage(self, address: bytes) -> bytes:
        load = self._src.load
        if address in self._wiped:
            trie: mpt.Child = None
            self._base_slots[address] = {}
        else:
            trie = self._storage_tries.get(address, _MISSING)
            if trie is _MISSING:
                base = self._base_account(address)
                trie = self._src.trie(base.storage_root) if base is not None else None
        base_slots = self._base_slots.setdefault(address, {})
        for slot, value in self._slots.get(address, {}).items():
            key = slot_key(slot)
            if value:
                trie = mpt.put(trie, key, encode_slot_value(value), load)
            else:
                trie = mpt.delete(trie, key, load)
            base_slots[slot] = value
        storage_root = mpt.commit(trie, self.nodes)
        self._storage_tries[address] = trie
        if trie is not None and not isinstance(trie, bytes):
            self.tries[storage_root] = trie
        return storage_root

    def persist(self) -> MetaWitnessAPI:
        self.make_state_root()
        return MetaWitness(set(), {})

    # ---- for RPC and the pool -------------------------------------------------------

    def account(self, address: bytes) -> Account | None:
        return self._account(address)
