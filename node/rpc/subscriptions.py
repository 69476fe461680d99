"""``eth_subscribe`` newHeads and logs: who listens for what, and the notifications a new block
produces. No sockets here: the server feeds blocks in and sends the messages out.

Notifications are Besu's: ``{"jsonrpc":"2.0","method":"eth_subscription","params":
{"subscription":"0x1","result":...}}``, a ``BlockResult`` with transaction hashes for newHeads
(full transactions with ``{"includeTransactions": true}``) and one ``LogResult`` per matching log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.qbft.block import Block
from node.abc import Log, Receipt
from node.rpc import params as P
from node.rpc import results as R
from node.rpc.dispatch import encode
from node.rpc.errors import RpcError, invalid_params, subscription_not_found
from node.rpc.methods import Methods
from node.rpc.params import FilterSpec, Params

KINDS = ("newHeads", "logs")


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    connection: int
    kind: str
    include_transactions: bool = False
    filter: FilterSpec | None = None


def matches(entry: Log, spec: FilterSpec) -> bool:
    if spec.addresses and entry.address not in spec.addresses:
        return False
    for position, wanted in enumerate(spec.topics):
        if wanted is None:
            continue
        if position >= len(entry.topics) or entry.topics[position] not in wanted:
            return False
    return True


class Subscriptions:
    def __init__(self, methods: Methods, max_per_connection: int = 1000) -> None:
        self.methods = methods
        self.max_per_connection = max_per_connection
        self.by_id: dict[int, Subscription] = {}
        self.per_connection: dict[int, set[int]] = {}
        self._next = 1

    def subscribe(self, connection: int, p: Params) -> str:
        kind = p.raw(0, P.SUBSCRIPTION)
        if kind not in KINDS:
            raise invalid_params(P.SUBSCRIPTION,
                                 f"params[0]: {kind!r} is not offered; subscribe to newHeads or logs")
        mine = self.per_connection.setdefault(connection, set())
        if len(mine) >= self.max_per_connection:
            raise RpcError(-32000, f"this connection already has {len(mine)} subscriptions; "
                                   "unsubscribe some first")
        sub_id = self._next
        self._next += 1
        if kind == "newHeads":
            include = False
            if p.has(1):
                options = p.raw(1, P.SUBSCRIPTION)
                if not isinstance(options, dict) or not isinstance(
                        options.get("includeTransactions", False), bool):
                    raise invalid_params(P.SUBSCRIPTION,
                                         'params[1]: expected {"includeTransactions": true|false}')
                include = options.get("includeTransactions", False)
            sub = Subscription(sub_id, connection, kind, include_transactions=include)
        else:
            try:
                spec = P.log_filter(p.values[1] if p.has(1) else {})
            except P.ParamError as exc:
                raise invalid_params("Invalid filter params", f"params[1].{exc}") from None
            sub = Subscription(sub_id, connection, kind, filter=spec)
        self.by_id[sub_id] = sub
        mine.add(sub_id)
        return R.q(sub_id)

    def unsubscribe(self, connection: int, p: Params) -> bool:
        sub_id = p.quantity(0, P.SUBSCRIPTION, 2**63 - 1)
        sub = self.by_id.get(sub_id)
        if sub is None or sub.connection != connection:
            raise subscription_not_found()
        del self.by_id[sub_id]
        self.per_connection[connection].discard(sub_id)
        return True

    def drop(self, connection: int) -> None:
        for sub_id in self.per_connection.pop(connection, set()):
            self.by_id.pop(sub_id, None)

    def on_block(self, block: Block, receipts: list[Receipt]) -> list[tuple[int, bytes]]:
        """(connection, message) for every notification this new head causes, in order."""
        if not self.by_id:
            return []
        out: list[tuple[int, bytes]] = []
        heads: dict[bool, Any] = {}
        logs = [entry for r in receipts for entry in r.logs]
        stamp = block.header.timestamp
        for sub in list(self.by_id.values()):
            if sub.kind == "newHeads":
                if sub.include_transactions not in heads:
                    heads[sub.include_transactions] = self.methods.block_json(
                        block, sub.include_transactions)
                out.append((sub.connection, _note(sub.id, heads[sub.include_transactions])))
            else:
                assert sub.filter is not None
                for entry in logs:
                    if matches(entry, sub.filter):
                        out.append((sub.connection, _note(sub.id, R.log(entry, stamp))))
        return out


def _note(sub_id: int, result: Any) -> bytes:
    return encode({"jsonrpc": "2.0", "method": "eth_subscription",
                   "params": {"subscription": R.q(sub_id), "result": result}})
