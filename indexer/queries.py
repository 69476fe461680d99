"""What the query API answers, as plain functions over one read transaction (no FastAPI).

Every function takes a ``View``: a connection inside a REPEATABLE READ transaction that has
read the checkpoints first, so the rows it returns are exactly those committed with those
checkpoints, and ``View.consistency`` says which heights they are. Pages are keyed (never
OFFSET): a cursor carries the last key and the height of the first page, so later pages stay
consistent with it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg

from indexer import pg
from indexer.abc import IndexerError

MAX_LIMIT = 1000


class QueryError(IndexerError):
    """A request the data cannot answer as asked; ``status`` is the HTTP status to give."""

    def __init__(self, message: str, *, status: int = 400, kind: str = "invalid-parameter",
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


@dataclass
class View:
    conn: asyncpg.Connection
    schema: str
    chains: dict[int, tuple[int, bytes | None]] = field(default_factory=dict)
    ledger_chain: int | None = None
    ledger_seq: int = 0
    bus: tuple[int, int] | None = None
    balances_current: bool = True
    """False while a bulk backfill has set the current balances aside (indexer.pg.BALANCES):
    the register is then read from balance_changes, at the indexed height."""

    @classmethod
    async def open(cls, conn: asyncpg.Connection, schema: str) -> View:
        """Read the checkpoints; call inside the request's transaction, before anything else."""
        view = cls(conn, pg.check_schema(schema))
        rows = await conn.fetch(f"SELECT source, chain_id, block_number, block_hash, ledger_seq, "
                                f"ledger_head, bus_xid, bus_id FROM {schema}.checkpoints")
        for r in rows:
            if r["source"].startswith("chain:"):
                view.chains[r["chain_id"]] = (r["block_number"], None if r["block_hash"] is None
                                              else bytes(r["block_hash"]))
                if r["ledger_head"] is not None:
                    view.ledger_chain = r["chain_id"]
                    view.ledger_seq = r["ledger_seq"]
            elif r["source"].startswith("bus:"):
                view.bus = (r["bus_xid"], r["bus_id"])
        view.balances_current = not await conn.fetchval(
            f"SELECT exists(SELECT 1 FROM {schema}.deferred_indexes WHERE name = $1)",
            pg.BALANCES)
        return view

    @property
    def ledger_height(self) -> int:
        if self.ledger_chain is None:
            return -1
        return self.chains.get(self.ledger_chain, (-1, None))[0]

    def consistency(self) -> dict[str, Any]:
        return {
            "chains": {str(c): {"block": h, "blockHash": None if b is None else "0x" + b.hex()}
                       for c, (h, b) in sorted(self.chains.items())},
            "ledger": None if self.ledger_chain is None else {
                "chainId": self.ledger_chain, "block": self.ledger_height, "seq": self.ledger_seq},
            "bus": None if self.bus is None else {"xid": self.bus[0], "id": self.bus[1]},
        }

    def t(self, table: str) -> str:
        return f"{self.schema}.{table}"


# ---- cursors ---------------------------------------------------------------------------------

def encode_cursor(key: list[Any], height: int) -> str:
    raw = json.dumps({"k": key, "h": height}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[list[Any] | None, int | None]:
    if not cursor:
        return None, None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
        key, height = value["k"], value["h"]
        if not isinstance(key, list) or not isinstance(height, int):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise QueryError("cursor is not one this API issued; pass the `next` value of the "
                         "previous page unchanged, or omit it to start over",
                         kind="invalid-cursor") from None
    return key, height


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit {limit} is out of range; use 1 to {MAX_LIMIT}")
    return limit


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + bytes(value).hex()


def _dec(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# ---- ledger records --------------------------------------------------------------------------

RECORD_COLUMNS = ("seq, block_number, block_hash, tx_hash, log_index, actor, event_type, nonce, "
                  "scheme, attestation_id, data_hash, previous_hash, record_hash, time, delta, "
                  "fund, investor, counterparty, reference, finding, chain_id, units")


def record_json(r: asyncpg.Record) -> dict[str, Any]:
    delta = bytes(r["delta"])
    try:
        parsed: Any = json.loads(delta)
    except ValueError:
        parsed = None
    return {
        "seq": r["seq"], "chainId": r["chain_id"], "blockNumber": r["block_number"],
        "blockHash": _hex(r["block_hash"]), "txHash": _hex(r["tx_hash"]),
        "logIndex": r["log_index"], "time": _time(r["time"]), "actor": _hex(r["actor"]),
        "eventType": r["event_type"], "nonce": str(r["nonce"]), "scheme": r["scheme"],
        "attestationId": _hex(r["attestation_id"]), "dataHash": _hex(r["data_hash"]),
        "previousHash": _hex(r["previous_hash"]), "recordHash": _hex(r["record_hash"]),
        "delta": delta.decode("utf-8", errors="replace"), "fields": parsed,
        "fund": r["fund"], "investor": r["investor"], "counterparty": r["counterparty"],
        "reference": r["reference"], "finding": r["finding"], "units": _dec(r["units"]),
    }


async def records(view: View, *, event_type: str | None = None, actor: bytes | None = None,
                  fund: str | None = None, investor: str | None = None,
                  reference: str | None = None, from_seq: int | None = None, limit: int = 100,
                  cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    limit = check_limit(limit)
    key, height = decode_cursor(cursor)
    height = view.ledger_height if height is None else min(height, view.ledger_height)
    # chain_id first: the primary key (chain_id, seq) then serves the plain listing.
    where = ["chain_id = $1", "block_number <= $2"]
    args: list[Any] = [view.ledger_chain, height]

    def add(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))

    if event_type is not None:
        add("event_type = ?", event_type)
    if actor is not None:
        add("actor = ?", actor)
    if fund is not None:
        add("fund = ?", fund)
    if reference is not None:
        add("reference = ?", reference)
    if from_seq is not None:
        add("seq >= ?", from_seq)
    if key is not None:
        add("seq > ?", int(key[0]))
    sql_where = " AND ".join(where)
    t = view.t("ledger_records")
    if investor is not None:
        # One index scan as sender or holder, one as receiver, each stopping at the page; an
        # OR (or IN over both) would scan the table.
        args.append(investor)
        n = len(args)
        sql = (f"SELECT * FROM ((SELECT {RECORD_COLUMNS} FROM {t} WHERE {sql_where} AND "
               f"investor = ${n} ORDER BY seq LIMIT {limit + 1}) UNION (SELECT {RECORD_COLUMNS} "
               f"FROM {t} WHERE {sql_where} AND counterparty = ${n} ORDER BY seq "
               f"LIMIT {limit + 1})) u ORDER BY seq LIMIT {limit + 1}")
    else:
        sql = (f"SELECT {RECORD_COLUMNS} FROM {t} WHERE {sql_where} ORDER BY seq "
               f"LIMIT {limit + 1}")
    rows = await view.conn.fetch(sql, *args)
    page = [record_json(r) for r in rows[:limit]]
    nxt = encode_cursor([page[-1]["seq"]], height) if len(rows) > limit else None
    return page, nxt


async def record(view: View, seq: int) -> dict[str, Any]:
    row = await view.conn.fetchrow(
        f"SELECT {RECORD_COLUMNS} FROM {view.t('ledger_records')} WHERE chain_id = $1 AND "
        f"seq = $2 AND block_number <= $3", view.ledger_chain, seq, view.ledger_height)
    if row is None:
        raise QueryError(f"no ledger record {seq} (indexed up to record {view.ledger_seq})",
                         status=404, kind="not-found")
    return record_json(row)


# ---- register and holdings -------------------------------------------------------------------

async def block_at(view: View, chain_id: int, at: dt.datetime) -> int:
    """The last indexed block of ``chain_id`` at or before ``at``."""
    number = await view.conn.fetchval(
        f"SELECT max(number) FROM {view.t('blocks')} WHERE chain_id = $1 AND time <= $2 AND "
        f"number <= $3", chain_id, at, view.chains.get(chain_id, (-1, None))[0])
    if number is None:
        raise QueryError(f"no indexed block of chain {chain_id} at or before {_time(at)}",
                         status=404, kind="not-found")
    return int(number)


async def resolve_height(view: View, chain_id: int | None, block: int | None,
                         at: dt.datetime | None) -> int:
    if chain_id is None or chain_id not in view.chains:
        raise QueryError("nothing is indexed for this chain yet", status=404, kind="not-found")
    indexed = view.chains[chain_id][0]
    if block is not None and at is not None:
        raise QueryError("give `block` or `at`, not both")
    if block is not None:
        if block < 0:
            raise QueryError(f"block {block} is negative")
        if block > indexed:
            raise QueryError(f"block {block} is not indexed yet (indexed up to {indexed}); ask "
                             "again later or for an earlier block", status=409,
                             kind="not-indexed-yet")
        return block
    if at is not None:
        if at.tzinfo is None:
            raise QueryError("`at` needs a time zone, e.g. 2026-11-25T12:00:00Z")
        return await block_at(view, chain_id, at)
    return indexed


async def register(view: View, kind: str, chain_id: int | None, asset: str, *,
                   block: int | None = None, at: dt.datetime | None = None, limit: int = 100,
                   cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None, int]:
    """Holders of ``asset`` and their balances at a block (default: the indexed height)."""
    limit = check_limit(limit)
    key, pinned = decode_cursor(cursor)
    height = pinned if pinned is not None else await resolve_height(view, chain_id, block, at)
    after = str(key[0]) if key else ""
    if view.balances_current and height == view.chains.get(chain_id or -1, (-1, None))[0]:
        rows = await view.conn.fetch(
            f"SELECT holder, balance, block_number FROM {view.t('balances')} WHERE kind = $1 "
            f"AND chain_id = $2 AND asset = $3 AND holder > $4 AND balance <> 0 "
            f"ORDER BY holder LIMIT {limit + 1}", kind, chain_id, asset, after)
    else:
        rows = await view.conn.fetch(
            f"SELECT holder, balance, block_number FROM (SELECT DISTINCT ON (holder) holder, "
            f"balance, block_number FROM {view.t('balance_changes')} WHERE kind = $1 AND "
            f"chain_id = $2 AND asset = $3 AND holder > $4 AND block_number <= $5 "
            f"ORDER BY holder, block_number DESC, ordinal DESC, leg DESC) h "
            f"WHERE balance <> 0 ORDER BY holder LIMIT {limit + 1}",
            kind, chain_id, asset, after, height)
    page = [{"holder": r["holder"], "balance": _dec(r["balance"]),
             "changedAtBlock": r["block_number"]} for r in rows[:limit]]
    nxt = encode_cursor([page[-1]["holder"]], height) if len(rows) > limit else None
    return page, nxt, height


async def holdings(view: View, investor: str, *, block: int | None = None,
                   at: dt.datetime | None = None) -> tuple[list[dict[str, Any]], int]:
    height = await resolve_height(view, view.ledger_chain, block, at)
    rows = await view.conn.fetch(
        f"SELECT DISTINCT ON (asset) asset, balance, block_number FROM "
        f"{view.t('balance_changes')} WHERE kind = 'units' AND holder = $1 AND "
        f"chain_id = $2 AND block_number <= $3 ORDER BY asset, block_number DESC, "
        f"ordinal DESC, leg DESC", investor, view.ledger_chain, height)
    return [{"fund": r["asset"], "units": _dec(r["balance"]), "changedAtBlock": r["block_number"]}
            for r in rows if r["balance"] != 0], height


async def nav_history(view: View, isin: str, *, since: dt.date | None = None,
                      until: dt.date | None = None, limit: int = 100,
                      cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    limit = check_limit(limit)
    key, height = decode_cursor(cursor)
    height = view.ledger_height if height is None else height
    args: list[Any] = [isin, height]
    where = ["isin = $1", "block_number <= $2"]
    if since is not None:
        args.append(since)
        where.append(f"nav_date >= ${len(args)}")
    if until is not None:
        args.append(until)
        where.append(f"nav_date <= ${len(args)}")
    if key is not None:
        args += [dt.date.fromisoformat(key[0]), int(key[1])]
        where.append(f"(nav_date, seq) > (${len(args) - 1}, ${len(args)})")
    rows = await view.conn.fetch(
        f"SELECT seq, nav_date, nav, currency, net_assets, units_outstanding, block_number, time "
        f"FROM {view.t('nav_history')} WHERE {' AND '.join(where)} ORDER BY nav_date, seq "
        f"LIMIT {limit + 1}", *args)
    page = [{"navDate": r["nav_date"].isoformat(), "nav": _dec(r["nav"]),
             "currency": r["currency"], "netAssets": _dec(r["net_assets"]),
             "unitsOutstanding": _dec(r["units_outstanding"]), "seq": r["seq"],
             "blockNumber": r["block_number"], "time": _time(r["time"])} for r in rows[:limit]]
    nxt = (encode_cursor([page[-1]["navDate"], page[-1]["seq"]], height)
           if len(rows) > limit else None)
    return page, nxt


# ---- token chain -----------------------------------------------------------------------------

async def transfers(view: View, *, chain_id: int | None = None, token: bytes | None = None,
                    address: bytes | None = None, limit: int = 100, cursor: str | None = None,
                    ) -> tuple[list[dict[str, Any]], str | None]:
    limit = check_limit(limit)
    key, _ = decode_cursor(cursor)
    args: list[Any] = []
    where = []
    if chain_id is not None:
        args.append(chain_id)
        where.append(f"chain_id = ${len(args)}")
    if token is not None:
        args.append(token)
        where.append(f"token = ${len(args)}")
    if key is not None:
        args += [int(key[0]), int(key[1]), int(key[2])]
        n = len(args)
        where.append(f"(chain_id, block_number, log_index) > (${n - 2}, ${n - 1}, ${n})")
    base = f"SELECT * FROM {view.t('token_transfers')}"
    if address is not None:
        args.append(address)
        n = len(args)
        cond = " AND ".join(where) or "true"
        sql = (f"SELECT * FROM ({base} WHERE {cond} AND from_addr = ${n} UNION {base} WHERE "
               f"{cond} AND to_addr = ${n}) t ORDER BY chain_id, block_number, log_index "
               f"LIMIT {limit + 1}")
    else:
        sql = (f"{base}{' WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY chain_id, block_number, log_index LIMIT {limit + 1}")
    rows = await view.conn.fetch(sql, *args)
    page = [{"chainId": r["chain_id"], "blockNumber": r["block_number"],
             "logIndex": r["log_index"], "txHash": _hex(r["tx_hash"]), "token": _hex(r["token"]),
             "from": _hex(r["from_addr"]), "to": _hex(r["to_addr"]), "amount": str(r["amount"]),
             "kind": ("mint" if r["from_addr"] == bytes(20) else
                      "burn" if r["to_addr"] == bytes(20) else "transfer"),
             "time": _time(r["time"])} for r in rows[:limit]]
    nxt = (encode_cursor([page[-1]["chainId"], page[-1]["blockNumber"], page[-1]["logIndex"]], 0)
           if len(rows) > limit else None)
    return page, nxt


async def bridge_links(view: View, *, matched: bool | None = None, limit: int = 100,
                       cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    limit = check_limit(limit)
    key, _ = decode_cursor(cursor)
    after = int(key[0]) if key else 0
    rows = await view.conn.fetch(
        f"SELECT b.seq, b.kind, b.token_chain, b.token, b.tx_hash, b.amount, b.block_number, "
        f"(SELECT count(*) FROM {view.t('token_transfers')} t WHERE t.chain_id = b.token_chain "
        f"AND t.tx_hash = b.tx_hash AND t.token = b.token) AS transfers "
        f"FROM {view.t('bridge_links')} b WHERE b.seq > $1 ORDER BY b.seq", after)
    out = []
    for r in rows:
        is_matched = r["transfers"] > 0
        if matched is not None and matched != is_matched:
            continue
        out.append({"seq": r["seq"], "kind": r["kind"], "tokenChain": r["token_chain"],
                    "token": _hex(r["token"]), "txHash": _hex(r["tx_hash"]),
                    "amount": _dec(r["amount"]), "blockNumber": r["block_number"],
                    "matched": is_matched})
        if len(out) > limit:
            break
    nxt = encode_cursor([out[limit - 1]["seq"]], 0) if len(out) > limit else None
    return out[:limit], nxt


# ---- domain events and orders ----------------------------------------------------------------

def event_json(r: asyncpg.Record) -> dict[str, Any]:
    return {"id": r["id"], "xid": r["xid"], "topic": r["topic"], "eventType": r["event_type"],
            "aggregateId": r["aggregate_id"], "payload": json.loads(r["payload"]),
            "occurredAt": _time(r["occurred_at"]), "erased": r["erased_at"] is not None}


async def domain_events(view: View, *, topic: str | None = None, event_type: str | None = None,
                        aggregate_id: str | None = None, limit: int = 100,
                        cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    limit = check_limit(limit)
    key, _ = decode_cursor(cursor)
    args: list[Any] = []
    where: list[str] = []
    for column, value in (("topic", topic), ("event_type", event_type),
                          ("aggregate_id", aggregate_id)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if key is not None:
        args += [int(key[0]), int(key[1])]
        where.append(f"(xid, id) > (${len(args) - 1}, ${len(args)})")
    rows = await view.conn.fetch(
        f"SELECT * FROM {view.t('domain_events')}{' WHERE ' + ' AND '.join(where) if where else ''}"
        f" ORDER BY xid, id LIMIT {limit + 1}", *args)
    page = [event_json(r) for r in rows[:limit]]
    nxt = encode_cursor([page[-1]["xid"], page[-1]["id"]], 0) if len(rows) > limit else None
    return page, nxt


async def order(view: View, reference: str) -> dict[str, Any]:
    recs = await view.conn.fetch(
        f"SELECT {RECORD_COLUMNS} FROM {view.t('ledger_records')} WHERE reference = $1 AND "
        f"chain_id = $2 AND block_number <= $3 ORDER BY seq", reference, view.ledger_chain,
        view.ledger_height)
    events = await view.conn.fetch(
        f"SELECT * FROM {view.t('domain_events')} WHERE aggregate_id = $1 ORDER BY xid, id",
        reference)
    if not recs and not events:
        raise QueryError(f"nothing is known of order {reference!r}", status=404, kind="not-found")
    return {"reference": reference, "ledgerRecords": [record_json(r) for r in recs],
            "domainEvents": [event_json(r) for r in events]}


# ---- writes (operators only) -----------------------------------------------------------------

async def erase_personal_data(conn: asyncpg.Connection, schema: str, subject: str) -> int:
    status = await conn.execute(
        f"UPDATE {pg.check_schema(schema)}.domain_events SET personal = NULL, "
        f"erased_at = now() WHERE subject = $1 AND personal IS NOT NULL", subject)
    return int(status.split()[-1])
