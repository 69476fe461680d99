"""``verify --replay`` against the real thing: a 4-validator devnet of our node as OS processes
(``tests/devnet.py``), with the Probe contract and the CeFi Event Ledger deployed and attested
records appended; the observer replays every block from the genesis file and agrees with
every sealed header. (Slow: four node processes on this machine's cores.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from devnet import devnet, rpc, wait_height
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_hash.auto import keccak
from eth_utils import to_checksum_address
from execchain import PROBE_CODE, call_data, compiled_ledger, order_entries

from chain.abc import LedgerDomain
from chain.attest.keys import LocalSigner
from chain.ledger import onchain
from chain.qbft.genesis import Genesis
from node.network import local

pytestmark = pytest.mark.slow


def test_devnet_with_contracts_and_ledger_records_replays_from_the_genesis(tmp_path):
    directory = tmp_path / "net"
    with devnet(directory, validators=4) as spec:
        url = local.url_of(spec.node("validator-1"))
        wait_height(url, 2, timeout=90)
        genesis = Genesis.load(directory / "genesis.json")
        writer = bytes(keccak(b"replay devnet writer"))
        me = Account.from_key(writer).address
        actor = LocalSigner(bytes(keccak(b"replay devnet actor")))
        nonce = 0

        def send(to: str | None, data: bytes, gas: int = 8_000_000) -> dict:
            nonlocal nonce
            tx = {"nonce": nonce, "gasPrice": 0, "gas": gas, "value": 0, "data": data,
                  "chainId": genesis.chain_id}
            if to is not None:
                tx["to"] = to_checksum_address(to)
            nonce += 1
            raw = Account.sign_transaction(tx, writer).raw_transaction
            tx_hash = rpc(url, "eth_sendRawTransaction", "0x" + bytes(raw).hex())
            for _ in range(120):
                receipt = rpc(url, "eth_getTransactionReceipt", tx_hash)
                if receipt is not None:
                    return receipt
                time.sleep(0.5)
            raise AssertionError(f"transaction {tx_hash} was not mined")

        probe = send(None, PROBE_CODE)["contractAddress"]
        code = bytes.fromhex(compiled_ledger()["deploymentBytecode"]["bytecode"][2:])
        ledger = send(None, code + abi_encode(["address"], [me]))["contractAddress"]
        grant = "grantRole(bytes32,address)"
        send(ledger, call_data(grant, onchain.WRITER_ROLE, bytes.fromhex(me[2:])))
        send(ledger, call_data(grant, onchain.ATTESTER_ROLE, actor.address))
        domain = LedgerDomain(genesis.chain_id, bytes.fromhex(ledger[2:]))
        entries = order_entries(actor, domain, 8)
        assert send(ledger, onchain.encode_batch(entries[:4]))["status"] == "0x1"
        send(probe, call_data("fill(uint256)", 20))
        assert send(probe, call_data("fail(string)", "no"), gas=100_000)["status"] == "0x0"
        assert send(ledger, onchain.encode_batch(entries[4:]))["status"] == "0x1"
        head = int(rpc(url, "eth_blockNumber"), 16)

        report = tmp_path / "report.json"
        done = subprocess.run(
            [str(Path(sys.executable).parent / "smartta-observer"), "verify", "--rpc", url,
             "--genesis", str(directory / "genesis.json"), "--to", str(head), "--replay",
             "--ledger", ledger, "--no-checkpoint", "--quiet", "--report", str(report)],
            capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        verified = json.loads(report.read_text())
        assert verified["ok"] and verified["recordsVerified"] == 8
        assert verified["replay"]["blocks"] == head
        assert verified["replay"]["transactions"] == nonce
        state_root = rpc(url, "eth_getBlockByNumber", hex(head), False)["stateRoot"]
        assert verified["replay"]["stateRoot"] == state_root
