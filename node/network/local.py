"""Run a network's nodes as local processes: ``smartta network up|down|status``.

Each node is ``smartta node run`` in a session of its own (it survives the shell that started it),
its output in ``run/<node>.log`` and its pid in ``run/<node>.pid`` under the network folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.network.spec import NetworkSpec, NodeSpec

RUN_DIR = "run"


class LiveError(RuntimeError):
    """A node that does not answer, or answers with an error."""


def rpc(url: str, method: str, params: list[Any] | None = None, *, timeout: float = 2.0) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        raise LiveError(f"{url} does not answer {method}: {exc}") from exc
    if "error" in answer:
        raise LiveError(f"{url} {method}: {answer['error'].get('message')}")
    return answer.get("result")


def url_of(node: NodeSpec) -> str:
    return f"http://{node.host}:{node.rpc_http_port}"


def pid_file(directory: Path, node: NodeSpec) -> Path:
    return directory / RUN_DIR / f"{node.name}.pid"


def log_file(directory: Path, node: NodeSpec) -> Path:
    return directory / RUN_DIR / f"{node.name}.log"


def running_pid(directory: Path, node: NodeSpec) -> int | None:
    path = pid_file(directory, node)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    except PermissionError:
        return pid
    return pid


def start_node(directory: Path, node: NodeSpec, env: dict[str, str] | None = None) -> int:
    """Start one node detached; its pid."""
    existing = running_pid(directory, node)
    if existing is not None:
        return existing
    (directory / RUN_DIR).mkdir(parents=True, exist_ok=True)
    log = open(log_file(directory, node), "ab")  # noqa: SIM115 - handed to the child
    cmd = [sys.executable, "-m", "chain.cli", "node", "run", "--dir", str(directory),
           "--name", node.name]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, **(env or {})})
    log.close()
    pid_file(directory, node).write_text(f"{proc.pid}\n")
    return proc.pid


def stop_nodes(directory: Path, nodes: list[NodeSpec], *, timeout: float = 15.0,
               sig: int = signal.SIGTERM) -> list[str]:
    """Signal every running node at once (SIGTERM by default), wait for all, SIGKILL those
    still alive after ``timeout``; the names of the nodes that were running."""
    pids = {n.name: (n, pid) for n in nodes if (pid := running_pid(directory, n)) is not None}
    for _, pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    alive = dict(pids)
    while alive and time.monotonic() < deadline:
        for name, (_, pid) in list(alive.items()):
            _reap(pid)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                del alive[name]
        time.sleep(0.05)
    for _, pid in alive.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
    for node, _ in pids.values():
        pid_file(directory, node).unlink(missing_ok=True)
    return sorted(pids)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@dataclass
class NodeState:
    name: str
    role: str
    rpc_http: str
    rpc_ws: str
    pid: int | None
    height: int | None = None
    peers: int | None = None
    last_proposer: str | None = None
    round_changes: int | None = None
    signer_blocks: dict[str, int] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def node_state(directory: Path, node: NodeSpec) -> NodeState:
    url = url_of(node)
    state = NodeState(name=node.name, role=",".join(node.roles), rpc_http=url,
                      rpc_ws=f"ws://{node.host}:{node.rpc_ws_port}",
                      pid=running_pid(directory, node))
    try:
        state.height = int(rpc(url, "eth_blockNumber"), 16)
        state.peers = int(rpc(url, "net_peerCount"), 16)
        head = rpc(url, "eth_getBlockByNumber", ["latest", False])
        state.last_proposer = head["miner"] if head else None
        if state.height and state.height > 1:
            metrics = rpc(url, "qbft_getSignerMetrics", [hex(max(1, state.height - 100)),
                                                         hex(state.height)])
            state.signer_blocks = {m["address"]: int(m["proposedBlockCount"], 16) for m in metrics}
        state.round_changes = _round_changes(node)
    except LiveError as exc:
        state.error = str(exc)
    return state


def _round_changes(node: NodeSpec) -> int | None:
    """Total round changes from the node's /metrics (our node exports them; Besu does not)."""
    try:
        with urllib.request.urlopen(f"http://{node.host}:{node.metrics_port}/metrics",
                                    timeout=2) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    total = 0
    for line in text.splitlines():
        if line.startswith("smartta_qbft_round_changes_total"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def wait_ready(spec: NetworkSpec, directory: Path, *, timeout: float) -> list[str]:
    """Wait until every node answers JSON-RPC; the names of those that did not."""
    deadline = time.monotonic() + timeout
    pending = {n.name: n for n in spec.nodes}
    while pending and time.monotonic() < deadline:
        for name, node in list(pending.items()):
            if running_pid(directory, node) is None:
                continue
            try:
                rpc(url_of(node), "eth_blockNumber", timeout=0.5)
                del pending[name]
            except LiveError:
                pass
        time.sleep(0.2)
    return sorted(pending)
