"""The same ape scripts, unchanged, on our 4-validator QBFT devnet (ape's `smartta-local`
network): the ledger, its roles, the T-REX suite with our modules, an investor's KYC, and a
subscription's attested events; reruns send nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from devnet import PASSWORD, devnet, smartta

from node.network import local

ROOT = Path(__file__).resolve().parents[2]
APE = ROOT / ".venv" / "bin" / "ape"
NETWORK = ["--network", "ethereum:smartta-local"]
INVESTOR = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(APE), "run", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_scripts_deploy_and_record_on_the_qbft_devnet(tmp_path):
    directory = tmp_path / "local"
    with devnet(directory, chain_id=2026) as spec:  # ape-config's smartta-local is chain 2026
        addresses = {}
        for alias in ("deployer", "kyc-issuer", "writer", "ta", "fund-admin"):
            smartta("network", "account", "--dir", str(directory), "--alias", alias)
            keystore = json.loads((directory / "accounts" / f"{alias}.json").read_text())
            addresses[alias] = "0x" + keystore["address"].lower().removeprefix("0x")
        env = {**os.environ, "SMARTTA_LOCAL_RPC_URL": local.url_of(spec.node("validator-1")),
               "SMARTTA_NETWORK_DIR": str(directory), "SMARTTA_KEYSTORE_PASSWORD": PASSWORD}
        steps = [
            ["deploy_ledger", *NETWORK],
            ["grant_writer", *NETWORK, "--writer", addresses["writer"],
             "--attester", addresses["ta"], "--attester", addresses["fund-admin"]],
            ["deploy_trex", *NETWORK],
            ["register_investor", *NETWORK, "--wallet", INVESTOR, "--country", "442"],
        ]
        outputs = [_run(env, *step) for step in steps]
        assert "verified for FUND-A" in outputs[-1]
        story = _run(env, "record_events", *NETWORK, "--story")
        assert ": 7 records, head 0x" in story
        record = json.loads((directory / "deployments.json").read_text())
        assert record["chain_id"] == 2026
        assert {"CeFiEventLedger", "TREXFactory", "DeFiCeFiBridge"} <= set(record["contracts"])
        deployer = addresses["deployer"]
        url = env["SMARTTA_LOCAL_RPC_URL"]
        sent = local.rpc(url, "eth_getTransactionCount", [deployer, "latest"])
        for step in steps:
            _run(env, *step)
        assert local.rpc(url, "eth_getTransactionCount", [deployer, "latest"]) == sent
