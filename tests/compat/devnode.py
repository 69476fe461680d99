"""A single-validator dev-mode node for the compatibility tests: node.execution's chain and
automining dev controls behind node.rpc, in a process of its own.

    python tests/compat/devnode.py --dir DIR [--port 0]

prints one JSON line ``{"url": ..., "ws": ..., "chain_id": ...}`` once it serves, then runs
until SIGTERM. The genesis funds the ten Hardhat/anvil/ape default test accounts (mnemonic
``test test ... junk``). Until ``smartta node run`` lands this stands in for it; the fixtures
take ``SMARTTA_COMPAT_RPC_URL`` to point the same tests at any running node instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from eth_account import Account

from chain.attest.keys import LocalSigner
from chain.qbft.genesis import AllocAccount, Genesis, QbftSettings, build_genesis
from node.abc import NodeAPI, NodeStatus
from node.execution.chain import Chain
from node.execution.devmode import DevChain
from node.rpc import RpcConfig, RpcServer

CHAIN_ID = 1337
MNEMONIC = "test test test test test test test test test test test junk"
VALIDATOR_KEY = bytes.fromhex("a11ce" + "0" * 59)


def test_accounts(n: int = 10) -> list[tuple[str, bytes]]:
    Account.enable_unaudited_hdwallet_features()
    out = []
    for i in range(n):
        acct = Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        out.append((acct.address, bytes(acct.key)))
    return out


def genesis() -> Genesis:
    validator = LocalSigner(VALIDATOR_KEY).address
    alloc = {bytes.fromhex(a[2:]): AllocAccount(balance=10**24) for a, _ in test_accounts()}
    return Genesis(build_genesis(chain_id=CHAIN_ID, validators=[validator], alloc=alloc,
                                 qbft=QbftSettings(block_period_seconds=1), gas_limit=30_000_000,
                                 zero_base_fee=True, timestamp=1_700_000_000))


async def serve(data_dir: Path, port: int) -> None:
    signer = LocalSigner(VALIDATOR_KEY)
    # Dev blocks may run ahead of the wall clock (automine, evm_increaseTime): no future check.
    chain = Chain.open(genesis(), data_dir, clock=None)
    dev = DevChain(chain, signer)
    status = NodeStatus(name="dev", role="validator", address=signer.address)
    node = NodeAPI(chain=chain, status=status, pool=dev.pool, dev=dev)
    server = RpcServer(node, RpcConfig(p2p_enabled=False), port=port)
    await server.start()
    print(json.dumps({"url": server.url, "ws": server.ws_url, "chain_id": CHAIN_ID}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
    chain.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.dir, args.port))


if __name__ == "__main__":
    sys.exit(main())
