"""The transaction pool (``pool.TxPool``): nonce queues per sender, replacement by price bump,
limits and eviction, and Besu's rejection wording (``reasons``)."""
