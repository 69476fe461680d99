"""`smartta network health`: what running nodes report, signed with the operator's key; a report
verifies only unchanged, by its signer, and about the network it claims."""

from __future__ import annotations

import copy
import json

import pytest
import rfc8785
from click.testing import CliRunner
from eth_account import Account
from eth_account.messages import encode_defunct

from chain.attest import keys
from chain.attest.keys import LocalSigner
from chain.cli import main
from node.network import health
from node.network.init import read_lock
from node.network.spec import NetworkSpec

from .netchain import PASSWORD, chain_for, serving

OPERATOR = LocalSigner(b"\x07" * 32)


@pytest.fixture
def report(net):
    spec = NetworkSpec.load(net)
    validators = sorted(n.address for n in spec.validators)
    skipped = bytes.fromhex(validators[2][2:])
    with serving(chain_for(net, spec, 8, skip=[skipped])) as url:
        yield health.collect(spec, read_lock(net), urls={"validator-1": url}, timeout=1, now=1_800_000_000)


def test_report_carries_height_head_age_peers_validators_signer_metrics_and_hashes(net, report):
    lock = read_lock(net)
    node = report["nodes"][0]
    assert node["name"] == "validator-1" and node["reachable"]
    assert node["height"] == 8 and node["peers"] == 3 and node["ready"]
    assert node["head_age_seconds"] == 1_800_000_000 - node["head_timestamp"]
    assert node["genesis_hash"] == report["genesis_hash"] == lock["genesis_hash"]
    assert node["validators"] == report["expected_validators"]
    proposed = {m["address"]: m["proposed_blocks"] for m in node["signer_metrics"]}
    assert proposed[report["expected_validators"][2]] == 0 and sum(proposed.values()) == 8
    assert report["config_hashes"] == lock["files"]
    assert all(not n["reachable"] for n in report["nodes"][1:])
    assert any("proposed no block" in p for p in health.problems(report))


def test_a_signed_report_verifies_and_any_tool_recovers_the_signer(net, report):
    signed = health.sign(report, OPERATOR)
    assert health.verify(signed, signer="0x" + OPERATOR.address.hex(), lock=read_lock(net))["nodes"]
    message = encode_defunct(primitive=rfc8785.dumps(signed["report"]))
    assert Account.recover_message(message, signature=bytes.fromhex(signed["signature"][2:])) \
        .lower() == "0x" + OPERATOR.address.hex()


@pytest.mark.parametrize(("tamper", "reason"), [
    (lambda d: d["report"]["nodes"][0].update(height=9), "changed after signing"),
    (lambda d: d["report"].update(signer="0x" + "11" * 20), "changed after signing"),
    (lambda d: d.update(signature="0x" + "00" * 65), "does not verify"),
    (lambda d: d.update(signature="0x1234"), "does not verify"),
    (lambda d: d.pop("report"), "not a signed health report"),
])
def test_a_tampered_report_does_not_verify(report, tamper, reason):
    signed = health.sign(report, OPERATOR)
    bad = copy.deepcopy(signed)
    tamper(bad)
    with pytest.raises(health.HealthError, match=reason):
        health.verify(bad)


def test_a_report_signed_by_someone_else_or_about_other_configs_is_refused(net, report):
    signed = health.sign(report, LocalSigner(b"\x08" * 32))
    with pytest.raises(health.HealthError, match="not by the expected operator"):
        health.verify(signed, signer="0x" + OPERATOR.address.hex())
    lock = read_lock(net)
    lock["files"]["besu/static-nodes.json"] = "0" * 64
    with pytest.raises(health.HealthError, match="besu/static-nodes.json"):
        health.verify(health.sign(report, OPERATOR), lock=lock)


def test_a_consistently_resigned_lie_about_a_nodes_genesis_is_caught(report):
    lie = copy.deepcopy(report)
    lie["nodes"][0]["genesis_hash"] = "0x" + "ab" * 32
    with pytest.raises(health.HealthError, match="reports genesis"):
        health.verify(health.sign(lie, OPERATOR))


def test_cli_signs_with_the_operator_key_and_verifies_the_file(net, monkeypatch):
    monkeypatch.setenv("SMARTTA_KEYSTORE_PASSWORD", PASSWORD)
    real = keys.encrypt_keystore
    monkeypatch.setattr(keys, "encrypt_keystore",  # fast scrypt: the work factor is not under test
                        lambda secret, password, scrypt_n=None: real(secret, password, scrypt_n=2**10))
    runner = CliRunner()
    assert runner.invoke(main, ["network", "operator-key", "--dir", str(net)]).exit_code == 0
    again = runner.invoke(main, ["network", "operator-key", "--dir", str(net)])
    assert again.exit_code == 1 and "never replaced" in again.output
    spec = NetworkSpec.load(net)
    out = net / "health.json"
    with serving(chain_for(net, spec)) as url:
        result = runner.invoke(main, ["network", "health", "--dir", str(net), "--sign", "--out", str(out),
                                      "--timeout", "1", *[f"--rpc={n.name}={url}" for n in spec.nodes]])
    assert result.exit_code == 0, result.output
    verified = runner.invoke(main, ["network", "health", "--dir", str(net), "--verify", str(out)])
    assert verified.exit_code == 0 and "valid" in verified.output, verified.output
    doc = json.loads(out.read_text())
    doc["report"]["nodes"][1]["peers"] = 99
    out.write_text(json.dumps(doc))
    refused = runner.invoke(main, ["network", "health", "--dir", str(net), "--verify", str(out)])
    assert refused.exit_code == 1 and "changed after signing" in refused.output
