"""The execution rules of a Besu QBFT chain on py-evm: what a validator and an observer both need
to turn a parent state and a block's transactions into the roots its header commits to.

- ``forks``: the forks a genesis schedules (London from block 0, Shanghai/Cancun/Prague by
  time) as py-evm state classes with Besu's QBFT rules; ``jit``: contract code that runs
  again is translated into Python per basic block (py-evm's results, several times faster);
  ``precompiles``: ecrecover without eth-keys' overhead;
- ``statedb``: world state over trie nodes read through one function, committed once per block
  through ``mpt`` (Merkle-Patricia tries built in batches);
- ``executor``: one block's execution (``BlockRunner``); ``block``: a block's environment from
  its parent and the genesis, the header fields its fork fixes, its header against its
  execution, and the genesis state;
- ``txs``: transaction decoding and one sender recovery per transaction;
- ``receipts``: receipt and bloom encodings; ``calls``: eth_call and eth_estimateGas;
- ``hashing``: the fast keccak switch.

Pure: no I/O. Where trie nodes are stored is the caller's choice, given as the read function
of ``statedb.StateSource``: the node's LMDB store (``node.store``), or memory
(``memstore.MemoryNodes``, pruned to the latest state, for the observer's replay).
"""
