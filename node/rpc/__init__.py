"""Besu-compatible JSON-RPC (HTTP and WebSocket), health checks and Prometheus metrics.

Layers, from the wire in: ``server`` (aiohttp shell: sockets, WebSocket connections, the
executor for long calls) -> ``dispatch`` (JSON-RPC 2.0 envelope, batches, errors; bytes in,
bytes out) -> ``methods`` (one function per RPC method over ``node.abc.NodeAPI``) ->
``params`` / ``results`` / ``tx`` (parsing and Besu's result shapes). ``subscriptions``,
``health`` and ``metrics`` are pure too; only ``server`` does I/O.

Run one with ``RpcServer(node_api, RpcConfig(...), host=..., port=...)`` (see ``server``).
"""

from node.rpc.methods import Methods, RpcConfig
from node.rpc.server import RpcServer

__all__ = ["Methods", "RpcConfig", "RpcServer"]
