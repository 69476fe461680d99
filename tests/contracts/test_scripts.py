"""The four ape scripts against a real node (anvil from npm), as an operator runs them:
free gas from zero-balance keystore accounts, idempotent reruns, and clear refusals."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.attest.keys import write_keystore

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
APE = ROOT / ".venv" / "bin" / "ape"
NETWORK = ["--network", "ethereum:smartta-anvil"]
WRITER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ATTESTER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
INVESTOR = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"

pytestmark = pytest.mark.skipif(not ANVIL.exists() or not APE.exists(),
                                reason="needs npm's anvil and ape (make setup)")


def rpc(url: str, method: str, *params: object) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    req = urllib.request.Request(url, body.encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["result"]


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A free-gas anvil (base fee 0, no priority fee: eth_gasPrice is 0, like the devnet) and a
    network folder with two fresh keystores that hold no ether at all."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(ANVIL), "--port", str(port), "--silent", "--base-fee", "0",
                             "--gas-price", "0", "--no-priority-fee", "--gas-limit", "60000000"])
    url = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("network")
    for alias in ("deployer", "kyc-issuer"):
        write_keystore(folder / "accounts" / f"{alias}.json", os.urandom(32), "test password",
                       scrypt_n=2**10)
    try:
        for _ in range(100):
            try:
                rpc(url, "eth_chainId")
                break
            except OSError:
                time.sleep(0.1)
        yield {**os.environ, "SMARTTA_ANVIL_RPC_URL": url, "SMARTTA_NETWORK_DIR": str(folder),
               "SMARTTA_KEYSTORE_PASSWORD": "test password"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def ape_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(APE), "run", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)


def ok(env: dict[str, str], *args: str) -> str:
    done = ape_run(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def deployer_nonce(env: dict[str, str]) -> int:
    folder = Path(env["SMARTTA_NETWORK_DIR"])
    address = json.loads((folder / "accounts" / "deployer.json").read_text())["address"]
    return int(str(rpc(env["SMARTTA_ANVIL_RPC_URL"], "eth_getTransactionCount", "0x" + address,
                       "latest")), 16)


def test_scripts_deploy_everything_with_free_gas_and_reruns_change_nothing(node):
    steps = [
        ["deploy_ledger", *NETWORK],
        ["grant_writer", *NETWORK, "--writer", WRITER, "--attester", ATTESTER],
        ["deploy_trex", *NETWORK],
        ["register_investor", *NETWORK, "--wallet", INVESTOR, "--country", "442"],
    ]
    outputs = [ok(node, *step) for step in steps]
    assert "verified for FUND-A" in outputs[-1]
    record_path = Path(node["SMARTTA_NETWORK_DIR"]) / "deployments.json"
    record = json.loads(record_path.read_text())
    assert record["chain_id"] == 31337
    assert {"CeFiEventLedger", "TREXFactory", "DeFiCeFiBridge", "ClaimIssuer",
            "module/MaxHolders"} <= set(record["contracts"])
    assert record["investors"]["FUND-A"][INVESTOR]["country"] == 442

    sent = deployer_nonce(node)
    assert "already held by" in ok(node, *steps[1])
    ok(node, *steps[2])
    assert "verified for FUND-A" in ok(node, *steps[3])
    assert deployer_nonce(node) == sent, "a rerun sent transactions"
    assert json.loads(record_path.read_text()) == record


@pytest.mark.slow
def test_scripts_refuse_clearly_and_change_nothing(node):
    ok(node, "deploy_ledger", *NETWORK)
    cases = [
        ({**node, "SMARTTA_KEYSTORE_PASSWORD": "wrong"}, ["deploy_ledger", *NETWORK],
         "wrong password for keystore"),
        (node, ["grant_writer", *NETWORK, "--writer", WRITER, "--account", "kyc-issuer"],
         "lacks DEFAULT_ADMIN_ROLE"),
        (node, ["deploy_ledger", "--network", "ethereum:local"], "ape's throwaway test chain"),
        (node, ["deploy_ledger", *NETWORK, "--account", "nobody"], "no keystore for account"),
        (node, ["register_investor", *NETWORK, "--wallet", INVESTOR, "--country", "442",
                "--fund", "NOPE"], "no fund 'NOPE'"),
    ]
    for env, args, message in cases:
        done = ape_run(env, *args)
        assert done.returncode != 0 and message in done.stdout + done.stderr, done.stderr[-800:]
    # the network starts charging for gas: a zero-balance account is refused before sending
    rpc(node["SMARTTA_ANVIL_RPC_URL"], "anvil_setNextBlockBaseFeePerGas", hex(10**9))
    rpc(node["SMARTTA_ANVIL_RPC_URL"], "evm_mine")
    sent = deployer_nonce(node)
    done = ape_run(node, "grant_writer", *NETWORK, "--writer", ATTESTER)
    assert done.returncode != 0 and "holds 0 wei" in done.stdout + done.stderr
    assert deployer_nonce(node) == sent
