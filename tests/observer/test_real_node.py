"""The observer against our real node: a 4-validator devnet with an observer node, started as
processes with ``smartta network up``; the observer verifies it from the genesis file alone,
reading the observer node and comparing a validator's blocks with it. (Slow: five node
processes on this machine's cores.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _smartta(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "smartta"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    directory = tmp_path_factory.mktemp("devnet") / "net"
    env = {**os.environ, "SMARTTA_KEYSTORE_PASSWORD": "observer-tests"}
    init = _smartta("network", "init", "--dir", str(directory), "--validators", "4",
                    "--observers", "1", "--seeded", "--base-port", "7700", env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    up = _smartta("network", "up", "--dir", str(directory), "--timeout", "150", env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        spec = json.loads(_smartta("network", "status", "--dir", str(directory), "--json",
                                   env=env).stdout)
        urls = {n["name"]: n["rpc_http"] for n in spec["nodes"]}
        yield directory, urls
    finally:
        _smartta("network", "down", "--dir", str(directory), env=env)


def _height(url: str) -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from observer.rpc import RpcSource

    return RpcSource(url).head()


def test_devnet_verifies_through_its_observer_node_and_agrees_with_a_validator(devnet, tmp_path):
    directory, urls = devnet
    deadline = time.monotonic() + 120
    while _height(urls["observer-1"]) < 8 and time.monotonic() < deadline:
        time.sleep(1)
    done = subprocess.run(
        [str(BIN / "smartta-observer"), "verify", "--rpc", urls["observer-1"], "--rpc",
         urls["validator-2"], "--genesis", str(directory / "genesis.json"), "--state-dir",
         str(tmp_path / "s"), "--report", str(tmp_path / "report.json"), "--quiet"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] and report["blocksVerified"] >= 8
    assert report["equivocations"] == []
