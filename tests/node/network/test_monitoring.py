"""Prometheus scrape configs and the alert pack: every alert reads a metric the node exports
under Besu's name (or our QBFT additions), every node is scraped on a host Besu allows."""

from __future__ import annotations

import re
from types import SimpleNamespace

import yaml

from node.abc import NodeStatus
from node.network import monitoring
from node.network.besu import KUBERNETES, host_allowlist, node_config
from node.network.spec import NetworkSpec
from node.rpc import metrics
from node.rpc.methods import Counters

from .netchain import chain_for

PROMQL_WORDS = {"time", "max", "sum", "by", "on", "group_right", "increase", "up", "network", "node",
                "role", "job", "validator", "m"}


def _exported(net) -> set[str]:
    spec = NetworkSpec.load(net)
    chain = chain_for(net, spec, 3)
    status = NodeStatus(name="validator-1", role="validator", address=bytes(20),
                        round_changes={(2, 1): 1}, missed_proposals={bytes(20): 1})
    text = metrics.render(SimpleNamespace(chain=chain, status=status, pool=None), Counters())
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    return {line.split("{")[0].split(" ")[0] for line in samples}


def test_every_alert_reads_only_metrics_the_node_exports(net):
    exported = _exported(net)
    alerts = yaml.safe_load((net / "monitoring" / "alerts.yml").read_text())
    rules = alerts["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {"ChainStalled", "ValidatorPeersBelowQuorum", "NodeBehind",
                                           "ProposerMissingTurns", "RoundChangesRising"}
    used = set()
    for rule in rules:
        expr = re.sub(r'"[^"]*"', "", rule["expr"])
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), rule["alert"]
        used |= {w for w in re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", expr)} - PROMQL_WORDS
        assert rule["labels"]["severity"] in ("critical", "warning") and rule["annotations"]["summary"]
    assert used == set(monitoring.EXPORTED_BY_NODE)
    assert used <= exported


def test_stall_alert_waits_longer_than_a_block_period_plus_failed_rounds_and_two_scrapes(net):
    spec = NetworkSpec.load(net)
    stall = monitoring.stall_seconds(spec)
    c = spec.consensus
    assert stall >= c.block_period_seconds + 2 * c.request_timeout_seconds
    assert stall >= 2 * monitoring.SCRAPE_INTERVAL
    rule = monitoring.alerts(spec)["groups"][0]["rules"][0]
    assert rule["expr"].endswith(f"> {stall}")


def test_every_node_is_scraped_at_its_metrics_port_on_a_host_it_allows(net):
    spec = NetworkSpec.load(net)
    hosts = yaml.safe_load((net / "monitoring" / "prometheus.yml").read_text())
    k8s = yaml.safe_load((net / "monitoring" / "prometheus-kubernetes.yml").read_text())
    for config, kube in ((hosts, False), (k8s, True)):
        static = config["scrape_configs"][0]["static_configs"]
        assert [s["labels"]["node"] for s in static] == [n.name for n in spec.nodes]
        for s in static:
            node = spec.node(s["labels"]["node"])
            host, port = s["targets"][0].rsplit(":", 1)
            if kube:
                assert host in host_allowlist(spec, node, KUBERNETES) and port == "9545"
            else:
                cfg = node_config(spec, node)
                assert host in cfg["host-allowlist"] and int(port) == cfg["metrics-port"]
