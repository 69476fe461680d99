"""``/metrics`` in the Prometheus text format, with Besu's metric names where Besu has one, so
Besu dashboards and alerts work unchanged, plus what Besu lacks: QBFT round changes by height and
round, and proposals missed per validator.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from node.abc import NodeAPI
from node.rpc.methods import Counters

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Besu labels pool rejections with TransactionInvalidReason names.
_REASONS = {
    "Nonce too low": "NONCE_TOO_LOW",
    "Nonce too high": "NONCE_TOO_HIGH",
    "Invalid signature": "INVALID_SIGNATURE",
    "Intrinsic gas exceeds gas limit": "INTRINSIC_GAS_EXCEEDS_GAS_LIMIT",
    "Upfront cost exceeds account balance": "UPFRONT_COST_EXCEEDS_BALANCE",
    "Transaction gas limit exceeds block gas limit": "EXCEEDS_BLOCK_GAS_LIMIT",
    "Wrong chainId": "WRONG_CHAIN_ID",
    "Invalid chain id": "WRONG_CHAIN_ID",
    "Gas price below configured minimum gas price": "GAS_PRICE_TOO_LOW",
    "Known transaction": "TRANSACTION_ALREADY_KNOWN",
    "Replacement transaction underpriced": "TRANSACTION_REPLACEMENT_UNDERPRICED",
    "Transaction nonce is too distant from current sender nonce": "NONCE_TOO_FAR_IN_FUTURE_FOR_SENDER",
    "Invalid transaction type": "INVALID_TRANSACTION_FORMAT",
}


def _reason_label(reason: str) -> str:
    return _REASONS.get(reason) or re.sub(r"[^A-Z0-9]+", "_", reason.upper()).strip("_")[:64]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: Iterable[tuple[str, str]] = ()) -> None:
        text = repr(float(value)) if isinstance(value, float) else str(value)
        self.lines.append(f"{name}{_labels(labels)} {text}")

    def gauge(self, name: str, help_text: str, value: float) -> None:
        self.family(name, "gauge", help_text)
        self.sample(name, value)


def render(node: NodeAPI, counters: Counters) -> str:
    chain, status = node.chain, node.status
    head = chain.head
    blk = chain.block(head.number)
    o = _Out()
    o.gauge("ethereum_blockchain_height", "The current height of the canonical chain", head.number)
    best = status.syncing[2] if status.syncing else head.number
    o.gauge("ethereum_best_known_block_number", "The estimated highest block available", best)
    o.gauge("ethereum_peer_count", "The current number of peers connected", len(status.peers))
    o.gauge("besu_blockchain_chain_head_timestamp", "Timestamp from the current chain head",
            head.timestamp)
    o.gauge("besu_blockchain_chain_head_transaction_count",
            "Number of transactions in the current chain head block",
            len(blk.transactions) if blk else 0)
    o.gauge("besu_blockchain_chain_head_gas_used", "Gas used by the current chain head block",
            head.gas_used)
    o.gauge("besu_blockchain_chain_head_gas_limit", "Block gas limit of the current chain head block",
            head.gas_limit)
    o.gauge("besu_blockchain_difficulty_total", "Total difficulty of the chainhead",
            chain.genesis.header().difficulty + head.number)
    o.gauge("besu_synchronizer_in_sync", "Whether the node is in sync (1) or catching up (0)",
            0 if status.syncing else 1)

    if node.pool is not None:
        stats = node.pool.stats()
        o.family("besu_transaction_pool_number_of_transactions", "gauge",
                 "The number of transactions currently present in the layer")
        o.sample("besu_transaction_pool_number_of_transactions",
                 stats.local_count + stats.remote_count, [("layer", "pending")])
        o.gauge("smartta_transaction_pool_max_size", "The most transactions the pool holds",
                stats.max_size)
    o.family("besu_transaction_pool_added", "counter",
             "Count of transactions added to the transaction pool")
    o.sample("besu_transaction_pool_added_total", counters.pool_added, [("source", "local")])
    o.family("besu_transaction_pool_rejected", "counter",
             "Count of transactions not accepted to the transaction pool")
    for reason, count in sorted(counters.pool_rejected.items()):
        o.sample("besu_transaction_pool_rejected_total", count,
                 [("source", "local"), ("reason", _reason_label(reason))])

    o.family("besu_rpc_request_time", "summary", "Time taken to process a JSON-RPC request")
    for method, (calls, seconds) in sorted(counters.requests.items()):
        o.sample("besu_rpc_request_time_count", int(calls), [("methodName", method)])
        o.sample("besu_rpc_request_time_sum", float(seconds), [("methodName", method)])
    o.family("besu_rpc_errors_count", "counter", "Number of errors per RPC method and RPC error type")
    for (method, kind), count in sorted(counters.errors.items()):
        o.sample("besu_rpc_errors_count_total", count, [("rpcMethod", method), ("errorType", kind)])

    o.family("smartta_qbft_round_changes", "counter",
             "Rounds this node moved past at a height (round = the round it changed to)")
    for (height, rnd), count in sorted(status.round_changes.items()):
        o.sample("smartta_qbft_round_changes_total", count, [("height", str(height)), ("round", str(rnd))])
    o.family("smartta_qbft_proposals_missed", "counter",
             "Rounds whose proposer sent no valid proposal in time, per validator")
    for validator, count in sorted(status.missed_proposals.items()):
        o.sample("smartta_qbft_proposals_missed_total", count, [("validator", "0x" + validator.hex())])
    o.family("smartta_qbft_equivocations", "counter",
             "Conflicting blocks at one height, each with a quorum of valid seals (evidence kept)")
    o.sample("smartta_qbft_equivocations_total", status.equivocations, [])
    return "\n".join(o.lines) + "\n"
