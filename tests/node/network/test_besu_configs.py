"""Generated Besu files: only options the targeted Besu accepts, role profiles that keep
validators off public RPC, one allowlist for every node, free gas everywhere, Besu's key layout."""

from __future__ import annotations

import json
import tomllib

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from chain.cli import main
from chain.qbft.genesis import Genesis
from chain.qbft.seals import address_of, public_key_of
from node.network import besu, besu_options, kubernetes
from node.network.besu import HOSTS, KUBERNETES, node_config, role_config
from node.network.besu_options import REMOVALS, check_config, known_versions, options_for, values_for
from node.network.spec import NetworkSpec, SpecError

from .netchain import PASSWORD, make_network

VERSIONS = ["24.12.0", "25.3.0", "25.6.0", "25.7.0", "26.2.0", "26.4.0", "26.8.0", "27.1.0"]


def _every_config(spec: NetworkSpec) -> list[tuple[str, dict]]:
    """Each config Besu would load: per host, per Kubernetes role, and the container arguments."""
    out = [(f"host {n.name}", node_config(spec, n, HOSTS)) for n in spec.nodes]
    out += [(f"k8s role {r}", role_config(spec, r, KUBERNETES)) for r in besu.roles_present(spec)]
    for n in spec.nodes:
        args = kubernetes.statefulset(spec, n, "x")["spec"]["template"]["spec"]["containers"][0]["args"]
        opts = dict(a.removeprefix("--").split("=", 1) for a in args)
        opts.pop("config-file")  # a command-line-only option
        out.append((f"k8s args {n.name}", opts))
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_every_generated_config_holds_only_options_the_targeted_besu_accepts(tmp_path, version):
    spec = make_network(tmp_path / "n", besu_version=version)
    configs = _every_config(spec)
    assert {"validator", "rpc", "observer"} <= set(besu.roles_present(spec))
    for where, cfg in configs:
        assert check_config(cfg, version) == [], where
        assert set(cfg) <= options_for(version) | {"config-file"}, where
    on_disk = sorted((tmp_path / "n" / "besu").glob("*/config.toml"))
    assert len(on_disk) == len(spec.nodes)
    for path in on_disk:
        assert check_config(tomllib.loads(path.read_text()), version) == [], path


def _previous(version: str) -> str:
    versions = known_versions()
    older = [v for v in versions if besu_options.parse_version(v) < besu_options.parse_version(version)]
    return older[-1]


@pytest.mark.parametrize("removal", REMOVALS, ids=lambda r: f"{r.option}={r.value}@{r.removed_in}")
def test_each_listed_removal_is_what_besus_own_option_lists_show(removal):
    before, at = _previous(removal.removed_in), removal.removed_in
    if removal.value is None:
        assert removal.option in options_for(before) and removal.option not in options_for(at)
    else:
        assert removal.value in values_for(removal.option, before)
        assert removal.value not in values_for(removal.option, at)


QUICKSTART = {  # what quorum-dev-quickstart and quorum-kubernetes still write
    "rpc-http-api": ["EEA", "WEB3", "ETH", "NET", "PRIV", "PERM", "QBFT"],
    "privacy-enabled": True,
    "permissions-nodes-contract-enabled": True,
    "nat-method": "KUBERNETES",
    "Xsnapsync-bft-enabled": True,
    "sync-mode": "FAST",
    "host-whitelist": ["*"],
}


def test_a_quickstart_config_is_refused_for_current_besu_naming_each_removal():
    assert check_config(QUICKSTART, "24.12.0") == []
    problems = check_config(QUICKSTART, "26.8.0")
    text = "\n".join(p.message for p in problems)
    for expected in ("value EEA was removed in Besu 25.7.0", "value PRIV was removed in Besu 25.7.0",
                     "'privacy-enabled' was removed in Besu 25.6.0",
                     "'permissions-nodes-contract-enabled' was removed in Besu 25.6.0",
                     "value KUBERNETES was removed in Besu 25.3.0",
                     "'Xsnapsync-bft-enabled' was removed in Besu 25.7.0",
                     "value FAST was removed in Besu 26.2.0", "'host-whitelist' was removed in Besu 25.1.0"):
        assert expected in text
    assert len(problems) == 8
    assert "no option 'rpc-http-apix'" in check_config({"rpc-http-apix": ["ETH"]}, "26.8.0")[0].message


def test_a_besu_older_than_the_option_table_cannot_be_targeted(tmp_path):
    make_network(tmp_path / "n")
    data = yaml.safe_load((tmp_path / "n" / "network.yaml").read_text())
    data["besu_version"] = "23.4.1"
    (tmp_path / "n" / "network.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="older than 24.12.0"):
        NetworkSpec.load(tmp_path / "n")


def test_validators_keep_rpc_private_and_the_rpc_tier_requires_jwt_and_named_hosts(net):
    spec = NetworkSpec.load(net)
    for n in spec.nodes:
        cfg = node_config(spec, n)
        apis = set(cfg["rpc-http-api"])
        assert not apis & {"DEBUG", "TRACE", "EEA", "PRIV", "CLIQUE"}
        assert "*" not in cfg["host-allowlist"]
        if n.is_validator or n.is_observer:
            assert cfg["rpc-http-host"] == "127.0.0.1"
            assert not any(k.startswith("rpc-http-authentication") for k in cfg)
        if "rpc" in n.roles:
            assert apis == {"ETH", "NET", "TXPOOL", "WEB3"}
            assert cfg["rpc-http-authentication-enabled"] and cfg["rpc-ws-authentication-enabled"]
            assert cfg["rpc-http-authentication-jwt-algorithm"] == "ES256"
            assert "rpc.example.org" in cfg["host-allowlist"]
    assert (net / "besu" / "rpc-jwt-public.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_free_gas_is_the_same_on_the_genesis_and_every_node(net):
    assert Genesis.load(net / "genesis.json").zero_base_fee
    for path in (net / "besu").glob("*/config.toml"):
        assert tomllib.loads(path.read_text())["min-gas-price"] == 0, path


def test_allowlist_static_nodes_and_bootnodes_name_every_node_by_its_key(net):
    spec = NetworkSpec.load(net)
    keys = {n.public_key[2:] for n in spec.nodes}
    allow = tomllib.loads((net / "besu" / "permissions_config.toml").read_text())["nodes-allowlist"]
    static = json.loads((net / "besu" / "static-nodes.json").read_text())
    assert {e[len("enode://"):].split("@")[0] for e in allow} == keys
    assert allow == static
    for n in spec.nodes:
        assert f"enode://{n.public_key[2:]}@{n.host}:{n.p2p_port}" in allow
        for bootnode in node_config(spec, n)["bootnodes"]:
            assert bootnode in allow  # Besu refuses to start on a bootnode it may not talk to


def test_kubernetes_enodes_use_pod_dns_names_and_dns_resolution_is_on(net):
    spec = NetworkSpec.load(net)
    allow = besu.permissions(spec, KUBERNETES)["nodes-allowlist"]
    assert all(".ta-net-nodes.ta-net.svc.cluster.local:30303" in e for e in allow)
    cfg = role_config(spec, "validator", KUBERNETES)
    assert cfg["Xdns-enabled"] and cfg["Xdns-update-enabled"] and cfg["nat-method"] == "NONE"


def test_exported_besu_key_is_the_node_key_whose_address_is_in_the_spec(net, monkeypatch):
    monkeypatch.setenv("SMARTTA_KEYSTORE_PASSWORD", PASSWORD)
    out = net / "keys" / "export"
    result = CliRunner().invoke(main, ["network", "export-keys", "--dir", str(net), "--node", "validator-2",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    secret = bytes.fromhex((out / "validator-2" / "key").read_text()[2:])
    spec = NetworkSpec.load(net)
    assert "0x" + address_of(secret).hex() == spec.node("validator-2").address
    assert (out / "validator-2" / "key.pub").read_text() == "0x" + public_key_of(secret).hex()
    assert (out / "validator-2" / "key").stat().st_mode & 0o077 == 0
    result = CliRunner().invoke(main, ["network", "export-keys", "--dir", str(net), "--format", "kubernetes",
                                       "--out", str(out / "k8s")])
    assert result.exit_code == 0, result.output
    secret_doc = yaml.safe_load((out / "k8s" / "validator-2-key.yaml").read_text())
    assert secret_doc["metadata"]["name"] == "ta-net-validator-2-key"
    assert secret_doc["stringData"]["nodekey"] == "0x" + secret.hex()


def test_a_wrong_password_exports_nothing_and_says_which_variable_to_check(net, monkeypatch):
    monkeypatch.setenv("SMARTTA_KEYSTORE_PASSWORD", "not-it")
    result = CliRunner().invoke(main, ["network", "export-keys", "--dir", str(net), "--out", str(net / "x")])
    assert result.exit_code != 0 and "SMARTTA_KEYSTORE_PASSWORD" in result.output
    assert not list((net / "x").glob("*/key"))


toml_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
toml_values = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), toml_text,
                        st.lists(toml_text, max_size=4))


@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,30}", fullmatch=True), toml_values,
                       max_size=8))
def test_toml_writer_round_trips_through_a_toml_parser(table):
    assert tomllib.loads(besu.to_toml(table, "a header\nof two lines")) == table


def test_a_spec_written_before_these_fields_existed_still_loads_and_keeps_its_genesis(net):
    data = yaml.safe_load((net / "network.yaml").read_text())
    for key in ("rpc_auth", "genesis_validators", "kubernetes"):
        data.pop(key)
    for org in data["organisations"]:
        for node in org["nodes"]:
            node.pop("remote")
            node.pop("host_allowlist")
    data["besu_version"] = "26.3.0"  # the old default: a release candidate, checked as 26.2.0
    (net / "network.yaml").write_text(yaml.safe_dump(data))
    before = json.loads((net / "network.lock").read_text())["genesis_hash"]
    from node.network.init import init_network

    spec, genesis = init_network(net, NetworkSpec.load(net), PASSWORD)
    assert "0x" + genesis.hash.hex() == before and spec.rpc_auth == "jwt"
    assert besu_options.reference_version("26.3.0") == "26.2.0"
