"""Fixtures for running real client tools against a running node.

``devnet`` starts ``tests/compat/devnode.py`` (a single-validator dev-mode node: node.execution
behind node.rpc) in its own process and data directory. Set ``SMARTTA_COMPAT_RPC_URL`` (and
``SMARTTA_COMPAT_WS_URL``) to run the same tests against another node, e.g. one started with
``smartta node run``; it must fund the Hardhat default test accounts.
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
    with open(data / "node.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, str(HERE / "devnode.py"), "--dir", str(data)],
                                stdout=subprocess.PIPE, stderr=log, cwd=ROOT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the dev node did not start:\n{(data / 'node.log').read_text()}")
        info = json.loads(line)
        yield Devnet(info["url"], info["ws"], info["chain_id"], test_accounts())
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
