"""Prometheus scrape configs and an alert pack for a network, generated from its spec.

The alerts use Besu's metric names (``besu_blockchain_chain_head_timestamp``,
``ethereum_peer_count``, ``ethereum_blockchain_height``, ``ethereum_best_known_block_number``),
which our node exports under the same names, plus what Besu does not export and our node does:
``smartta_qbft_round_changes_total`` and ``smartta_qbft_proposals_missed_total`` (on Besu,
proposer misses show in ``qbft_getSignerMetrics``, which ``smartta network health`` reports).

Thresholds come from the genesis settings: a QBFT round that times out costs
``requesttimeoutseconds`` (doubling each round), so "stalled" means no block for longer than a
block period plus two failed rounds, and never less than two scrape intervals.
"""

from __future__ import annotations

from typing import Any

import yaml

from chain.qbft.quorum import quorum
from node.network import besu
from node.network.besu import HOSTS, KUBERNETES, Target, primary_role
from node.network.spec import NetworkSpec

SCRAPE_INTERVAL = 15
EXPORTED_BY_NODE = (
    "besu_blockchain_chain_head_timestamp", "ethereum_peer_count", "ethereum_blockchain_height",
    "ethereum_best_known_block_number", "smartta_qbft_round_changes_total",
    "smartta_qbft_proposals_missed_total", "smartta_qbft_equivocations_total",
)
"""Metric names the alert pack reads; a test holds them against what node.rpc exports."""


def job(spec: NetworkSpec) -> str:
    return f"smartta-{spec.name}"


def scrape_config(spec: NetworkSpec, target: Target) -> dict[str, Any]:
    static = []
    for node in spec.nodes:
        port = besu.K8S_METRICS_PORT if target.kubernetes else node.metrics_port
        static.append({"targets": [f"{target.host(spec, node)}:{port}"],
                       "labels": {"network": spec.name, "node": node.name, "role": primary_role(node)}})
    return {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL}s", "evaluation_interval": f"{SCRAPE_INTERVAL}s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [{"job_name": job(spec), "metrics_path": "/metrics", "static_configs": static}],
    }


def stall_seconds(spec: NetworkSpec) -> int:
    c = spec.consensus
    period = max(c.block_period_seconds, c.empty_block_period_seconds)
    return max(2 * SCRAPE_INTERVAL + period, period + 3 * c.request_timeout_seconds)


def alerts(spec: NetworkSpec) -> dict[str, Any]:
    net = f'network="{spec.name}"'
    n = len(spec.validators)
    peers_for_quorum = quorum(n) - 1
    others = len(spec.nodes) - 1
    stall = stall_seconds(spec)
    rules = [
        {"alert": "ChainStalled",
         "expr": f"time() - max(besu_blockchain_chain_head_timestamp{{{net}}}) > {stall}",
         "for": "1m", "labels": {"severity": "critical"},
         "annotations": {
             "summary": f"no new block on {spec.name} for more than {stall}s",
             "description": "Fewer than a quorum of validators are live or in agreement. Check "
                            "`smartta network status` and the validators' logs for round changes; "
                            "after a long outage the round timeout has doubled many times, and "
                            "restarting all validators together resumes fastest."}},
        {"alert": "NodeDown", "expr": f'up{{job="{job(spec)}"}} == 0', "for": "2m",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "{{ $labels.node }} does not answer metrics scrapes",
                         "description": "The node is down or its metrics port is unreachable."}},
        {"alert": "ValidatorPeersBelowQuorum",
         "expr": f'ethereum_peer_count{{{net},role="validator"}} < {peers_for_quorum}',
         "for": "2m", "labels": {"severity": "critical"},
         "annotations": {"summary": "{{ $labels.node }} sees fewer peers than a quorum needs",
                         "description": f"A validator needs {peers_for_quorum} peers to reach "
                                        f"a quorum of {quorum(n)} of {n}. Check the allowlist, "
                                        "static nodes and the network path (`smartta network "
                                        "doctor`)."}},
        {"alert": "PeersLow",
         "expr": f"ethereum_peer_count{{{net}}} < {others}",
         "for": "10m", "labels": {"severity": "warning"},
         "annotations": {"summary": "{{ $labels.node }} has {{ $value }} peers of "
                                    f"{others}",
                         "description": "A node of the network is not connected to every other."}},
        {"alert": "NodeBehind",
         "expr": f"max by (network) (ethereum_blockchain_height{{{net}}}) - on (network) group_right "
                 f"ethereum_blockchain_height{{{net}}} > 5",
         "for": "2m", "labels": {"severity": "warning"},
         "annotations": {"summary": "{{ $labels.node }} is {{ $value }} blocks behind the network",
                         "description": "The node is syncing or cut off from its peers."}},
        {"alert": "NodeSyncing",
         "expr": f"ethereum_best_known_block_number{{{net}}} - ethereum_blockchain_height{{{net}}} > 2",
         "for": "5m", "labels": {"severity": "warning"},
         "annotations": {"summary": "{{ $labels.node }} knows of blocks it has not imported",
                         "description": "Sync is slow or stuck; check the node's disk and logs."}},
        {"alert": "ProposerMissingTurns",
         "expr": f"increase(smartta_qbft_proposals_missed_total{{{net}}}[15m]) > 2",
         "for": "0m", "labels": {"severity": "warning"},
         "annotations": {"summary": "validator {{ $labels.validator }} missed its proposer turns",
                         "description": "Each missed turn costs the network a round timeout. On "
                                        "Besu, read proposedBlockCount per validator with "
                                        "`smartta network health`; vote out a validator that "
                                        "is gone for good."}},
        {"alert": "RoundChangesRising",
         "expr": f"sum by (network, node) (increase(smartta_qbft_round_changes_total{{{net}}}[10m])) > 3",
         "for": "0m", "labels": {"severity": "warning"},
         "annotations": {"summary": "{{ $labels.node }} moved past {{ $value }} rounds in 10 minutes",
                         "description": "Proposals arrive late or validators are missing; check "
                                        "requesttimeoutseconds against the block period and the "
                                        "validators' connectivity."}},
        {"alert": "EquivocationDetected",
         "expr": f"smartta_qbft_equivocations_total{{{net}}} > 0",
         "for": "0m", "labels": {"severity": "critical"},
         "annotations": {"summary": "{{ $labels.node }} holds two sealed blocks at one height",
                         "description": "More than a third of the validators signed two blocks. "
                                        "The evidence (both headers and their seals) is in the "
                                        "node's data/evidence folder; stop and investigate "
                                        "before accepting any further block."}},
    ]
    return {"groups": [{"name": f"smartta-{spec.name}", "rules": rules}]}


def files(spec: NetworkSpec) -> dict[str, str]:
    header = "".join(f"# {line}\n" for line in besu.GENERATED.splitlines())

    def dump(doc: dict[str, Any]) -> str:
        return header + yaml.safe_dump(doc, sort_keys=False, width=120)

    return {
        "monitoring/prometheus.yml": dump(scrape_config(spec, HOSTS)),
        "monitoring/prometheus-kubernetes.yml": dump(scrape_config(spec, KUBERNETES)),
        "monitoring/alerts.yml": dump(alerts(spec)),
    }
