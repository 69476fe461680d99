"""ape, unchanged, against the node: a custom network in ape-config.yaml pointing at it, then
deploy, transact, call, read events and see a revert reason. ape runs in a process of its own
(its configuration and plugins are process-global)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(300)

SCRIPT = textwrap.dedent("""
    import json, sys
    from ape import accounts, networks
    from ape.contracts import ContractContainer
    from ape.exceptions import ContractLogicError
    from ethpm_types import ContractType
    from web3.middleware import ExtraDataToPOAMiddleware

    artifact = json.load(open("Recorder.json"))
    contract_type = ContractType.model_validate({
        "contractName": "Recorder", "abi": artifact["abi"],
        "deploymentBytecode": {"bytecode": artifact["bytecode"]}})
    with networks.parse_network_choice("ethereum:smartta:node") as provider:
        # QBFT extraData (Besu's too) is longer than 32 bytes. ape 0.8 misses that for QBFT
        # chains (has_poa_history swallows web3's formatting error), so add web3's middleware,
        # as one must for a Besu QBFT network.
        poa_detected = provider.has_poa_history
        if ExtraDataToPOAMiddleware not in provider.web3.middleware_onion:
            provider.web3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        owner = accounts.test_accounts[0]
        recorder = ContractContainer(contract_type).deploy(sender=owner)
        receipt = recorder.record("from ape", sender=owner)
        events = [log.note for log in receipt.events]
        try:
            recorder.refuse()
            reverted = None
        except ContractLogicError as err:
            reverted = str(err)
        print(json.dumps({
            "chain_id": provider.chain_id, "address": recorder.address,
            "count": recorder.count(), "note": recorder.lastNote(owner.address),
            "events": events, "reverted": reverted, "status": receipt.status,
            "block": provider.get_block("latest").number, "poa_detected": poa_detected,
        }))
""")


def test_ape_deploys_transacts_and_calls_on_a_custom_network(devnet, recorder, tmp_path):
    (tmp_path / "ape-config.yaml").write_text(textwrap.dedent(f"""
        name: smartta-compat
        networks:
          custom:
            - name: smartta
              chain_id: {devnet.chain_id}
              ecosystem: ethereum
              base_ecosystem_plugin: ethereum
              default_provider: node
        node:
          ethereum:
            smartta:
              uri: {devnet.url}
    """))
    (tmp_path / "Recorder.json").write_text(json.dumps(recorder))
    (tmp_path / "run.py").write_text(SCRIPT)
    out = subprocess.run([sys.executable, "run.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["chain_id"] == devnet.chain_id
    assert result["count"] == 1 and result["note"] == "from ape"
    assert result["events"] == ["from ape"] and result["status"] == 1
    assert "not allowed" in result["reverted"]
    assert result["block"] >= 2
