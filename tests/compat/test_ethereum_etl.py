"""ethereum-etl, unchanged, exports blocks, transactions, receipts and logs from the node.

ethereum-etl 2.4.2 pins web3 5, which clashes with ours, so it lives in a virtualenv of its own,
built on first use under ~/.cache/smartta (never in the repository); building it takes about two
minutes, hence ``slow``. On our Python (>= 3.11) its eth-abi 2 needs parsimonious 0.9 (0.8 calls
the removed ``inspect.getargspec``); the grammar API it uses is unchanged in 0.9.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ETL = "ethereum-etl==2.4.2"


def etl_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "smartta"
    venv = cache / f"ethereum-etl-2.4.2-py{sys.version_info.major}{sys.version_info.minor}"
    exe = venv / "bin" / "ethereumetl"
    if exe.exists():
        return exe
    cache.mkdir(parents=True, exist_ok=True)
    building = venv.with_name(venv.name + ".building")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(building)], check=True)
    pip = [str(building / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, ETL], check=True, timeout=900)
    subprocess.run([*pip, "--no-deps", "parsimonious==0.9.0", "regex"], check=True, timeout=300)
    building.rename(venv)  # only a complete environment is ever reused
    # venv scripts name their interpreter by absolute path: point them at the final location
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            text = script.read_bytes()
            if text.startswith(b"#!") and str(building).encode() in text:
                script.write_bytes(text.replace(str(building).encode(), str(venv).encode()))
    return exe


def rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_ethereum_etl_exports_blocks_transactions_receipts_and_logs(devnet, recorder, tmp_path):
    exe = etl_venv()
    w3 = Web3(Web3.HTTPProvider(devnet.url))
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    account = Account.from_key(devnet.accounts[2][1])

    def send(tx: dict) -> dict:
        tx = {**tx, "from": account.address, "chainId": devnet.chain_id,
              "nonce": w3.eth.get_transaction_count(account.address, "pending")}
        if "gas" not in tx:
            tx["gas"] = w3.eth.estimate_gas(tx)
        return w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))

    factory = w3.eth.contract(abi=recorder["abi"], bytecode=recorder["bytecode"])
    deployed = send(factory.constructor().build_transaction({"from": account.address, "gas": 2_000_000}))
    contract = w3.eth.contract(address=deployed.contractAddress, abi=recorder["abi"])
    recorded = send(contract.functions.record("for the etl").build_transaction(
        {"from": account.address, "gas": 200_000}))
    head = w3.eth.block_number

    common = ["--provider-uri", devnet.url]
    subprocess.run([str(exe), "export_blocks_and_transactions", "--start-block", "0", "--end-block",
                    str(head), "--blocks-output", str(tmp_path / "blocks.csv"), "--transactions-output",
                    str(tmp_path / "txs.csv"), *common], check=True, timeout=300, capture_output=True)
    blocks = rows(tmp_path / "blocks.csv")
    assert [int(b["number"]) for b in blocks] == list(range(head + 1))
    for b in blocks:
        assert b["hash"] == w3.eth.get_block(int(b["number"])).hash.to_0x_hex()
    txs = rows(tmp_path / "txs.csv")
    ours = {t["hash"]: t for t in txs}
    assert recorded.transactionHash.to_0x_hex() in ours
    assert ours[recorded.transactionHash.to_0x_hex()]["from_address"] == account.address.lower()

    (tmp_path / "hashes.txt").write_text("\n".join(t["hash"] for t in txs) + "\n")
    subprocess.run([str(exe), "export_receipts_and_logs",
                    "--transaction-hashes", str(tmp_path / "hashes.txt"),
                    "--receipts-output", str(tmp_path / "receipts.csv"),
                    "--logs-output", str(tmp_path / "logs.csv"), *common],
                   check=True, timeout=300, capture_output=True)
    receipts = {r["transaction_hash"]: r for r in rows(tmp_path / "receipts.csv")}
    creation = receipts[deployed.transactionHash.to_0x_hex()]
    assert creation["contract_address"] == deployed.contractAddress.lower()
    assert receipts[recorded.transactionHash.to_0x_hex()]["status"] == "1"
    logs = [entry for entry in rows(tmp_path / "logs.csv")
            if entry["transaction_hash"] == recorded.transactionHash.to_0x_hex()]
    assert len(logs) == 1 and logs[0]["address"] == deployed.contractAddress.lower()
    assert logs[0]["topics"].split(",")[0] == Web3.keccak(text="Recorded(address,uint256,string)").to_0x_hex()
