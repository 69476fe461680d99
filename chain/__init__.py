"""chain/: the protocol library every other part of SMART-TA Ledger speaks.

- ``chain.qbft``: Besu-identical QBFT formats (extraData, block and commit-seal hashes, commit
  seals, quorum, proposer choice, validator votes, genesis, header rules);
- ``chain.ledger``: the ledger event record, its canonical delta and its hash chain;
- ``chain.attest``: pluggable attestation (EIP-712 by default, BLS12-381 aggregates) and keys.

It imports nothing else of ours, opens no sockets and reads no clocks.
"""

import os as _os

# eth-hash picks its keccak backend at the first hash (chain/ hashes at import). Its default,
# pycryptodome, costs ~7x the C extension of safe-pysha3 per call, and verifiers and indexers
# hash several times per record and per block: prefer pysha3 when it is installed (the
# base install has it on Linux), unless ETH_HASH_BACKEND says otherwise.
if "ETH_HASH_BACKEND" not in _os.environ:
    try:
        import sha3 as _sha3  # noqa: F401
    except ImportError:
        pass
    else:
        _os.environ["ETH_HASH_BACKEND"] = "pysha3"

