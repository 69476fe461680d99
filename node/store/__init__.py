"""The node's persistent chain in LMDB (``chaindb.ChainStore``): one write transaction per
block, so a process killed at any moment restarts with whole blocks only."""
