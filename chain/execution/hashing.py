"""Keccak through pysha3's C implementation when it is installed.

eth-hash picks pycryptodome first, whose keccak spends about 12 us per call in Python glue;
pysha3 takes about 1 us. A block executes tens of thousands of hashes (trie nodes, addresses,
storage keys, logs), so the node switches the shared ``eth_hash.auto.keccak`` object, which
every library in the process (py-evm, trie, chain/) calls through, to pysha3. Both compute
the same function; only the speed differs.
"""

from __future__ import annotations

import eth_hash.auto


def use_fast_keccak() -> bool:
    """Switch the process to pysha3's keccak; False if pysha3 is not installed."""
    try:
        from eth_hash.backends import pysha3
    except ImportError:
        return False
    eth_hash.auto.keccak.hasher = pysha3.keccak256  # type: ignore[assignment]
    return True
