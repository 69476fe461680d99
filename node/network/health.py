"""``smartta network health``: a JSON report of what each node says about itself, signed with
the operator's key for an audit trail, and the check of such a report.

The signature is an Ethereum personal-message signature (EIP-191) over the report's canonical
JSON (RFC 8785), so anyone can check it with common tools as well as with ``--verify``; the
report carries the genesis hash and the hashes of the generated configs from network.lock, so
it says which network and which configuration it speaks for.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import rfc8785
from eth_hash.auto import keccak

from chain.abc import Signer
from chain.qbft.seals import SealError, recover
from node.network import live
from node.network.besu import primary_role
from node.network.spec import NetworkSpec

FORMAT = "smartta-health/1"


class HealthError(ValueError):
    """A health report that does not verify, saying what is wrong with it."""


def _int(value: Any) -> int:
    return int(str(value), 16) if isinstance(value, str) else int(value)


def node_report(url: str, now: int, timeout: float) -> dict[str, Any]:
    """What one node answers; an unreachable node is reported as such, not skipped."""
    try:
        head = live.call(url, "eth_getBlockByNumber", ["latest", False], timeout=timeout)
        genesis = live.call(url, "eth_getBlockByNumber", ["0x0", False], timeout=timeout)
        peers = _int(live.call(url, "net_peerCount", [], timeout=timeout))
    except (live.Unreachable, live.RpcError) as exc:
        return {"reachable": False, "error": str(exc)}
    out: dict[str, Any] = {
        "reachable": True,
        "height": _int(head["number"]),
        "head_hash": head["hash"],
        "head_timestamp": _int(head["timestamp"]),
        "head_age_seconds": now - _int(head["timestamp"]),
        "peers": peers,
        "genesis_hash": genesis["hash"],
    }
    try:
        out["validators"] = live.addresses(
            live.call(url, "qbft_getValidatorsByBlockNumber", ["latest"], timeout=timeout))
        metrics = live.call(url, "qbft_getSignerMetrics", [], timeout=timeout) or []
        out["signer_metrics"] = sorted(
            ({"address": str(m["address"]).lower(), "proposed_blocks": _int(m["proposedBlockCount"]),
              "last_proposed_block": _int(m["lastProposedBlockNumber"])} for m in metrics),
            key=lambda m: m["address"])
    except (live.Unreachable, live.RpcError) as exc:
        out["qbft_error"] = str(exc)
    try:
        status, _ = live.get(url, "/readiness", timeout=timeout)
        out["ready"] = status == 200
    except live.Unreachable as exc:
        out["ready"] = False
        out["readiness_error"] = str(exc)
    return out


def collect(spec: NetworkSpec, lock: dict[str, Any], *, urls: dict[str, str] | None = None,
            timeout: float = live.DEFAULT_TIMEOUT, now: int | None = None) -> dict[str, Any]:
    created = int(time.time()) if now is None else now
    nodes = []
    for ep in live.endpoints(spec, urls):
        node = spec.node(ep.node)
        nodes.append({"name": node.name, "role": primary_role(node), "rpc": ep.url,
                      **node_report(ep.url, created, timeout)})
    return {
        "format": FORMAT,
        "network": spec.name,
        "chain_id": spec.chain_id,
        "besu_version": spec.besu_version,
        "created_at": created,
        "created": datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z"),
        "genesis_hash": lock.get("genesis_hash"),
        "config_hashes": lock.get("files", {}),
        "expected_validators": sorted(n.address.lower() for n in spec.validators),
        "nodes": nodes,
    }


def _digest(report: dict[str, Any]) -> bytes:
    message = rfc8785.dumps(report)
    return bytes(keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message))


def sign(report: dict[str, Any], signer: Signer) -> dict[str, Any]:
    body = dict(report, signer="0x" + signer.address.hex())
    return {"report": body, "signature": "0x" + signer.sign_digest(_digest(body)).hex()}


def verify(document: Any, *, signer: str | None = None, lock: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report if the signature is the claimed signer's and the content holds together;
    HealthError naming the first problem otherwise. With ``signer``, only that key is accepted;
    with ``lock``, the report must be about that network's genesis and configuration."""
    if not isinstance(document, dict) or not isinstance(document.get("report"), dict):
        raise HealthError("not a signed health report: expected {\"report\": {...}, \"signature\": ...}")
    report: dict[str, Any] = document["report"]
    if report.get("format") != FORMAT:
        raise HealthError(f"unknown report format {report.get('format')!r}; expected {FORMAT}")
    try:
        seal = bytes.fromhex(str(document.get("signature", "")).removeprefix("0x"))
        recovered = "0x" + recover(seal, _digest(report)).hex()
    except (ValueError, SealError) as exc:
        raise HealthError(f"the signature does not verify: {exc}") from None
    claimed = str(report.get("signer", "")).lower()
    if recovered != claimed:
        raise HealthError(f"the report was changed after signing, or not signed by {claimed} "
                          f"(the signature is {recovered}'s)")
    if signer is not None and claimed != signer.lower():
        raise HealthError(f"signed by {claimed}, not by the expected operator {signer.lower()}")
    _check_content(report)
    if lock is not None:
        if report.get("genesis_hash") != lock.get("genesis_hash"):
            raise HealthError(f"the report is about genesis {report.get('genesis_hash')}, this "
                              f"network's is {lock.get('genesis_hash')}")
        if report.get("config_hashes") != lock.get("files"):
            ours, theirs = lock.get("files", {}), report.get("config_hashes", {})
            names = sorted({*ours, *theirs} - {n for n in ours if ours.get(n) == theirs.get(n)})
            raise HealthError("the report was made for other generated files than network.lock "
                              f"lists: {', '.join(names)}")
    return report


def _check_content(report: dict[str, Any]) -> None:
    created = report.get("created_at")
    if not isinstance(created, int):
        raise HealthError("created_at is missing or not an integer")
    for node in report.get("nodes", []):
        if not node.get("reachable"):
            continue
        name = node.get("name")
        if node.get("genesis_hash") != report.get("genesis_hash"):
            raise HealthError(f"node {name} reports genesis {node.get('genesis_hash')}, the report "
                              f"claims {report.get('genesis_hash')}")
        if created - node.get("head_timestamp", 0) != node.get("head_age_seconds"):
            raise HealthError(f"node {name}: head_age_seconds does not match created_at and "
                              "head_timestamp")


def problems(report: dict[str, Any]) -> list[str]:
    """What a verified report says is wrong with the network (empty when all is well)."""
    out = []
    expected = report.get("expected_validators", [])
    for node in report.get("nodes", []):
        name = node["name"]
        if not node.get("reachable"):
            out.append(f"{name}: unreachable ({node.get('error')})")
            continue
        if not node.get("ready"):
            out.append(f"{name}: not ready")
        if "validators" in node and node["validators"] != expected:
            out.append(f"{name}: validator set differs from network.yaml")
        for m in node.get("signer_metrics", []):
            if m["address"] in expected and m["proposed_blocks"] == 0:
                out.append(f"{name}: validator {m['address']} proposed no block in the last 100")
    return out
