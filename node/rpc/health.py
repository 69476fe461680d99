"""``/liveness`` and ``/readiness`` as Besu answers them (``HealthService``, ``ReadinessCheck``).

Readiness: at least ``minPeers`` peers (default 1, only when the node talks to peers) and no more
than ``maxBlocksBehind`` blocks (default 2) behind the best block it knows of while syncing. A
parameter that is not an integer makes the node report not ready, as Besu does.
"""

from __future__ import annotations

from collections.abc import Mapping

from node.abc import NodeStatus

DEFAULT_MIN_PEERS = 1
DEFAULT_MAX_BLOCKS_BEHIND = 2
UP = b'{\n  "status" : "UP"\n}'
DOWN = b'{\n  "status" : "DOWN"\n}'


def liveness() -> tuple[int, bytes]:
    return 200, UP


def _int(query: Mapping[str, str], name: str, default: int) -> int | None:
    value = query.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return None


def is_ready(status: NodeStatus, query: Mapping[str, str], p2p_enabled: bool) -> bool:
    if p2p_enabled:
        min_peers = _int(query, "minPeers", DEFAULT_MIN_PEERS)
        if min_peers is None or len(status.peers) < min_peers:
            return False
    if status.syncing is None:
        return True
    behind = _int(query, "maxBlocksBehind", DEFAULT_MAX_BLOCKS_BEHIND)
    _, current, highest = status.syncing
    return behind is not None and highest - current <= behind


def readiness(status: NodeStatus, query: Mapping[str, str], p2p_enabled: bool) -> tuple[int, bytes]:
    return (200, UP) if is_ready(status, query, p2p_enabled) else (503, DOWN)
