"""chain/: the protocol library every other part of SMART-TA Ledger speaks.

- ``chain.qbft``: Besu-identical QBFT formats (extraData, block and commit-seal hashes, commit
  seals, quorum, proposer choice, validator votes, genesis, header rules);
- ``chain.ledger``: the ledger event record, its canonical delta and its hash chain;
- ``chain.attest``: pluggable attestation (EIP-712 by default, BLS12-381 aggregates) and keys.

It imports nothing else of ours, opens no sockets and reads no clocks.
"""
