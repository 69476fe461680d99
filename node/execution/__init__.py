"""The node's chain on the QBFT execution rules of ``chain.execution``: its ``ChainAPI``,
``BlockSource`` and ``ValidatorView`` (``chain.Chain``, over the LMDB store of ``node.store``
and the pool of ``node.txpool``), and development mode (``devmode.DevChain``).

Every block executes once per node: ``create_block`` and ``validate_block`` keep their result
by block hash and ``import_block`` only verifies the seals and stores it (``node.store``).
"""
