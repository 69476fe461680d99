"""docs/operators.md shows working commands: every `smartta` line of its bash blocks runs, in
order, in an empty folder, and succeeds."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml
from click.testing import CliRunner

from chain.attest import keys
from chain.cli import main

DOC = Path(__file__).parents[3] / "docs" / "operators.md"


def _commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip().startswith("smartta ")]


def test_every_smartta_command_in_the_operators_guide_succeeds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SMARTTA_KEYSTORE_PASSWORD", "pw")
    real = keys.encrypt_keystore
    monkeypatch.setattr(keys, "encrypt_keystore",  # fast scrypt: the work factor is not under test
                        lambda secret, password, scrypt_n=None: real(secret, password, scrypt_n=2**10))
    commands = _commands()
    assert len(commands) >= 10
    runner = CliRunner()
    for i, line in enumerate(commands):
        if "<GENESIS_HASH>" in line:
            line = line.replace("<GENESIS_HASH>", json.loads(Path("networks/acme/network.lock").read_text())
                                ["genesis_hash"])
        if i == 1:  # after init: give the network an RPC tier, as the guide suggests for tokens
            spec = yaml.safe_load(Path("networks/acme/network.yaml").read_text())
            spec["organisations"][0]["nodes"].append({"name": "rpc-1", "roles": ["rpc"], "p2p_port": 30400,
                                                      "rpc_http_port": 8645, "rpc_ws_port": 8646,
                                                      "metrics_port": 9645})
            Path("networks/acme/network.yaml").write_text(yaml.safe_dump(spec))
            assert runner.invoke(main, ["network", "init", "--dir", "networks/acme"]).exit_code == 0
        result = runner.invoke(main, shlex.split(line)[1:])
        assert result.exit_code == 0, f"{line}\n{result.output}"
    assert Path("health.json").exists() and Path("networks/acme-fa/join-request.json").exists()
