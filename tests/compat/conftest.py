"""Fixtures for running real client tools against a running node.

``devnet`` starts ``tests/compat/devnode.py`` (a single-validator dev-mode node: node.execution
behind node.rpc) in its own process and data directory. ``SMARTTA_COMPAT_NODE=cli`` starts the
real thing instead: ``smartta network init --dev`` and ``smartta node run`` in a temporary
network folder. ``SMARTTA_COMPAT_RPC_URL`` (and ``SMARTTA_COMPAT_WS_URL``) point the tests at a
node already running. The tests send only zero-value transactions at gas price 0, so any
free-gas network works, funded or not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from devnode import CHAIN_ID, test_accounts  # noqa: E402


@dataclass(frozen=True)
class Devnet:
    url: str
    ws: str
    chain_id: int
    accounts: list[tuple[str, bytes]]


@pytest.fixture(scope="session")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    url = os.environ.get("SMARTTA_COMPAT_RPC_URL")
    if url:
        ws = os.environ.get("SMARTTA_COMPAT_WS_URL", url.replace("http", "ws", 1))
        yield Devnet(url, ws, int(os.environ.get("SMARTTA_COMPAT_CHAIN_ID", CHAIN_ID)), test_accounts())
        return
    data = tmp_path_factory.mktemp("devnode")
    env = dict(os.environ)
    if os.environ.get("SMARTTA_COMPAT_NODE") == "cli":
        smartta = str(Path(sys.executable).with_name("smartta"))
        env.setdefault("SMARTTA_KEYSTORE_PASSWORD", "compat-tests-only")
        subprocess.run([smartta, "network", "init", "--dir", str(data / "net"), "--validators", "1",
                        "--dev", "--seeded", "--base-port", "9100"], check=True, env=env,
                       capture_output=True)
        command = [smartta, "node", "run", "--dir", str(data / "net"), "--name", "validator-1"]
    else:
        command = [sys.executable, str(HERE / "devnode.py"), "--dir", str(data)]
    with open(data / "node.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, cwd=ROOT, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the node did not start:\n{(data / 'node.log').read_text()}")
        info = json.loads(line)
        url = info.get("url") or info["rpc_http"]
        ws = info.get("ws") or info.get("rpc_ws") or url.replace("http", "ws", 1)
        yield Devnet(url, ws, info.get("chain_id", CHAIN_ID), test_accounts())
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def recorder() -> dict[str, object]:
    """ABI and bytecode of data/Recorder.sol, compiled with the npm solc."""
    out = subprocess.run(["node", str(HERE / "compile.js"), str(HERE / "data" / "Recorder.sol")],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    contract: dict[str, object] = json.loads(out.stdout)["Recorder"]
    return contract
