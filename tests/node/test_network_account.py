"""`smartta network account`: keystores for the ape scripts, never replaced."""

from __future__ import annotations

import json

from click.testing import CliRunner

from chain.attest.keys import open_keystore
from chain.cli import main


def test_account_is_created_once_and_seeded_networks_repeat_the_address(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTTA_KEYSTORE_PASSWORD", "pw")
    addresses = []
    for run in ("a", "b"):
        d = tmp_path / run / "net"  # the same network name, so the same seed
        assert CliRunner().invoke(main, ["network", "init", "--dir", str(d), "--validators", "1",
                                         "--dev", "--seeded"]).exit_code == 0
        result = CliRunner().invoke(main, ["network", "account", "--dir", str(d), "--alias",
                                           "deployer"])
        assert result.exit_code == 0, result.output
        path = d / "accounts" / "deployer.json"
        addresses.append(open_keystore(path, "pw").address)
        before = path.read_bytes()
        again = CliRunner().invoke(main, ["network", "account", "--dir", str(d), "--alias",
                                          "deployer"])
        assert "kept" in again.output and path.read_bytes() == before
    assert addresses[0] == addresses[1]
    assert json.loads((tmp_path / "a" / "net" / "accounts" / "deployer.json").read_text())["crypto"]
