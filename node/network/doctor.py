"""``smartta network doctor``: a preflight that names each problem of a network folder and its fix.

It checks what stalls or splits Besu consortia in practice: a node key that is not the one in
the genesis validator set, a genesis that is not the locked one, generated files edited by hand
or left stale, free-gas settings that disagree between the genesis and a node, round timeouts too
tight for the block period, an allowlist that misses a node, options the targeted Besu removed,
and (when nodes answer) a running node on another genesis or validator set than the spec.

Checks read files and, for the live ones, JSON-RPC; they never change anything.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from chain.attest.keys import KeystoreError
from chain.qbft.genesis import Genesis, GenesisError
from node.network import jwt, live
from node.network.besu_options import BesuVersionError, check_config
from node.network.init import GENESIS_FILE, KEYS_DIR, LOCK_FILE, generated_files, genesis_for, read_key_info
from node.network.spec import NetworkSpec, SpecError

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    problem: str
    fix: str
    severity: str = ERROR


@dataclass
class Report:
    findings: list[Finding]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not any(f.severity == ERROR for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": [asdict(f) for f in self.findings], "notes": self.notes}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load(directory: Path) -> tuple[NetworkSpec | None, Genesis | None, dict[str, Any] | None,
                                     list[Finding]]:
    found: list[Finding] = []
    spec = genesis = lock = None
    try:
        spec = NetworkSpec.load(directory)
    except SpecError as exc:
        found.append(Finding("spec", "network.yaml", str(exc), "correct network.yaml"))
    try:
        genesis = Genesis.load(directory / GENESIS_FILE)
    except GenesisError as exc:
        found.append(Finding("genesis", GENESIS_FILE, str(exc),
                             "restore genesis.json from network.lock's genesis (every node has a copy)"))
    try:
        lock = json.loads((directory / LOCK_FILE).read_text())
    except FileNotFoundError:
        found.append(Finding("lock", LOCK_FILE, "there is no network.lock",
                             f"run `smartta network init --dir {directory}`"))
    except ValueError as exc:
        found.append(Finding("lock", LOCK_FILE, f"network.lock is not JSON ({exc})",
                             "restore it from version control"))
    return spec, genesis, lock, found


def check_genesis(directory: Path, spec: NetworkSpec | None, genesis: Genesis,
                  lock: dict[str, Any] | None) -> Iterator[Finding]:
    actual = "0x" + genesis.hash.hex()
    if lock is not None and lock.get("genesis_hash") != actual:
        yield Finding("genesis", GENESIS_FILE,
                      f"genesis.json hashes to {actual}, the lock says {lock.get('genesis_hash')}",
                      "every node must run the locked genesis: restore genesis.json from version "
                      "control (or from a running node's copy); never edit it by hand")
    if spec is not None:
        try:
            expected = genesis_for(spec)
        except (GenesisError, ValueError) as exc:
            yield Finding("genesis", "network.yaml", f"the spec gives no genesis: {exc}",
                          "correct network.yaml")
            return
        if Genesis(expected).hash != genesis.hash:
            yield Finding("genesis", "network.yaml",
                          "network.yaml now describes a different genesis than genesis.json",
                          "revert the change to network.yaml (a new genesis is a new chain), or pin "
                          "genesis_validators if the validator nodes changed by votes")


def check_timeouts(genesis: Genesis) -> Iterator[Finding]:
    q = genesis.qbft
    if q.request_timeout_seconds < 2 * q.block_period_seconds:
        yield Finding("timeouts", GENESIS_FILE,
                      f"requesttimeoutseconds {q.request_timeout_seconds} is less than twice "
                      f"blockperiodseconds {q.block_period_seconds}: rounds expire before a block "
                      "can be proposed, and each expiry doubles the next timeout",
                      "set consensus.request_timeout_seconds to at least twice the block period "
                      "(a new chain), or schedule a transition")
    if q.empty_block_period_seconds > q.request_timeout_seconds:
        yield Finding("timeouts", GENESIS_FILE,
                      f"the empty block period ({q.empty_block_period_seconds}s) is longer than "
                      f"requesttimeoutseconds ({q.request_timeout_seconds}s): idle rounds time out",
                      "raise requesttimeoutseconds to at least the empty block period", WARNING)


def check_keys(directory: Path, spec: NetworkSpec, genesis: Genesis | None) -> Iterator[Finding]:
    in_genesis = {"0x" + v.hex() for v in genesis.validators} if genesis is not None else None
    for node in spec.nodes:
        if node.remote:
            continue
        try:
            info = read_key_info(directory, node.name)
        except KeystoreError as exc:
            yield Finding("keys", node.name, str(exc), "restore the node's key files from your backup")
            continue
        if info is None:
            yield Finding("keys", node.name, f"no key in {directory / KEYS_DIR / node.name}",
                          "restore the key from your backup; a new key is a new identity that the "
                          "network does not know", ERROR if node.is_validator else WARNING)
            continue
        address = "0x" + info.address.hex()
        if node.address.lower() != address:
            yield Finding("keys", node.name,
                          f"its key is {address}, network.yaml says {node.address}",
                          "restore the key whose address network.yaml lists; Besu would start "
                          "with the other key and never take part in consensus")
        if (node.is_validator and in_genesis is not None and not spec.genesis_validators
                and address not in in_genesis):
            yield Finding("keys", node.name,
                          f"key address {address} is not in the genesis validator set",
                          "restore the validator's original key, or vote the new address in "
                          "(`smartta validator add`) before starting it as a validator")


def check_drift(directory: Path, spec: NetworkSpec | None, genesis_ok: bool,
                lock: dict[str, Any]) -> Iterator[Finding]:
    locked: dict[str, str] = lock.get("files", {})
    for name, digest in sorted(locked.items()):
        path = directory / name
        if not path.exists():
            yield Finding("drift", name, "listed in network.lock but missing",
                          f"run `smartta network init --dir {directory}` to regenerate it")
        elif name != GENESIS_FILE and _sha256(path) != digest:
            yield Finding("drift", name, "changed since it was generated (hand-edited?)",
                          "put the change in network.yaml and run `smartta network init` (it "
                          "rewrites generated files), or revert the edit")
    if spec is None or not genesis_ok:
        return
    expected = generated_files(spec, (directory / GENESIS_FILE).read_text(),
                               jwt.public_key(directory / KEYS_DIR))

    def is_stale(name: str, text: str) -> bool:
        path = directory / name
        if name not in locked:
            return True
        # A file edited by hand is reported above; one untouched since init but no longer what
        # the spec gives means the spec changed after init.
        return path.exists() and _sha256(path) == locked[name] and path.read_text() != text

    stale = sorted(name for name, text in expected.items() if is_stale(name, text))
    stale += sorted(name for name in locked if name != GENESIS_FILE and name not in expected)
    if stale:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        yield Finding("drift", "network.yaml",
                      f"generated files are older than network.yaml: {shown}",
                      f"run `smartta network init --dir {directory}` to regenerate them")


def _configs(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Besu config.toml of the folder, hosts and Kubernetes, as Besu would read it."""
    for path in sorted((directory / "besu").glob("*/config.toml")):
        yield str(path.relative_to(directory)), tomllib.loads(path.read_text())
    for name, key, text in _configmap_files(directory):
        if key == "config.toml":
            yield f"{name} ({key})", tomllib.loads(text)


def _configmap_files(directory: Path) -> Iterator[tuple[str, str, str]]:
    path = directory / "kubernetes" / "base" / "configmaps.yaml"
    if not path.exists():
        return
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == "ConfigMap":
            for key, text in (doc.get("data") or {}).items():
                yield f"kubernetes/base/configmaps.yaml {doc['metadata']['name']}", key, text


def check_configs(directory: Path, spec: NetworkSpec, genesis: Genesis | None) -> Iterator[Finding]:
    try:
        configs = list(_configs(directory))
    except tomllib.TOMLDecodeError as exc:
        yield Finding("besu-options", "config.toml", f"a config.toml is not valid TOML: {exc}",
                      "regenerate it with `smartta network init`")
        return
    for name, cfg in configs:
        try:
            problems = check_config(cfg, spec.besu_version)
        except BesuVersionError as exc:
            yield Finding("besu-options", "network.yaml", str(exc), "set besu_version to a current release")
            return
        for p in problems:
            yield Finding("besu-options", name, p.message,
                          f"remove or replace '{p.option}' (Besu {spec.besu_version} refuses to start)")
        if genesis is not None and genesis.zero_base_fee and cfg.get("min-gas-price") != 0:
            yield Finding("free-gas", name,
                          f"the genesis sets zeroBaseFee but min-gas-price is "
                          f"{cfg.get('min-gas-price', 'unset (Besu defaults to 1000 wei)')}",
                          "set min-gas-price = 0 on every node: a node that asks for a gas price "
                          "silently drops the zero-price transactions the others accept (Besu #572)")
    if genesis is not None and spec.gas.free != genesis.zero_base_fee:
        yield Finding("free-gas", GENESIS_FILE,
                      f"network.yaml says gas.free={spec.gas.free} but the genesis has "
                      f"zeroBaseFee={genesis.zero_base_fee}",
                      "make gas.free agree with the genesis the network runs")


def _allowlists(directory: Path) -> Iterator[tuple[str, list[str]]]:
    path = directory / "besu" / "permissions_config.toml"
    if path.exists():
        yield "besu/permissions_config.toml", list(tomllib.loads(path.read_text()).get("nodes-allowlist", []))
    for name, key, text in _configmap_files(directory):
        if key == "permissions_config.toml":
            yield f"{name} ({key})", list(tomllib.loads(text).get("nodes-allowlist", []))


def _enode_id(enode: str) -> str:
    return enode.removeprefix("enode://").split("@")[0].lower()


def check_allowlists(directory: Path, spec: NetworkSpec) -> Iterator[Finding]:
    lists = list(_allowlists(directory))
    if not lists:
        yield Finding("allowlist", "besu/permissions_config.toml", "there is no allowlist",
                      f"run `smartta network init --dir {directory}`")
    for name, entries in lists:
        ids = {_enode_id(e) for e in entries}
        for node in spec.nodes:
            if node.public_key and node.public_key.removeprefix("0x").lower() not in ids:
                extra = " (a bootnode: Besu will not even start)" if "bootnode" in node.roles else ""
                yield Finding("allowlist", name, f"node {node.name} is missing{extra}",
                              "add its enode, or regenerate with `smartta network init` so every "
                              "node shares one list; on running Besu nodes call "
                              "perm_reloadPermissionsFromFile after updating the file")


def check_live(spec: NetworkSpec, genesis_hash: str | None, urls: dict[str, str] | None,
               timeout: float) -> tuple[list[Finding], list[str]]:
    found: list[Finding] = []
    notes: list[str] = []
    expected = sorted(n.address.lower() for n in spec.validators)
    for ep in live.endpoints(spec, urls):
        try:
            block0 = live.call(ep.url, "eth_getBlockByNumber", ["0x0", False], timeout=timeout)
        except live.Unreachable:
            notes.append(f"{ep.node}: not answering at {ep.url}; live checks skipped")
            continue
        except live.RpcError as exc:
            notes.append(f"{ep.node}: eth_getBlockByNumber failed ({exc}); live checks skipped")
            continue
        got = str((block0 or {}).get("hash", "")).lower()
        if genesis_hash and got != genesis_hash.lower():
            found.append(Finding("live", ep.node,
                                 f"runs genesis {got or 'none'}, the network's is {genesis_hash}",
                                 "stop it, delete its data directory and start it with the network's "
                                 "genesis.json: it is on another chain"))
            continue
        try:
            validators = live.addresses(live.call(ep.url, "qbft_getValidatorsByBlockNumber", ["latest"],
                                                  timeout=timeout))
        except (live.RpcError, live.Unreachable) as exc:
            notes.append(f"{ep.node}: qbft_getValidatorsByBlockNumber unavailable ({exc})")
            continue
        if validators != expected:
            missing = sorted(set(expected) - set(validators))
            extra = sorted(set(validators) - set(expected))
            found.append(Finding("live", ep.node,
                                 "its validator set differs from network.yaml"
                                 + (f"; not validators on chain: {', '.join(missing)}" if missing else "")
                                 + (f"; validators unknown to the spec: {', '.join(extra)}" if extra else ""),
                                 "vote the spec's validators in or out (`smartta validator add|remove`), "
                                 "or update network.yaml to the chain's set"))
    return found, notes


def diagnose(directory: Path, *, live_checks: bool = True, urls: dict[str, str] | None = None,
             timeout: float = live.DEFAULT_TIMEOUT) -> Report:
    spec, genesis, lock, findings = _load(directory)
    notes: list[str] = []
    if genesis is not None:
        findings += check_genesis(directory, spec, genesis, lock)
        findings += check_timeouts(genesis)
    if lock is not None:
        findings += check_drift(directory, spec, genesis is not None, lock)
    if spec is not None:
        findings += check_keys(directory, spec, genesis)
        findings += check_configs(directory, spec, genesis)
        findings += check_allowlists(directory, spec)
        if live_checks:
            locked = lock.get("genesis_hash") if lock else None
            live_found, live_notes = check_live(spec, locked, urls, timeout)
            findings += live_found
            notes += live_notes
    return Report(findings, notes)
