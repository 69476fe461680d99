"""node/: the Besu-compatible QBFT validator node (consensus, execution, store, JSON-RPC)."""
