"""`smartta network doctor`: a clean network passes; each planted fault is named with its fix."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from chain.attest.keys import write_keystore
from chain.cli import main
from chain.qbft.genesis import Genesis
from node.network.doctor import diagnose
from node.network.init import default_spec, init_network
from node.network.spec import NetworkSpec

from .netchain import FAST, PASSWORD, chain_for, serving


def _checks(net, **kw):
    report = diagnose(net, live_checks=kw.pop("live_checks", False), **kw)
    return report, {(f.check, f.subject) for f in report.findings}


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


def test_a_freshly_initialised_network_has_no_findings(net):
    report, found = _checks(net)
    assert report.ok and found == set(), report.findings


def test_a_replaced_validator_key_is_named_before_the_node_starts(net):
    victim = net / "keys" / "validator-3"
    for f in victim.iterdir():
        f.unlink()
    write_keystore(victim / "key.json", b"\x42" * 32, PASSWORD, scrypt_n=FAST)
    (victim / "key.pub").write_text("0x" + "11" * 64)
    report, found = _checks(net)
    problems = " ".join(f.problem for f in report.findings if f.subject == "validator-3")
    assert ("keys", "validator-3") in found and not report.ok
    assert "not in the genesis validator set" in problems and "network.yaml says" in problems


def test_a_missing_validator_key_is_an_error_that_says_restore_not_regenerate(net):
    for f in (net / "keys" / "validator-2").iterdir():
        f.unlink()
    report, _ = _checks(net)
    finding = next(f for f in report.findings if f.subject == "validator-2")
    assert finding.severity == "error" and "restore the key from your backup" in finding.fix


def test_a_genesis_that_is_not_the_locked_one_is_named(net):
    _edit_json(net / "genesis.json", lambda g: g.update(gasLimit="0x1"))
    report, found = _checks(net)
    assert ("genesis", "genesis.json") in found
    assert any("the lock says" in f.problem for f in report.findings)


def test_a_hand_edited_generated_file_is_drift(net):
    path = net / "kubernetes" / "base" / "services.yaml"
    text = path.read_text()
    path.write_text(text.replace("publishNotReadyAddresses: true", "publishNotReadyAddresses: false"))
    _, found = _checks(net)
    assert found == {("drift", "kubernetes/base/services.yaml")}


def test_a_spec_changed_after_init_leaves_generated_files_stale(net):
    data = yaml.safe_load((net / "network.yaml").read_text())
    data["organisations"][0]["nodes"][4]["host"] = "10.1.2.3"  # the observer moves
    (net / "network.yaml").write_text(yaml.safe_dump(data))
    report, found = _checks(net)
    assert ("drift", "network.yaml") in found
    assert any("run `smartta network init" in f.fix for f in report.findings)


def test_a_node_without_min_gas_price_zero_on_a_free_gas_chain_is_named(net):
    path = net / "besu" / "validator-2" / "config.toml"
    path.write_text(path.read_text().replace("min-gas-price = 0\n", ""))
    report, found = _checks(net)
    assert ("free-gas", "besu/validator-2/config.toml") in found
    assert any("Besu #572" in f.fix for f in report.findings)


def test_round_timeouts_too_tight_for_the_block_period_are_named(tmp_path):
    spec = default_spec("tight", validators=4, observers=0, chain_id=77, block_period=5, request_timeout=10,
                        organisation="o", seeded=True)
    init_network(tmp_path, spec, PASSWORD, scrypt_n=FAST)
    _edit_json(tmp_path / "genesis.json", lambda g: g["config"]["qbft"].update(requesttimeoutseconds=6))
    report, found = _checks(tmp_path)
    assert ("timeouts", "genesis.json") in found
    assert any("less than twice" in f.problem for f in report.findings)


def test_an_allowlist_missing_a_node_is_named(net):
    path = net / "besu" / "permissions_config.toml"
    spec = NetworkSpec.load(net)
    lines = [ln for ln in path.read_text().splitlines()]
    victim = spec.node("validator-1").public_key[2:]
    path.write_text("\n".join(ln.replace(f'"enode://{victim}@127.0.0.1:30303", ', "") for ln in lines) + "\n")
    report, found = _checks(net)
    assert ("allowlist", "besu/permissions_config.toml") in found
    assert any("validator-1 is missing (a bootnode" in f.problem for f in report.findings)


def test_an_option_the_targeted_besu_removed_is_named_with_its_release(net):
    path = net / "besu" / "rpc-1" / "config.toml"
    text = path.read_text().replace('rpc-http-api = ["ETH", ', 'rpc-http-api = ["EEA", "ETH", ')
    path.write_text(text + "privacy-enabled = true\n")
    report, _ = _checks(net)
    messages = [f.problem for f in report.findings if f.check == "besu-options"]
    assert any("value EEA was removed in Besu 25.7.0" in m for m in messages)
    assert any("'privacy-enabled' was removed in Besu 25.6.0" in m for m in messages)


def test_running_nodes_on_the_right_chain_pass_the_live_checks(net):
    spec = NetworkSpec.load(net)
    with serving(chain_for(net, spec)) as url:
        report = diagnose(net, urls={n.name: url for n in spec.nodes})
    assert report.ok and report.findings == [] and report.notes == []


def test_a_live_node_on_another_genesis_is_named(net, tmp_path):
    spec = NetworkSpec.load(net)
    other = json.loads((net / "genesis.json").read_text())
    other["timestamp"] = "0x10"  # another chain: the genesis header differs
    with serving(chain_for(net, spec, genesis=Genesis(other))) as url:
        report = diagnose(net, urls={"validator-2": url}, timeout=1)
    finding = next(f for f in report.findings if f.check == "live")
    assert finding.subject == "validator-2" and "another chain" in finding.fix
    assert any("not answering" in n for n in report.notes)  # the others are not running


def test_a_live_node_with_another_validator_set_is_named(net):
    spec = NetworkSpec.load(net)
    chain = chain_for(net, spec)
    dropped = chain.validator_sets[-1][0]
    chain.validator_sets.append(chain.validator_sets[-1][1:])
    chain.add_blocks(1)
    with serving(chain) as url:
        report = diagnose(net, urls={"validator-1": url}, timeout=1)
    finding = next(f for f in report.findings if f.check == "live")
    assert "0x" + dropped.hex() in finding.problem and "not validators on chain" in finding.problem


def test_cli_exits_non_zero_and_prints_json_findings(net):
    path = net / "besu" / "validator-2" / "config.toml"
    path.write_text(path.read_text() + "Xsnapsync-bft-enabled = true\n")
    result = CliRunner().invoke(main, ["network", "doctor", "--dir", str(net), "--offline", "--json"])
    assert result.exit_code == 1
    out = json.loads(result.output)
    assert not out["ok"] and {f["check"] for f in out["findings"]} == {"besu-options", "drift"}
    table = CliRunner().invoke(main, ["network", "doctor", "--dir", str(net), "--offline"])
    assert table.exit_code == 1 and "2 error(s), 0 warning(s)" in table.output


@pytest.mark.parametrize("value", ["validator-1", "validator-1=ftp://x"])
def test_a_malformed_rpc_override_says_the_form_it_wants(net, value):
    result = CliRunner().invoke(main, ["network", "doctor", "--dir", str(net), "--rpc", value])
    assert result.exit_code == 2 and "NODE=URL" in result.output
