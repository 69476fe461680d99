"""``smartta network join-bundle``: what an organisation needs to join a running consortium,
and what it sends back.

1. ``export`` (a consortium operator): the genesis and its hash, the bootnodes, and the network
   spec (public keys, addresses, hosts: nothing secret) in one JSON file.
2. ``import`` (the joining organisation): recomputes the genesis hash (and compares it with one
   received out of band, which is what makes the bundle trustworthy), creates its own node key,
   writes its network folder with the same genesis (so its configs and allowlists are those of
   the network plus its node), and a join request: its enode for the allowlists and, for a
   validator, the candidate address the validators must vote in.
3. ``accept`` (a consortium operator): adds the requested node to network.yaml as another
   organisation's (remote) node and regenerates every allowlist and static-nodes file.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chain.qbft.genesis import Genesis, GenesisError
from node.network.besu import HOSTS, enode
from node.network.init import GENESIS_FILE, init_network, read_lock
from node.network.spec import ROLES, NetworkSpec, NodeSpec, Organisation, SpecError

BUNDLE_FORMAT = "smartta-join-bundle/1"
REQUEST_FORMAT = "smartta-join-request/1"
REQUEST_FILE = "join-request.json"


class BundleError(ValueError):
    """A bundle or join request that cannot be used, and why."""


def _pinned(spec: NetworkSpec, genesis: Genesis) -> NetworkSpec:
    """The spec with its genesis validators written out: once nodes come and go by votes, the
    validator nodes are no longer what the genesis lists."""
    if not spec.genesis_validators:
        spec.genesis_validators = ["0x" + v.hex() for v in genesis.validators]
    return spec


def export(directory: Path) -> dict[str, Any]:
    spec = NetworkSpec.load(directory)
    genesis_json = json.loads((directory / GENESIS_FILE).read_text())
    genesis = Genesis(genesis_json)
    lock = read_lock(directory) or {}
    if lock.get("genesis_hash") != "0x" + genesis.hash.hex():
        raise BundleError("genesis.json does not match network.lock; run `smartta network doctor` first")
    _pinned(spec, genesis)
    for node in spec.nodes:
        node.remote = True
    return {
        "format": BUNDLE_FORMAT,
        "network": spec.name,
        "chain_id": spec.chain_id,
        "besu_version": spec.besu_version,
        "genesis_hash": "0x" + genesis.hash.hex(),
        "genesis": genesis_json,
        "bootnodes": [enode(spec, n, HOSTS) for n in spec.nodes if "bootnode" in n.roles],
        "spec": asdict(spec),
    }


def check_bundle(bundle: Any, expected_hash: str | None) -> Genesis:
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"not a join bundle (expected format {BUNDLE_FORMAT})")
    try:
        genesis = Genesis(bundle["genesis"])
    except (GenesisError, KeyError, TypeError) as exc:
        raise BundleError(f"the bundle's genesis is unusable: {exc}") from None
    actual = "0x" + genesis.hash.hex()
    if actual != str(bundle.get("genesis_hash", "")).lower():
        raise BundleError(f"the bundle's genesis hashes to {actual}, not to the {bundle.get('genesis_hash')} "
                          "it claims: the bundle was altered; ask the consortium for a new one")
    if expected_hash is not None and actual != expected_hash.lower():
        raise BundleError(f"the bundle's genesis is {actual}, not the {expected_hash} you were given: "
                          "this is not the consortium's network; do not join it")
    return genesis


def import_bundle(bundle: Any, directory: Path, *, organisation: str, node_name: str, role: str,
                  host: str, p2p_port: int, password: str, expected_hash: str | None = None,
                  scrypt_n: int | None = None) -> tuple[NetworkSpec, dict[str, Any]]:
    genesis = check_bundle(bundle, expected_hash)
    if role not in ROLES:
        raise BundleError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    if (directory / "network.yaml").exists():
        raise BundleError(f"{directory} already holds a network; import into a new folder")
    try:
        spec = NetworkSpec.from_dict(bundle["spec"])
    except SpecError as exc:
        raise BundleError(f"the bundle's network spec is unusable: {exc}") from None
    _pinned(spec, genesis)
    if any(n.name == node_name for n in spec.nodes):
        raise BundleError(f"the network already has a node named {node_name!r}; choose another --node")
    node = NodeSpec(name=node_name, roles=[role], host=host, p2p_port=p2p_port)
    orgs = {o.name: o for o in spec.organisations}
    orgs.setdefault(organisation, Organisation(organisation)).nodes.append(node)
    spec.organisations = list(orgs.values())
    directory.mkdir(parents=True, exist_ok=True)
    (directory / GENESIS_FILE).write_text(json.dumps(bundle["genesis"], indent=2) + "\n")
    spec, written = init_network(directory, spec, password, scrypt_n=scrypt_n)
    if written.hash != genesis.hash:  # init refuses a different genesis; this is the last guard
        raise BundleError("the imported network does not reproduce the bundle's genesis")
    joined = spec.node(node_name)
    request = {
        "format": REQUEST_FORMAT,
        "network": spec.name,
        "genesis_hash": "0x" + genesis.hash.hex(),
        "organisation": organisation,
        "node": asdict(joined) | {"remote": True},
        "enode": enode(spec, joined, HOSTS),
        "candidate_validator": joined.address if joined.is_validator else None,
    }
    (directory / REQUEST_FILE).write_text(json.dumps(request, indent=2) + "\n")
    return spec, request


def accept(directory: Path, request: Any, password: str) -> NetworkSpec:
    """Add a requested node (as remote) to the network and regenerate its files."""
    if not isinstance(request, dict) or request.get("format") != REQUEST_FORMAT:
        raise BundleError(f"not a join request (expected format {REQUEST_FORMAT})")
    lock = read_lock(directory) or {}
    if request.get("genesis_hash") != lock.get("genesis_hash"):
        raise BundleError(f"the request is for genesis {request.get('genesis_hash')}, this network's "
                          f"is {lock.get('genesis_hash')}")
    spec = NetworkSpec.load(directory)
    _pinned(spec, Genesis.load(directory / GENESIS_FILE))
    try:
        node = NodeSpec(**request["node"])
    except (KeyError, TypeError) as exc:
        raise BundleError(f"the request's node is unusable: {exc}") from None
    node.remote = True
    if any(n.name == node.name for n in spec.nodes):
        raise BundleError(f"the network already has a node named {node.name!r}")
    orgs = {o.name: o for o in spec.organisations}
    orgs.setdefault(str(request.get("organisation")), Organisation(str(request.get("organisation")))
                    ).nodes.append(node)
    spec.organisations = list(orgs.values())
    spec, _ = init_network(directory, spec, password)
    return spec
