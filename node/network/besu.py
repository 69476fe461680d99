"""Besu's files for a network, generated from its spec: per-node ``config.toml`` by role,
``permissions_config.toml``, ``static-nodes.json``, and node keys in Besu's layout.

Pure functions from a ``NetworkSpec`` to text; ``init`` writes what they return. The same role
profiles serve hosts (``besu/<node>/config.toml``) and Kubernetes (one config per role, the
per-pod values passed as arguments), so the two targets cannot drift apart.

Role profiles, after the pain points of the Quorum quickstart and quorum-kubernetes (one config
with ADMIN/DEBUG/TRACE and ``host-allowlist=*`` everywhere):

- validator: JSON-RPC on the loopback (or, on Kubernetes, only reachable by the operator's
  tooling through NetworkPolicy), with the groups the operator's commands use and nothing else;
- rpc: the client-facing tier: ETH/NET/WEB3/TXPOOL over HTTP and WebSocket, JWT authentication,
  an explicit host allowlist; no ADMIN, DEBUG, TRACE, PERM or QBFT;
- observer: read-only access for a regulator, on the loopback only;
- bootnode: a plain full node whose enode every node lists; a role that adds to another.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from node.network.spec import NetworkSpec, NodeSpec

CONFIG_DIR = "/etc/besu"
DATA_DIR = "/var/lib/besu"
KEY_DIR = "/opt/besu/keys"
"""Kept apart from CONFIG_DIR: on Kubernetes that is a read-only ConfigMap volume and the key a
Secret (or a secret-store CSI volume) mounted beside it."""
KEY_FILE = f"{KEY_DIR}/nodekey"
GENESIS_PATH = f"{CONFIG_DIR}/genesis.json"
STATIC_NODES_PATH = f"{CONFIG_DIR}/static-nodes.json"
PERMISSIONS_PATH = f"{CONFIG_DIR}/permissions_config.toml"
JWT_PUBLIC_KEY_PATH = f"{CONFIG_DIR}/rpc-jwt-public.pem"
JWT_ALGORITHM = "ES256"

K8S_P2P_PORT = 30303
K8S_RPC_HTTP_PORT = 8545
K8S_RPC_WS_PORT = 8546
K8S_METRICS_PORT = 9545

VALIDATOR_APIS = ("ADMIN", "ETH", "NET", "PERM", "QBFT", "TXPOOL", "WEB3")
"""ADMIN for peers, PERM to reload the allowlist, QBFT to vote and read signer metrics, TXPOOL
for the ledger writer's diagnostics; never DEBUG or TRACE on a validator."""
RPC_APIS = ("ETH", "NET", "TXPOOL", "WEB3")
OBSERVER_APIS = ("ETH", "NET", "QBFT", "WEB3")

Toml = dict[str, Any]


def primary_role(node: NodeSpec) -> str:
    """The role that decides a node's RPC exposure; bootnode only when it is nothing else."""
    for role in ("validator", "rpc", "observer"):
        if role in node.roles:
            return role
    return "bootnode"


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Target:
    """Where the configs run: hosts named in the spec, or pods of a Kubernetes StatefulSet."""

    kubernetes: bool

    def host(self, spec: NetworkSpec, node: NodeSpec) -> str:
        if self.kubernetes:
            return pod_dns(spec, node)
        return node.host

    def ports(self, node: NodeSpec) -> tuple[int, int, int, int]:
        """p2p, rpc http, rpc ws, metrics."""
        if self.kubernetes:
            return K8S_P2P_PORT, K8S_RPC_HTTP_PORT, K8S_RPC_WS_PORT, K8S_METRICS_PORT
        return node.p2p_port, node.rpc_http_port, node.rpc_ws_port, node.metrics_port


HOSTS = Target(kubernetes=False)
KUBERNETES = Target(kubernetes=True)


def headless_service(spec: NetworkSpec) -> str:
    return f"{spec.name}-nodes"


def pod_dns(spec: NetworkSpec, node: NodeSpec) -> str:
    """Stable DNS name of a node's pod: StatefulSet ``<node>``, replica 0, headless service."""
    return f"{node.name}-0.{headless_service(spec)}.{spec.namespace}.svc.cluster.local"


def enode(spec: NetworkSpec, node: NodeSpec, target: Target) -> str:
    if not node.public_key:
        raise ValueError(f"node {node.name} has no public key yet; run `smartta network init`")
    p2p = target.ports(node)[0]
    return f"enode://{node.public_key.removeprefix('0x')}@{target.host(spec, node)}:{p2p}"


def needs_dns(spec: NetworkSpec, target: Target) -> bool:
    return target.kubernetes or any(not is_ip(n.host) for n in spec.nodes)


def host_allowlist(spec: NetworkSpec, node: NodeSpec, target: Target) -> list[str]:
    """Host headers the node's HTTP endpoints (JSON-RPC, health, metrics) answer.

    Besu checks the Host header on every request, metrics scrapes and probes included, so the
    names Prometheus and the kubelet use must be listed (probes send ``Host: localhost``).
    """
    names = ["localhost", "127.0.0.1"]
    if target.kubernetes:
        dns = pod_dns(spec, node)
        short = dns.removesuffix(".svc.cluster.local")
        names += [dns, short, short.rsplit(".", 1)[0]]
        if primary_role(node) == "rpc":
            svc = rpc_service(spec)
            names += [svc, f"{svc}.{spec.namespace}", f"{svc}.{spec.namespace}.svc.cluster.local"]
    else:
        names.append(node.host)
    names += node.host_allowlist
    return list(dict.fromkeys(names))


def rpc_service(spec: NetworkSpec) -> str:
    return f"{spec.name}-rpc"


def role_config(spec: NetworkSpec, role: str, target: Target, node: NodeSpec | None = None) -> Toml:
    """config.toml keys of one role. With ``node`` the node-specific keys (host, ports, host
    allowlist) are included; without it (Kubernetes, one config per role) they come as
    arguments of the node's container."""
    bootnodes = [enode(spec, n, target) for n in spec.nodes if "bootnode" in n.roles]
    cfg: Toml = {
        "data-path": DATA_DIR,
        "genesis-file": GENESIS_PATH,
        "node-private-key-file": KEY_FILE,
        "logging": "INFO",
        "sync-mode": "FULL",
        "data-storage-format": "FOREST",
        "version-compatibility-protection": True,
        "p2p-enabled": True,
        "p2p-interface": "0.0.0.0",
        "discovery-enabled": True,
        "nat-method": "NONE",
        "max-peers": max(25, len(spec.nodes)),
        "static-nodes-file": STATIC_NODES_PATH,
        "permissions-nodes-config-file-enabled": True,
        "permissions-nodes-config-file": PERMISSIONS_PATH,
        "metrics-enabled": True,
        "metrics-host": "0.0.0.0",
        "rpc-http-enabled": True,
        "revert-reason-enabled": True,
    }
    if bootnodes:
        cfg["bootnodes"] = bootnodes
    if needs_dns(spec, target):
        # Enodes name hosts, not addresses; on Kubernetes pod addresses change on restart, so
        # names are looked up again (Besu #6076: an allowlist resolved once goes stale).
        cfg["Xdns-enabled"] = True
        if target.kubernetes:
            cfg["Xdns-update-enabled"] = True
    if spec.gas.free:
        # With zeroBaseFee every node must take zero-price transactions, or they are dropped
        # silently by the node that does not (Besu #572).
        cfg["min-gas-price"] = 0
    loopback = "127.0.0.1"
    if role == "validator":
        cfg.update({"rpc-http-host": "0.0.0.0" if target.kubernetes else loopback,
                    "rpc-http-api": list(VALIDATOR_APIS)})
    elif role == "rpc":
        cfg.update({"rpc-http-host": "0.0.0.0", "rpc-http-api": list(RPC_APIS),
                    "rpc-ws-enabled": True, "rpc-ws-host": "0.0.0.0", "rpc-ws-api": list(RPC_APIS)})
        if spec.rpc_auth == "jwt":
            for proto in ("http", "ws"):
                cfg[f"rpc-{proto}-authentication-enabled"] = True
                cfg[f"rpc-{proto}-authentication-jwt-public-key-file"] = JWT_PUBLIC_KEY_PATH
                cfg[f"rpc-{proto}-authentication-jwt-algorithm"] = JWT_ALGORITHM
    elif role == "observer":
        cfg.update({"rpc-http-host": "0.0.0.0" if target.kubernetes else loopback,
                    "rpc-http-api": list(OBSERVER_APIS),
                    "rpc-ws-enabled": True,
                    "rpc-ws-host": "0.0.0.0" if target.kubernetes else loopback,
                    "rpc-ws-api": list(OBSERVER_APIS)})
    elif role == "bootnode":
        cfg.update({"rpc-http-host": "0.0.0.0" if target.kubernetes else loopback,
                    "rpc-http-api": ["ADMIN", "ETH", "NET", "PERM", "WEB3"]})
    else:
        raise ValueError(f"unknown role {role!r}")
    if target.kubernetes:
        cfg.update(_ports(role, (K8S_P2P_PORT, K8S_RPC_HTTP_PORT, K8S_RPC_WS_PORT, K8S_METRICS_PORT)))
    if node is not None:
        cfg.update(node_options(spec, node, target))
    return dict(sorted(cfg.items()))


def _ports(role: str, ports: tuple[int, int, int, int]) -> Toml:
    p2p, http, ws, metrics = ports
    out: Toml = {"p2p-port": p2p, "rpc-http-port": http, "metrics-port": metrics}
    if role in ("rpc", "observer"):
        out["rpc-ws-port"] = ws
    return out


def node_options(spec: NetworkSpec, node: NodeSpec, target: Target) -> Toml:
    """The options that differ between nodes of one role (on Kubernetes, where every pod has
    its own address and the same ports, only the host allowlist does)."""
    out: Toml = {"host-allowlist": host_allowlist(spec, node, target)}
    if not target.kubernetes:
        out.update(_ports(primary_role(node), target.ports(node)))
        out["p2p-host"] = node.host
        out["metrics-host"] = node.host
    return out


def node_config(spec: NetworkSpec, node: NodeSpec, target: Target = HOSTS) -> Toml:
    return role_config(spec, primary_role(node), target, node)


def roles_present(spec: NetworkSpec) -> list[str]:
    return sorted({primary_role(n) for n in spec.nodes})


def static_nodes(spec: NetworkSpec, target: Target) -> list[str]:
    return [enode(spec, n, target) for n in spec.nodes]


def permissions(spec: NetworkSpec, target: Target) -> Toml:
    """Every node of the spec, bootnodes included (Besu will not start if a bootnode is not
    allowed), on every node: one list, so the per-node lists cannot drift apart."""
    return {"nodes-allowlist": static_nodes(spec, target)}


# ---- TOML -------------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("TOML here takes finite numbers only")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters as \\uXXXX,
    everything else literal (the file is UTF-8)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_toml(table: Mapping[str, Any], header: str = "") -> str:
    """Flat TOML (Besu's config and permissions files have no sections)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


GENERATED = ("generated by `smartta network init` from network.yaml; do not edit: change the spec\n"
             "and run init again (network.lock records this file's hash)")


def files(spec: NetworkSpec, jwt_public_pem: str | None) -> dict[str, str]:
    """``besu/`` for hosts: one folder per node, and the files every node shares."""
    out: dict[str, str] = {}
    for node in spec.nodes:
        header = (f"Besu {spec.besu_version} config of {node.name} ({', '.join(node.roles)}), "
                  f"network {spec.name}\n{GENERATED}")
        out[f"besu/{node.name}/config.toml"] = to_toml(node_config(spec, node), header)
    out["besu/static-nodes.json"] = json.dumps(static_nodes(spec, HOSTS), indent=2) + "\n"
    out["besu/permissions_config.toml"] = to_toml(permissions(spec, HOSTS), GENERATED)
    if jwt_public_pem is not None and "rpc" in roles_present(spec) and spec.rpc_auth == "jwt":
        out["besu/rpc-jwt-public.pem"] = jwt_public_pem
    return out


def besu_key_files(secret: bytes) -> dict[str, str]:
    """A node key as Besu reads it (``--node-private-key-file``) and its public key."""
    from chain.qbft.seals import address_of, public_key_of

    return {
        "key": "0x" + secret.hex(),
        "key.pub": "0x" + public_key_of(secret).hex(),
        "address": "0x" + address_of(secret).hex(),
    }
