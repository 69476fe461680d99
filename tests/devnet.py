"""A local multi-process network for tests: `smartta network init` (seeded keys) and `up`, on
ports nobody else on the machine is using, torn down with `down` however the test ends."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from node.network import init, local
from node.network.spec import NetworkSpec

PASSWORD = "devnet-test"
SMARTTA = [sys.executable, "-m", "chain.cli"]


def free_base_port(nodes: int) -> int:
    """A --base-port in 10000-20000 whose nodes' ports are all free (tests run side by side)."""
    return init.free_base_port(nodes, (random.randrange(10_000, 20_000) for _ in range(200)))


def smartta(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMARTTA_KEYSTORE_PASSWORD": PASSWORD}
    result = subprocess.run([*SMARTTA, *args], capture_output=True, text=True, env=env,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"smartta {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@contextmanager
def devnet(directory: Path, *, validators: int = 4, observers: int = 0,
           block_period: int = 1, chain_id: int = 1337) -> Iterator[NetworkSpec]:
    count = validators + observers
    smartta("network", "init", "--dir", str(directory), "--validators", str(validators),
            "--observers", str(observers), "--seeded", "--block-period", str(block_period),
            "--chain-id", str(chain_id), "--base-port", str(free_base_port(count)))
    spec = NetworkSpec.load(directory)
    try:
        smartta("network", "up", "--dir", str(directory))
        yield spec
    finally:
        local.stop_nodes(directory, spec.nodes, timeout=20)


def rpc(url: str, method: str, *params: Any) -> Any:
    return local.rpc(url, method, list(params), timeout=10)


def wait_height(url: str, height: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            h = int(rpc(url, "eth_blockNumber"), 16)
        except local.LiveError:
            h = -1
        if h >= height:
            return h
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} reached height {h}, not {height}, in {timeout:.0f}s")
        time.sleep(0.2)


def block_hashes(url: str, upto: int) -> list[str]:
    return [rpc(url, "eth_getBlockByNumber", hex(n), False)["hash"] for n in range(upto + 1)]


def status(directory: Path) -> dict[str, Any]:
    return json.loads(smartta("network", "status", "--dir", str(directory), "--json",
                              check=False).stdout)
