"""`smartta network join-bundle`: a joining organisation checks the genesis, gets the network's
files plus its own node, and its join request puts it in every allowlist when accepted."""

from __future__ import annotations

import json
import tomllib

import pytest
from click.testing import CliRunner

from chain.cli import main
from node.network import bundle
from node.network.doctor import diagnose
from node.network.init import read_lock
from node.network.spec import NetworkSpec

from .netchain import FAST, PASSWORD


def _join(net, tmp_path, **kw):
    exported = bundle.export(net)
    args = dict(organisation="fund-admin", node_name="fa-validator", role="validator", host="10.9.0.5",
                p2p_port=30303, password=PASSWORD, scrypt_n=FAST)
    args.update(kw)
    return exported, bundle.import_bundle(exported, tmp_path / "joiner", **args)


def test_the_joiner_reproduces_the_networks_genesis_and_asks_to_be_allowed_and_voted_in(net, tmp_path):
    exported, (spec, request) = _join(net, tmp_path, expected_hash=read_lock(net)["genesis_hash"])
    joiner = tmp_path / "joiner"
    assert read_lock(joiner)["genesis_hash"] == exported["genesis_hash"] == read_lock(net)["genesis_hash"]
    assert request["candidate_validator"] == spec.node("fa-validator").address
    assert request["enode"] == f"enode://{spec.node('fa-validator').public_key[2:]}@10.9.0.5:30303"
    assert all(n.remote for n in spec.nodes if n.name != "fa-validator")
    assert not (joiner / "keys" / "validator-1").exists()  # it never holds the others' keys
    allow = tomllib.loads((joiner / "besu" / "permissions_config.toml").read_text())["nodes-allowlist"]
    assert request["enode"] in allow and len(allow) == len(NetworkSpec.load(net).nodes) + 1
    assert json.loads((joiner / "join-request.json").read_text()) == request
    assert diagnose(joiner, live_checks=False).ok


def test_a_bundle_whose_genesis_was_altered_is_refused(net, tmp_path):
    exported = bundle.export(net)
    exported["genesis"]["alloc"]["0x" + "66" * 20] = {"balance": "0x1"}
    with pytest.raises(bundle.BundleError, match="was altered"):
        bundle.check_bundle(exported, None)


def test_a_consistent_bundle_for_another_network_fails_the_out_of_band_hash(net, tmp_path):
    with pytest.raises(bundle.BundleError, match="not the consortium's network"):
        _join(net, tmp_path, expected_hash="0x" + "12" * 32)
    assert not (tmp_path / "joiner" / "network.yaml").exists()


def test_accepting_the_request_allows_the_new_node_everywhere_without_its_key(net, tmp_path):
    _, (_, request) = _join(net, tmp_path)
    before = read_lock(net)["genesis_hash"]
    spec = bundle.accept(net, request, PASSWORD)
    assert spec.node("fa-validator").remote and read_lock(net)["genesis_hash"] == before
    allow = tomllib.loads((net / "besu" / "permissions_config.toml").read_text())["nodes-allowlist"]
    assert request["enode"] in allow
    assert diagnose(net, live_checks=False).ok
    with pytest.raises(bundle.BundleError, match="already has a node"):
        bundle.accept(net, request, PASSWORD)


def test_cli_export_import_and_accept(net, tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTTA_KEYSTORE_PASSWORD", PASSWORD)
    runner = CliRunner()
    path = tmp_path / "bundle.json"
    assert runner.invoke(main, ["network", "join-bundle", "export", "--dir", str(net), "--out", str(path)]
                         ).exit_code == 0
    genesis_hash = read_lock(net)["genesis_hash"]
    result = runner.invoke(main, ["network", "join-bundle", "import", str(path), "--dir", str(tmp_path / "j"),
                                  "--organisation", "fa", "--node", "fa-1", "--role", "observer",
                                  "--host", "10.9.0.6", "--genesis-hash", genesis_hash])
    assert result.exit_code == 0, result.output
    request = tmp_path / "j" / "join-request.json"
    result = runner.invoke(main, ["network", "join-bundle", "accept", str(request), "--dir", str(net)])
    assert result.exit_code == 0, result.output
    assert NetworkSpec.load(net).node("fa-1").roles == ["observer"]
