"""A small JSON-RPC client for asking running nodes (ours or Besu) what they hold.

Only the standard library: doctor and health must work against any node, with nothing but a
URL. A node that does not answer is not an error here; the callers decide what it means.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from node.network.spec import NetworkSpec, NodeSpec

DEFAULT_TIMEOUT = 2.0


class Unreachable(Exception):
    """Nothing answered at the URL (not running, wrong port, firewall)."""


class RpcError(Exception):
    """The node answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code


@dataclass(frozen=True)
class Endpoint:
    node: str
    url: str


def endpoints(spec: NetworkSpec, overrides: dict[str, str] | None = None) -> list[Endpoint]:
    """Each node's JSON-RPC URL: from ``overrides`` (node name -> URL), else the spec's host and
    port (validators and observers listen on their loopback, so run this on their host)."""
    overrides = overrides or {}
    return [Endpoint(n.name, overrides.get(n.name, default_url(n))) for n in spec.nodes]


def default_url(node: NodeSpec) -> str:
    return f"http://{node.host}:{node.rpc_http_port}"


def call(url: str, method: str, params: list[Any], *, timeout: float = DEFAULT_TIMEOUT,
         token: str | None = None) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            reply = json.loads(exc.read())
        except ValueError:
            raise RpcError(exc.code, f"HTTP {exc.code} from {url}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise Unreachable(f"{url}: {getattr(exc, 'reason', exc)}") from None
    except ValueError as exc:
        raise RpcError(-32700, f"{url} answered with something that is not JSON: {exc}") from None
    if not isinstance(reply, dict):
        raise RpcError(-32600, f"{url} answered {method} with a non-object")
    if reply.get("error"):
        err = reply["error"]
        raise RpcError(int(err.get("code", 0)), str(err.get("message", err)))
    return reply.get("result")


def get(url: str, path: str, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
    """GET a path beside the JSON-RPC endpoint (``/readiness``): status and body."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + path, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise Unreachable(f"{url}: {getattr(exc, 'reason', exc)}") from None


def addresses(result: Any) -> list[str]:
    if not isinstance(result, list):
        raise RpcError(-32603, f"expected a list of addresses, got {type(result).__name__}")
    return sorted(str(a).lower() for a in result)
