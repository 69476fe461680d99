"""Execution of a Besu QBFT chain with py-evm: the node's ``ChainAPI``, ``BlockSource`` and
``ValidatorView`` (``chain.Chain``), development mode (``devmode.DevChain``).

- ``forks``: the forks a genesis schedules (London from block 0, Shanghai/Cancun/Prague by
  time) as py-evm state classes with Besu's QBFT rules; ``statedb``: world state over stored
  trie nodes, committed once per block through ``mpt``; ``executor``: one block's execution;
  ``txs``: decoding and one sender recovery per transaction; ``calls``: eth_call and
  eth_estimateGas; ``receipts``: receipt and bloom encodings.
- Every block executes once per node: ``create_block`` and ``validate_block`` keep their result
  by block hash and ``import_block`` only verifies the seals and stores it (``node.store``).
"""
