"""The observer against our real node: a 4-validator devnet with an observer node, started as
processes with ``smartta network up``; the observer verifies it from the genesis file alone,
reading the observer node and comparing a validator's blocks with it. (Slow: five node
processes on this machine's cores.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _smartta(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "smartta"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    directory = tmp_path_factory.mktemp("devnet") / "net"
    env = {**os.environ, "SMARTTA_KEYSTORE_PASSWORD": "observer-tests"}
    init = _smartta("network", "init", "--dir", str(directory), "--validators", "4",
                    "--observers", "1", "--seeded", "--base-port", str(6000 + os.getpid() % 2000),
                    env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    up = _smartta("network", "up", "--dir", str(directory), "--timeout", "150", env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        spec = json.loads(_smartta("network", "status", "--dir", str(directory), "--json",
                                   env=env).stdout)
        urls = {n["name"]: n["rpc_http"] for n in spec["nodes"]}
        yield directory, urls
    finally:
        _smartta("network", "down", "--dir", str(directory), env=env)


def _height(url: str) -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from observer.rpc import RpcSource

    return RpcSource(url).head()


def test_devnet_verifies_through_its_observer_node_and_agrees_with_a_validator(devnet, tmp_path):
    directory, urls = devnet
    deadline = time.monotonic() + 120
    while _height(urls["observer-1"]) < 8 and time.monotonic() < deadline:
        time.sleep(1)
    done = subprocess.run(
        [str(BIN / "smartta-observer"), "verify", "--rpc", urls["observer-1"], "--rpc",
         urls["validator-2"], "--genesis", str(directory / "genesis.json"), "--state-dir",
         str(tmp_path / "s"), "--report", str(tmp_path / "report.json"), "--quiet"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] and report["blocksVerified"] >= 8
    assert report["equivocations"] == []


def test_ledger_on_the_devnet_verifies_and_a_record_proof_checks_offline(devnet, tmp_path):
    """Deploy the real CeFi Event Ledger on the devnet, append attested records through it,
    then verify them with the observer and prove one offline."""
    from eth_abi.abi import encode as abi_encode
    from eth_account import Account
    from eth_hash.auto import keccak
    from eth_utils import to_checksum_address
    from execchain import compiled_ledger, order_entries

    from chain.abc import LedgerDomain
    from chain.attest.keys import LocalSigner
    from chain.ledger import onchain
    from chain.qbft.genesis import Genesis
    from observer.rpc import RpcSource

    directory, urls = devnet
    genesis = Genesis.load(directory / "genesis.json")
    node = RpcSource(urls["validator-1"])
    writer = bytes(keccak(b"observer devnet writer"))
    me = Account.from_key(writer).address
    actor = LocalSigner(bytes(keccak(b"observer devnet actor")))
    nonce = int(node.call("eth_getTransactionCount", [me, "pending"]), 16)

    def send(to: str | None, data: bytes) -> dict:
        nonlocal nonce
        tx = {"nonce": nonce, "gasPrice": 0, "gas": 8_000_000, "value": 0, "data": data,
              "chainId": genesis.chain_id}
        if to is not None:
            tx["to"] = to_checksum_address(to)
        nonce += 1
        raw = Account.sign_transaction(tx, writer).raw_transaction
        tx_hash = node.call("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
        for _ in range(120):
            receipt = node.call("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                assert receipt["status"] == "0x1", receipt
                return receipt
            time.sleep(0.5)
        raise AssertionError(f"transaction {tx_hash} was not mined")

    ct = compiled_ledger()
    code = bytes.fromhex(ct["deploymentBytecode"]["bytecode"][2:])
    address = send(None, code + abi_encode(["address"], [me]))["contractAddress"]
    grant = bytes(keccak(b"grantRole(bytes32,address)"))[:4]
    send(address, grant + abi_encode(["bytes32", "address"], [onchain.WRITER_ROLE, me]))
    send(address, grant + abi_encode(["bytes32", "address"],
                                     [onchain.ATTESTER_ROLE, actor.address]))
    domain = LedgerDomain(genesis.chain_id, bytes.fromhex(address[2:]))
    entries = order_entries(actor, domain, 12)
    send(address, onchain.encode_batch(entries[:5]))
    send(address, onchain.encode_batch(entries[5:]))

    observer = [str(BIN / "smartta-observer")]
    done = subprocess.run([*observer, "verify", "--rpc", urls["observer-1"], "--genesis",
                           str(directory / "genesis.json"), "--ledger", address, "--no-checkpoint",
                           "--report", str(tmp_path / "r.json"), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r.json").read_text())["recordsVerified"] == 12
    proof = tmp_path / "p.json"
    done = subprocess.run([*observer, "prove", "--rpc", urls["observer-1"], "--genesis",
                           str(directory / "genesis.json"), "--ledger", address, "--record", "7",
                           "--out", str(proof)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([*observer, "check-proof", str(proof), "--genesis",
                           str(directory / "genesis.json")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VALID record 7" in " ".join(done.stdout.split())


WRITE_METHODS = [
    ("eth_sendRawTransaction", None), ("eth_sendTransaction", [{"to": "0x" + "11" * 20}]),
    ("qbft_proposeValidatorVote", ["0x" + "22" * 20, True]),
    ("qbft_discardValidatorVote", ["0x" + "22" * 20]),
    ("evm_mine", []), ("evm_snapshot", []), ("evm_revert", ["0x1"]), ("evm_increaseTime", [5]),
    ("evm_setNextBlockTimestamp", [2_000_000_000]), ("hardhat_mine", ["0x1"]),
]


def test_observer_node_refuses_every_write_and_nothing_it_was_sent_lands(devnet):
    from eth_account import Account
    from eth_hash.auto import keccak

    from chain.qbft.genesis import Genesis
    from observer.abc import SourceError
    from observer.rpc import RpcSource

    directory, urls = devnet
    genesis = Genesis.load(directory / "genesis.json")
    observer = RpcSource(urls["observer-1"], retries=0)
    key = bytes(keccak(b"observer write attempt"))
    raw = Account.sign_transaction({"nonce": 0, "gasPrice": 0, "gas": 21000, "value": 0,
                                    "to": "0x" + "33" * 20, "chainId": genesis.chain_id}, key)
    refused = []
    for method, params in WRITE_METHODS:
        args = ["0x" + bytes(raw.raw_transaction).hex()] if params is None else params
        with pytest.raises(SourceError) as caught:
            observer.call(method, args)
        refused.append((method, str(caught.value)))
    assert len(refused) == len(WRITE_METHODS)
    start = RpcSource(urls["validator-1"]).head()
    while RpcSource(urls["validator-1"]).head() < start + 3:
        time.sleep(0.5)
    tx_hash = "0x" + bytes(raw.hash).hex()
    for url in urls.values():
        assert RpcSource(url).call("eth_getTransactionByHash", [tx_hash]) is None
