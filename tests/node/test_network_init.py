"""`smartta network init`: spec, keys, genesis and lock, and what re-running must never do."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from chain.attest.keys import open_keystore
from chain.cli import main
from chain.qbft.genesis import Genesis
from node.network.init import default_spec, init_network
from node.network.spec import NetworkSpec, SpecError

FAST = 2**10  # scrypt work factor for test keys only


def _init(tmp_path, **kw):
    spec = default_spec("t", validators=kw.pop("validators", 4), observers=kw.pop("observers", 1),
                        chain_id=4242, block_period=1, request_timeout=None, organisation="o",
                        **kw)
    return init_network(tmp_path, spec, "pw", scrypt_n=FAST)


def test_init_writes_keys_whose_addresses_are_the_genesis_validators(tmp_path):
    spec, genesis = _init(tmp_path)
    assert sorted(genesis.validators) == sorted(bytes.fromhex(n.address[2:]) for n in spec.validators)
    for n in spec.nodes:
        signer = open_keystore(tmp_path / "keys" / n.name / "key.json", "pw")
        assert "0x" + signer.address.hex() == n.address
    assert Genesis.load(tmp_path / "genesis.json").hash == genesis.hash
    lock = json.loads((tmp_path / "network.lock").read_text())
    assert lock["genesis_hash"] == "0x" + genesis.hash.hex()


def test_fresh_keys_differ_between_networks_and_seeded_keys_repeat(tmp_path):
    a, _ = _init(tmp_path / "a")
    b, _ = _init(tmp_path / "b")
    assert {n.address for n in a.nodes}.isdisjoint({n.address for n in b.nodes})
    c, gc = _init(tmp_path / "c", seeded=True)
    d, gd = _init(tmp_path / "d", seeded=True)
    assert [n.address for n in c.nodes] == [n.address for n in d.nodes] and gc.hash == gd.hash


def test_rerunning_init_keeps_every_key_and_the_genesis(tmp_path):
    _spec, genesis = _init(tmp_path)
    before = {p: p.read_bytes() for p in (tmp_path / "keys").rglob("key.json")}
    _again, genesis2 = init_network(tmp_path, NetworkSpec.load(tmp_path), "pw", scrypt_n=FAST)
    assert genesis2.hash == genesis.hash
    assert {p: p.read_bytes() for p in (tmp_path / "keys").rglob("key.json")} == before


def test_a_spec_change_that_would_change_the_genesis_is_refused(tmp_path):
    _init(tmp_path)
    data = yaml.safe_load((tmp_path / "network.yaml").read_text())
    data["chain_id"] = 4343
    (tmp_path / "network.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="new chain"):
        init_network(tmp_path, NetworkSpec.load(tmp_path), "pw", scrypt_n=FAST)


def test_a_replaced_validator_key_is_caught_before_it_strands_the_network(tmp_path):
    _init(tmp_path)
    victim = tmp_path / "keys" / "validator-2"
    for f in victim.iterdir():
        f.unlink()
    victim.rmdir()
    with pytest.raises(SpecError, match="restore the right key file"):
        init_network(tmp_path, NetworkSpec.load(tmp_path), "pw", scrypt_n=FAST)


def _set(path: str, value):
    def apply(data):
        *parents, last = path.split(".")
        target = data
        for p in parents:
            target = target[p]
        target[last] = value
    return apply


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        (_set("consensus.request_timeout_seconds", 1), "twice"),
        (_set("dev_mode", True), "exactly one validator"),
        (_set("chain_id", 0), "positive"),
        (_set("gas.limit", 10), "gas.limit"),
        (_set("consensus.block_period", 1), "misspelt"),
        (_set("organisations", []), "no validator"),
    ],
)
def test_bad_specs_name_the_field_and_the_fix(tmp_path, patch, reason):
    _init(tmp_path)
    data = yaml.safe_load((tmp_path / "network.yaml").read_text())
    patch(data)
    (tmp_path / "network.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=reason):
        NetworkSpec.load(tmp_path)


def test_cli_init_uses_the_password_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTTA_KEYSTORE_PASSWORD", "pw")
    result = CliRunner().invoke(main, ["network", "init", "--dir", str(tmp_path / "n"),
                                       "--validators", "1", "--dev", "--seeded"])
    assert result.exit_code == 0, result.output
    assert "throwaway" in result.output
    assert NetworkSpec.load(tmp_path / "n").dev_mode


def test_free_base_port_skips_a_base_where_any_node_port_is_taken():
    import socket

    from node.network.init import free_base_port, node_ports

    with socket.socket() as held:  # the second node's RPC WebSocket port of base 20000
        held.bind(("127.0.0.1", node_ports(20_000, 1)[2]))
        assert free_base_port(2, [20_000, 20_100]) == 20_100
        with pytest.raises(RuntimeError, match="no --base-port"):
            free_base_port(2, [20_000])
