"""A dev-mode chain that mines blocks with transactions as fast as it can, until it is killed.

    python tests/node/store/crashnode.py DATA_DIR

Used by test_crash.py, which kills it with SIGKILL at random moments and checks the store.
Prints "ready" once the chain is open so the killer knows writes are under way.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "node" / "execution"))

from devnet import PROBE_CODE, USERS, addr, call_data, genesis, sign, signers  # noqa: E402

from node.execution.chain import Chain  # noqa: E402
from node.execution.devmode import DevChain  # noqa: E402
from node.store.chaindb import ChainStore  # noqa: E402


def main() -> None:
    chain = Chain(genesis(1), ChainStore(Path(sys.argv[1])), clock=None)
    dev = DevChain(chain, signers(1)[0])
    deployer = USERS[0]
    if chain.account(addr(deployer), chain.head.number).nonce == 0:
        dev.pool.add(sign(deployer, nonce=0, data=PROBE_CODE, gas=3_000_000))
    probe = chain.receipts(1)[0].contract_address
    print("ready", flush=True)
    i = 0
    while True:
        for user in USERS[1:11]:
            nonce = dev.pool.pending_nonce(addr(user))
            chain.pool.add(sign(user, nonce=nonce, to=probe,
                                data=call_data("bump(bytes32)", i.to_bytes(32, "big"))))
            i += 1
        dev.mine_one()


if __name__ == "__main__":
    main()
