"""``networks/NAME/network.yaml``: the one declarative description of a consortium.

Everything else — keys, genesis.json, Besu's config.toml and permissions, static nodes,
Kubernetes manifests — is generated from it, and ``network.lock`` records the genesis hash and
the hash of every generated file so drift is detected.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from node.network.besu_options import BesuVersionError, reference_version

SPEC_FILE = "network.yaml"
ROLES = ("validator", "bootnode", "rpc", "observer")
DEFAULT_BESU_VERSION = "26.8.0"
RPC_AUTH = ("jwt", "none")


class SpecError(ValueError):
    """A network spec that cannot be used, naming the field and the fix."""


@dataclass
class NodeSpec:
    name: str
    roles: list[str]
    host: str = "127.0.0.1"
    p2p_port: int = 30303
    rpc_http_port: int = 8545
    rpc_ws_port: int = 8546
    metrics_port: int = 9545
    address: str = ""
    """Node key address (0x…): a validator's identity in extraData. Filled in by init."""
    public_key: str = ""
    """Node public key (0x + 128 hex), the enode id. Filled in by init."""
    remote: bool = False
    """Its key is held by another organisation: init neither creates nor expects it here."""
    host_allowlist: list[str] = field(default_factory=list)
    """Extra Host header names the node's JSON-RPC accepts (a public DNS name of an RPC node);
    localhost and the node's own host are always allowed."""

    @property
    def is_validator(self) -> bool:
        return "validator" in self.roles

    @property
    def is_observer(self) -> bool:
        return "observer" in self.roles

    def enode(self) -> str:
        return f"enode://{self.public_key.removeprefix('0x')}@{self.host}:{self.p2p_port}"


@dataclass
class Organisation:
    name: str
    nodes: list[NodeSpec] = field(default_factory=list)


@dataclass
class Consensus:
    block_period_seconds: int = 1
    request_timeout_seconds: int = 2
    epoch_length: int = 30000
    validator_selection: str = "blockheader"
    """"blockheader" (votes in headers) or "contract"."""
    empty_block_period_seconds: int = 0


@dataclass
class Gas:
    free: bool = True
    """zeroBaseFee in the genesis and min-gas-price 0 on every node (consortium style)."""
    limit: int = 250_000_000
    contract_size_limit: int | None = None


@dataclass
class KubernetesSettings:
    """What the generated Kubernetes manifests need beyond the nodes themselves."""

    namespace: str = ""
    """Defaults to the network's name."""
    image: str = ""
    """Defaults to hyperledger/besu:<besu_version>."""
    storage_size: str = "20Gi"
    cpu_request: str = "1"
    memory_request: str = "4Gi"
    memory_limit: str = "6Gi"
    java_heap: str = "3g"


@dataclass
class NetworkSpec:
    name: str
    chain_id: int
    consensus: Consensus = field(default_factory=Consensus)
    gas: Gas = field(default_factory=Gas)
    fork: str = "cancun"
    besu_version: str = DEFAULT_BESU_VERSION
    deployment: str = "local"
    """"local" (our node as processes) or "kubernetes" (Besu from the generated manifests)."""
    dev_mode: bool = False
    """Enables evm_* development RPC methods; only for a single-validator throwaway network."""
    seeded_keys: bool = False
    """Keys derived from fixed seeds: a throwaway devnet only; never for a real network."""
    organisations: list[Organisation] = field(default_factory=list)
    rpc_auth: str = "jwt"
    """"jwt": RPC-tier nodes accept only JWTs signed by the operator's key (ES256); "none"."""
    genesis_validators: list[str] = field(default_factory=list)
    """The validators in the genesis extraData, when they are no longer the spec's validator
    nodes (a network that has grown by votes, or an organisation joining one). Empty: the
    validator nodes."""
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)

    @property
    def nodes(self) -> list[NodeSpec]:
        return [n for org in self.organisations for n in org.nodes]

    @property
    def validators(self) -> list[NodeSpec]:
        return [n for n in self.nodes if n.is_validator]

    @property
    def namespace(self) -> str:
        return self.kubernetes.namespace or self.name

    @property
    def besu_image(self) -> str:
        return self.kubernetes.image or f"hyperledger/besu:{self.besu_version}"

    def genesis_validator_addresses(self) -> list[bytes]:
        """The extraData validators, in extraData order."""
        if self.genesis_validators:
            return [bytes.fromhex(a[2:]) for a in self.genesis_validators]
        return sorted(bytes.fromhex(n.address.removeprefix("0x")) for n in self.validators)

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        names = ", ".join(n.name for n in self.nodes)
        raise SpecError(f"network {self.name!r} has no node {name!r}; its nodes are: {names}")

    def organisation_of(self, name: str) -> str:
        for org in self.organisations:
            if any(n.name == name for n in org.nodes):
                return org.name
        raise SpecError(f"node {name!r} belongs to no organisation")

    def check(self) -> None:
        """Raise SpecError naming the first problem and its fix."""
        if not re.match(r"^[a-z0-9][a-z0-9-]{0,40}$", self.name):
            raise SpecError(f"network name {self.name!r}: use lower-case letters, digits and -")
        if self.chain_id <= 0:
            raise SpecError("chain_id must be a positive integer")
        c = self.consensus
        if c.block_period_seconds < 1:
            raise SpecError("consensus.block_period_seconds must be at least 1 (Besu's header rule)")
        if c.request_timeout_seconds < 2 * c.block_period_seconds:
            raise SpecError(
                f"consensus.request_timeout_seconds ({c.request_timeout_seconds}) must be at least "
                f"twice block_period_seconds ({c.block_period_seconds}), or rounds time out before "
                "a block can be proposed; Besu's docs advise 2x, then lower it while watching "
                "round changes"
            )
        if c.epoch_length < 1:
            raise SpecError("consensus.epoch_length must be at least 1")
        if c.validator_selection not in ("blockheader", "contract"):
            raise SpecError("consensus.validator_selection must be 'blockheader' or 'contract'")
        if self.deployment not in ("local", "kubernetes"):
            raise SpecError("deployment must be 'local' or 'kubernetes'")
        if self.rpc_auth not in RPC_AUTH:
            raise SpecError(f"rpc_auth must be one of {', '.join(RPC_AUTH)}")
        try:
            reference_version(self.besu_version)
        except BesuVersionError as exc:
            raise SpecError(f"besu_version: {exc}") from None
        for a in self.genesis_validators:
            if not re.fullmatch(r"0x[0-9a-fA-F]{40}", a):
                raise SpecError(f"genesis_validators: {a!r} is not a 0x-prefixed 20-byte address")
        if self.gas.limit < 5_000:
            raise SpecError("gas.limit must be at least 5000")
        seen: set[str] = set()
        ports: dict[tuple[str, int], str] = {}
        for n in self.nodes:
            if n.name in seen:
                raise SpecError(f"node name {n.name!r} is used twice")
            seen.add(n.name)
            bad = [r for r in n.roles if r not in ROLES]
            if bad or not n.roles:
                raise SpecError(f"node {n.name}: roles {n.roles} — each must be one of {ROLES}")
            if n.is_validator and n.is_observer:
                raise SpecError(f"node {n.name}: a validator cannot also be an observer")
            if self.deployment == "local":
                for kind in ("p2p_port", "rpc_http_port", "rpc_ws_port", "metrics_port"):
                    key = (n.host, getattr(n, kind))
                    if key in ports:
                        raise SpecError(f"node {n.name}: {kind} {key[1]} on {n.host} is already "
                                        f"used by {ports[key]}")
                    ports[key] = f"{n.name}.{kind}"
        if not self.validators:
            raise SpecError("the network has no validator")
        if self.dev_mode and len(self.validators) != 1:
            raise SpecError("dev_mode (evm_snapshot/revert…) needs exactly one validator: a "
                            "finalised multi-validator BFT chain cannot be rewound")

    def to_yaml(self) -> str:
        data = asdict(self)
        header = (f"# SMART-TA network '{self.name}': the single source of truth. Regenerate the\n"
                  "# derived files with `smartta network init --dir <this folder>`; never edit\n"
                  "# genesis.json by hand (network.lock records its hash).\n")
        return header + yaml.safe_dump(data, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        try:
            orgs = [Organisation(o["name"], [NodeSpec(**n) for n in o.get("nodes", [])])
                    for o in data.get("organisations", [])]
            spec = cls(
                name=data["name"],
                chain_id=int(data["chain_id"]),
                consensus=Consensus(**(data.get("consensus") or {})),
                gas=Gas(**(data.get("gas") or {})),
                fork=data.get("fork", "cancun"),
                besu_version=str(data.get("besu_version", DEFAULT_BESU_VERSION)),
                deployment=data.get("deployment", "local"),
                dev_mode=bool(data.get("dev_mode", False)),
                seeded_keys=bool(data.get("seeded_keys", False)),
                organisations=orgs,
                rpc_auth=str(data.get("rpc_auth", "jwt")),
                genesis_validators=[str(a) for a in data.get("genesis_validators") or []],
                kubernetes=KubernetesSettings(**(data.get("kubernetes") or {})),
            )
        except KeyError as exc:
            raise SpecError(f"network spec lacks the field {exc.args[0]!r}") from None
        except TypeError as exc:
            raise SpecError(f"network spec has an unknown or misspelt field: {exc}") from None
        spec.check()
        return spec

    @classmethod
    def load(cls, directory: Path) -> NetworkSpec:
        path = directory / SPEC_FILE
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise SpecError(f"{path} does not exist; create a network with "
                            f"`smartta network init --dir {directory}`") from None
        except yaml.YAMLError as exc:
            raise SpecError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise SpecError(f"{path} is not a YAML mapping")
        return cls.from_dict(data)

    def save(self, directory: Path) -> None:
        self.check()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / SPEC_FILE).write_text(self.to_yaml())
