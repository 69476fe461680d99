"""The ERC-3643 (T-REX 4.1.6) and ONCHAINID (2.2.1) events the indexer reads, and their decoding.

The event signatures are written out here so the indexer needs no npm artifacts at run time;
tests/indexer/test_tokens.py checks every one against the ABIs shipped in node_modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_hash.auto import keccak

from indexer.abc import RawLog


@dataclass(frozen=True, slots=True)
class EventSpec:
    name: str
    inputs: tuple[tuple[str, str, bool], ...]  # (type, name, indexed)
    source: str  # the contract that declares it, for documentation

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(t for t, _, _ in self.inputs)})"

    @property
    def topic(self) -> bytes:
        return bytes(keccak(self.signature.encode()))


def _e(source: str, name: str, *inputs: tuple[str, str, bool]) -> EventSpec:
    return EventSpec(name, tuple(inputs), source)


A, U, B = "address", "uint256", "bool"
TRANSFER = _e("Token", "Transfer", (A, "from", True), (A, "to", True), (U, "value", False))
TOKEN_EVENTS = (
    TRANSFER,
    _e("Token", "TokensFrozen", (A, "_userAddress", True), (U, "_amount", False)),
    _e("Token", "TokensUnfrozen", (A, "_userAddress", True), (U, "_amount", False)),
    _e("Token", "AddressFrozen", (A, "_userAddress", True), (B, "_isFrozen", True),
       (A, "_owner", True)),
    _e("Token", "Paused", (A, "_userAddress", False)),
    _e("Token", "Unpaused", (A, "_userAddress", False)),
    _e("Token", "RecoverySuccess", (A, "_lostWallet", True), (A, "_newWallet", True),
       (A, "_investorOnchainID", True)),
    _e("Token", "UpdatedTokenInformation", ("string", "_newName", True),
       ("string", "_newSymbol", True), ("uint8", "_newDecimals", False),
       ("string", "_newVersion", False), (A, "_newOnchainID", True)),
    _e("Token", "IdentityRegistryAdded", (A, "_identityRegistry", True)),
    _e("Token", "ComplianceAdded", (A, "_compliance", True)),
    _e("Token", "AgentAdded", (A, "_agent", True)),
    _e("Token", "AgentRemoved", (A, "_agent", True)),
    _e("IdentityRegistry", "IdentityRegistered", (A, "investorAddress", True),
       (A, "identity", True)),
    _e("IdentityRegistry", "IdentityRemoved", (A, "investorAddress", True),
       (A, "identity", True)),
    _e("IdentityRegistry", "IdentityUpdated", (A, "oldIdentity", True), (A, "newIdentity", True)),
    _e("IdentityRegistry", "CountryUpdated", (A, "investorAddress", True),
       ("uint16", "country", True)),
    _e("ModularCompliance", "ModuleAdded", (A, "_module", True)),
    _e("ModularCompliance", "ModuleRemoved", (A, "_module", True)),
    _e("ModularCompliance", "TokenBound", (A, "_token", False)),
    _e("ModularCompliance", "TokenUnbound", (A, "_token", False)),
    _e("TREXFactory", "TREXSuiteDeployed", (A, "_token", True), (A, "_ir", False),
       (A, "_irs", False), (A, "_tir", False), (A, "_ctr", False), (A, "_mc", False),
       ("string", "_salt", True)),
)
_CLAIM = (("bytes32", "claimId", True), (U, "topic", True),
          (U, "scheme", False), (A, "issuer", True), ("bytes", "signature", False),
          ("bytes", "data", False), ("string", "uri", False))
CLAIM_EVENTS = (
    _e("Identity", "ClaimAdded", *_CLAIM),
    _e("Identity", "ClaimRemoved", *_CLAIM),
    _e("Identity", "ClaimChanged", *_CLAIM),
)
"""ONCHAINID claim events, emitted by every investor's own identity contract: read from any
address, since identities are created per investor."""

BY_TOPIC: dict[bytes, EventSpec] = {e.topic: e for e in TOKEN_EVENTS + CLAIM_EVENTS}
TOKEN_TOPICS = tuple(e.topic for e in TOKEN_EVENTS)
CLAIM_TOPICS = tuple(e.topic for e in CLAIM_EVENTS)


class TokenEventError(ValueError):
    """A log whose topics or data do not fit the event its topic 0 names."""


def _json_value(kind: str, value: Any) -> Any:
    if kind == "address":
        return str(value).lower()
    if kind == "bool":
        return bool(value)
    if kind.startswith(("uint", "int")):
        return str(value)  # JSON numbers lose precision above 2**53
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def decode(spec: EventSpec, log: RawLog) -> dict[str, Any]:
    """The event's arguments as JSON values (addresses lower-case hex, integers as decimal
    strings, bytes as hex; an indexed string or bytes is only its keccak, as hex)."""
    indexed = [(t, n) for t, n, i in spec.inputs if i]
    plain = [(t, n) for t, n, i in spec.inputs if not i]
    where = f"{spec.name} log {log.log_index} of block {log.block_number}"
    if len(log.topics) != 1 + len(indexed):
        raise TokenEventError(f"{where}: {len(log.topics) - 1} indexed topics, the event has "
                              f"{len(indexed)}")
    args: dict[str, Any] = {}
    for (kind, name), topic in zip(indexed, log.topics[1:], strict=True):
        if kind in ("string", "bytes"):
            args[name] = "0x" + topic.hex()
        else:
            try:
                (value,) = abi_decode([kind], topic)
            except DecodingError as exc:
                raise TokenEventError(f"{where}: topic {name} is not a {kind}: {exc}") from None
            args[name] = _json_value(kind, value)
    if plain:
        try:
            values = abi_decode([t for t, _ in plain], log.data)
        except DecodingError as exc:
            raise TokenEventError(f"{where}: data does not decode: {exc}") from None
        for (kind, name), value in zip(plain, values, strict=True):
            args[name] = _json_value(kind, value)
    return args


def decode_transfer(log: RawLog) -> tuple[bytes, bytes, int]:
    """(from, to, value) of an ERC-20 Transfer, without the general decoder's cost."""
    if len(log.topics) != 3 or len(log.data) != 32 or any(t[:12] != bytes(12)
                                                          for t in log.topics[1:]):
        raise TokenEventError(f"Transfer log {log.log_index} of block {log.block_number} is not "
                              "(address indexed, address indexed, uint256)")
    return log.topics[1][12:], log.topics[2][12:], int.from_bytes(log.data, "big")


def check_against_abi(abi: list[Mapping[str, Any]], specs: tuple[EventSpec, ...]) -> list[str]:
    """Differences between ``specs`` and the events of a contract ABI (for the tests)."""
    declared = {e["name"]: e for e in abi if e.get("type") == "event"}
    problems = []
    for spec in specs:
        event = declared.get(spec.name)
        if event is None:
            problems.append(f"{spec.name}: not in the ABI")
            continue
        theirs = tuple((i["type"], i["name"], bool(i["indexed"])) for i in event["inputs"])
        if theirs != spec.inputs:
            problems.append(f"{spec.name}: ours {spec.inputs}, ABI {theirs}")
    return problems
