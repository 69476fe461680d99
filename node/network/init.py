"""``smartta network init``: write a network's spec, keys, genesis and lock file.

Keys come fresh from the operating system's CSPRNG and are stored as encrypted keystore v3
files under ``keys/<node>/``; an existing key is never overwritten (a validator whose key
changes is a validator lost — the most common way Besu consortia stall). The seeded mode derives
keys from fixed seeds for throwaway devnets and tests only, and marks the spec so.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from eth_hash.auto import keccak

from chain.attest.keys import KeystoreError, write_keystore
from chain.qbft.genesis import Genesis, GenesisError, QbftSettings, build_genesis
from chain.qbft.seals import address_of, public_key_of
from node.network import besu, jwt, kubernetes, monitoring
from node.network.besu import primary_role
from node.network.spec import Consensus, Gas, NetworkSpec, NodeSpec, Organisation, SpecError

GENESIS_FILE = "genesis.json"
LOCK_FILE = "network.lock"
KEYS_DIR = "keys"
KEYSTORE_FILE = "key.json"


@dataclass(frozen=True)
class NodeKeyInfo:
    address: bytes
    public_key: bytes


def key_dir(directory: Path, node: str) -> Path:
    return directory / KEYS_DIR / node


def read_key_info(directory: Path, node: str) -> NodeKeyInfo | None:
    """Address and public key of a node's key, without the password (both are public)."""
    d = key_dir(directory, node)
    if not (d / KEYSTORE_FILE).exists():
        return None
    try:
        address = bytes.fromhex(json.loads((d / KEYSTORE_FILE).read_text())["address"]
                                .removeprefix("0x"))
        public_key = bytes.fromhex((d / "key.pub").read_text().strip().removeprefix("0x"))
    except (OSError, KeyError, ValueError) as exc:
        raise KeystoreError(f"key of node {node} in {d} is unreadable: {exc}") from exc
    return NodeKeyInfo(address, public_key)


def _new_key(directory: Path, node: str, password: str, seed: str | None,
             scrypt_n: int | None) -> NodeKeyInfo:
    secret = (bytes(keccak(f"smartta throwaway devnet key {seed}/{node}".encode()))
              if seed is not None else secrets.token_bytes(32))
    d = key_dir(directory, node)
    write_keystore(d / KEYSTORE_FILE, secret, password, scrypt_n=scrypt_n)
    info = NodeKeyInfo(address_of(secret), public_key_of(secret))
    (d / "key.pub").write_text("0x" + info.public_key.hex() + "\n")
    (d / "address").write_text("0x" + info.address.hex() + "\n")
    return info


def node_ports(base_port: int, index: int) -> tuple[int, int, int, int]:
    """(p2p, RPC HTTP, RPC WebSocket, metrics) ports of the ``index``-th node of a network laid
    out from ``base_port``: Besu's defaults shifted by it, the node's own index added (RPC ports
    10 apart, as HTTP and WebSocket sit next to each other)."""
    return (30303 + base_port + index, 8545 + base_port + 10 * index,
            8546 + base_port + 10 * index, 9545 + base_port + index)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_base_port(nodes: int, bases: Iterable[int], host: str = "127.0.0.1") -> int:
    """The first of ``bases`` at which every port of ``nodes`` nodes (``node_ports``) is free."""
    for base in bases:
        if all(port_free(host, p) for i in range(nodes) for p in node_ports(base, i)):
            return base
    raise RuntimeError(f"no --base-port with {nodes} nodes' ports free on {host}")


def default_spec(name: str, *, validators: int, observers: int, chain_id: int,
                 block_period: int, request_timeout: int | None, organisation: str,
                 host: str = "127.0.0.1", base_port: int = 0, dev_mode: bool = False,
                 seeded: bool = False) -> NetworkSpec:
    nodes = []
    for i in range(validators + observers):
        role, n = ("validator", i + 1) if i < validators else ("observer", i - validators + 1)
        roles = [role] + (["bootnode"] if i == 0 else [])
        p2p, http, ws, metrics = node_ports(base_port, i)
        nodes.append(NodeSpec(name=f"{role}-{n}", roles=roles, host=host, p2p_port=p2p,
                              rpc_http_port=http, rpc_ws_port=ws, metrics_port=metrics))
    timeout = request_timeout if request_timeout is not None else 2 * block_period
    return NetworkSpec(
        name=name, chain_id=chain_id,
        consensus=Consensus(block_period_seconds=block_period, request_timeout_seconds=timeout),
        gas=Gas(), dev_mode=dev_mode, seeded_keys=seeded,
        organisations=[Organisation(organisation, nodes)],
    )


def genesis_for(spec: NetworkSpec) -> dict[str, object]:
    c = spec.consensus
    return build_genesis(
        chain_id=spec.chain_id,
        validators=spec.genesis_validator_addresses(),
        qbft=QbftSettings(block_period_seconds=c.block_period_seconds,
                          epoch_length=c.epoch_length,
                          request_timeout_seconds=c.request_timeout_seconds,
                          empty_block_period_seconds=c.empty_block_period_seconds),
        fork=spec.fork,
        gas_limit=spec.gas.limit,
        zero_base_fee=spec.gas.free,
        contract_size_limit=spec.gas.contract_size_limit,
    )


def _differences(old: object, new: object, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{where}.{k}".lstrip("."))]
    return [] if old == new else [where or "genesis"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_lock(directory: Path, genesis: Genesis, generated: list[str]) -> None:
    lock = {
        "genesis_hash": "0x" + genesis.hash.hex(),
        "files": {name: _sha256(directory / name) for name in sorted(set(generated))},
    }
    (directory / LOCK_FILE).write_text(json.dumps(lock, indent=2) + "\n")


def read_lock(directory: Path) -> dict[str, object] | None:
    path = directory / LOCK_FILE
    return json.loads(path.read_text()) if path.exists() else None


def init_network(directory: Path, spec: NetworkSpec, password: str, *,
                 scrypt_n: int | None = None) -> tuple[NetworkSpec, Genesis]:
    """Create missing keys, fill the spec's addresses, write genesis.json and the lock.

    Safe to re-run: existing keys are kept, and an existing genesis.json is never silently
    replaced by a different one.
    """
    spec.check()
    directory.mkdir(parents=True, exist_ok=True)
    seed = f"{spec.name}/{spec.chain_id}" if spec.seeded_keys else None
    for node in spec.nodes:
        if node.remote:
            if not (node.address and node.public_key):
                raise SpecError(f"node {node.name} is remote (its organisation holds the key) but "
                                "network.yaml lacks its address or public_key; copy them from "
                                "its organisation's join request")
            continue
        info = read_key_info(directory, node.name)
        if info is None:
            info = _new_key(directory, node.name, password, seed, scrypt_n)
        address, public = "0x" + info.address.hex(), "0x" + info.public_key.hex()
        if node.address and node.address.lower() != address:
            raise SpecError(
                f"node {node.name}: network.yaml says address {node.address} but its key in "
                f"{key_dir(directory, node.name)} is {address}; restore the right key file, never "
                "a new one, or a validator the network counts on is lost"
            )
        node.address, node.public_key = address, public
    genesis_json = genesis_for(spec)
    genesis = Genesis(genesis_json)
    path = directory / GENESIS_FILE
    if path.exists():
        try:
            existing = Genesis.load(path)
        except GenesisError as exc:
            raise SpecError(f"{path} is unreadable ({exc}); move it aside to regenerate") from exc
        changed = _differences(existing.raw, genesis_json)
        if changed:
            raise SpecError(
                f"the spec now gives a different genesis ({', '.join(changed)} changed): every node "
                "must run the same genesis, and most changes make a new chain. Revert the change to "
                f"network.yaml, or remove {path} and the nodes' data to start a new chain"
            )
    else:
        path.write_text(json.dumps(genesis_json, indent=2) + "\n")
    spec.save(directory)
    jwt_pem = None
    if spec.rpc_auth == "jwt" and any(primary_role(n) == "rpc" for n in spec.nodes):
        jwt_pem = jwt.ensure_key(directory / KEYS_DIR, password)
    generated = write_generated(directory, spec, path.read_text(), jwt_pem)
    write_lock(directory, genesis, [GENESIS_FILE, *generated])
    return spec, genesis


def generated_files(spec: NetworkSpec, genesis_text: str, jwt_pem: str | None) -> dict[str, str]:
    """Every file derived from the spec (besides genesis.json): path in the network folder ->
    content. Pure, so doctor can tell a stale file from a hand-edited one."""
    return {**besu.files(spec, jwt_pem), **kubernetes.files(spec, genesis_text, jwt_pem),
            **monitoring.files(spec)}


def write_generated(directory: Path, spec: NetworkSpec, genesis_text: str,
                    jwt_pem: str | None) -> list[str]:
    out = generated_files(spec, genesis_text, jwt_pem)
    for name, text in out.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return sorted(out)
