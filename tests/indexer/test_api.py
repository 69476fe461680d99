"""The query API served by uvicorn over an index of a real chain: consistent answers, cursor
pages, proofs that verify, registers at any block, problem details, and credentials of which
an observer's can never write."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import uvicorn
from chainkit import Anvil, FundScenario, LedgerKit, actor_key, chain_records, free_port, isin
from oracle import pg_rows, replay_register

from chain.ledger import data_hash
from chain.ledger.record import record_hash
from indexer import access
from indexer.analytics import ClickHouseStore
from indexer.api import ApiSettings, create_app, write_routes
from indexer.outbox import create_outbox
from indexer.runner import BusConfig, ChainConfig, Indexer, IndexerConfig


class World:
    url: str
    chain: Anvil
    ledger: LedgerKit
    scenario: FundScenario
    schema: str
    operator: str
    observer: str
    app: Any
    mid_block: int
    analytics: ClickHouseStore


@pytest.fixture(scope="module")
def world(pg_dsn: str, clickhouse_url: str):
    w = World()
    w.schema = "api_" + secrets.token_hex(4)
    outbox = f"{w.schema}_ob.outbox"
    w.chain = Anvil()
    w.analytics = ClickHouseStore.connect(clickhouse_url, w.schema)
    w.analytics.migrate()
    server = None
    try:
        w.ledger = LedgerKit(w.chain.url, [actor_key(0), actor_key(1)])
        w.ledger.deploy()
        w.scenario = FundScenario(funds=3, investors=15, seed=51)
        for i in range(6):
            w.ledger.append(w.scenario.events(60))
            w.chain.mine(1)
            if i == 2:
                w.mid_block = w.chain.head()
                time.sleep(1.1)  # so that the time of mid_block is a distinct second

        async def prepare() -> tuple[str, str]:
            conn = await asyncpg.connect(pg_dsn)
            try:
                await create_outbox(conn, outbox, channel=w.schema)
                for i in range(5):
                    await conn.execute(
                        f"INSERT INTO {outbox} (topic, event_type, aggregate_id, subject, payload, "
                        f"personal) VALUES ('order', 'ORDER_ACCEPTED', $1, $2, '{{}}', $3)",
                        f"ORD-{i}", "inv_0123456789abcdef", json.dumps({"name": "Ada"}))
                config = IndexerConfig(pg_dsn, (ChainConfig(w.chain.url, ledger=w.ledger.address),),
                                       schema=w.schema, bus=BusConfig(pg_dsn, outbox, w.schema))
                await Indexer(config, w.analytics).run(follow=False)
                _, op = await access.issue(conn, w.schema, "The TA", "operator")
                _, ob = await access.issue(conn, w.schema, "CSSF", "observer")
                return op, ob
            finally:
                await conn.close()

        w.operator, w.observer = asyncio.run(prepare())
        w.app = create_app(ApiSettings(pg_dsn, w.schema), w.analytics)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(w.app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        w.url = f"http://127.0.0.1:{port}"
        yield w
    finally:
        if server is not None:
            server.should_exit = True
        w.chain.stop()
        w.analytics.drop()
        w.analytics.close()

        async def drop() -> None:
            conn = await asyncpg.connect(pg_dsn)
            try:
                await conn.execute(f"DROP SCHEMA IF EXISTS {w.schema} CASCADE")
                await conn.execute(f"DROP SCHEMA IF EXISTS {w.schema}_ob CASCADE")
            finally:
                await conn.close()

        asyncio.run(drop())


def call(world: World, path: str, *, token: str | None = "operator", method: str = "GET",
         body: Any = None) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + (getattr(world, token, None) or token)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(world.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, \
                json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, json.loads(err.read())


def all_pages(world: World, path: str, limit: int = 7) -> list[dict[str, Any]]:
    out, cursor = [], None
    sep = "&" if "?" in path else "?"
    while True:
        status, _, body = call(world, f"{path}{sep}limit={limit}"
                                      + (f"&cursor={cursor}" if cursor else ""), token="observer")
        assert status == 200, body
        out += body["data"]
        cursor = body["next"]
        if cursor is None:
            return out


def test_every_answer_states_the_heights_it_is_consistent_with(world, pg_dsn):
    status, headers, body = call(world, "/v1/ledger/records?limit=5")
    assert status == 200
    cp = pg_rows(pg_dsn, f"SELECT block_number, ledger_seq FROM {world.schema}.checkpoints "
                         "WHERE source LIKE 'chain:%'")[0]
    ledger = body["consistentWith"]["ledger"]
    assert (ledger["block"], ledger["seq"]) == (cp["block_number"], cp["ledger_seq"])
    assert ledger["seq"] == sum(world.scenario.counts.values())
    assert headers["x-ledger-block"] == str(cp["block_number"])
    assert body["consistentWith"]["bus"]["id"] == 5


def test_cursor_pages_cover_every_record_once_under_any_filter(world):
    records = all_pages(world, "/v1/ledger/records", limit=13)
    assert [r["seq"] for r in records] == list(range(1, sum(world.scenario.counts.values()) + 1))
    issued = all_pages(world, "/v1/ledger/records?event_type=UNITS_ISSUED")
    assert len(issued) == world.scenario.counts["UNITS_ISSUED"]
    assert {r["eventType"] for r in issued} == {"UNITS_ISSUED"}
    fund = all_pages(world, f"/v1/ledger/records?fund={isin(1)}")
    assert fund and all(r["fund"] == isin(1) for r in fund)
    who = records[30]["investor"] or records[40]["investor"]
    history = all_pages(world, f"/v1/investors/{who}/history", limit=3)
    assert [r["seq"] for r in history] == [r["seq"] for r in records
                                           if who in (r["investor"], r["counterparty"])]


def test_a_record_carries_proof_fields_that_verify(world):
    _, _, first = call(world, "/v1/ledger/records/41", token="observer")
    _, _, before = call(world, "/v1/ledger/records/40", token="observer")
    r = first["data"]
    assert "0x" + data_hash(r["delta"].encode()).hex() == r["dataHash"]
    assert r["previousHash"] == before["data"]["recordHash"]
    from chain.ledger import LedgerRecord

    rebuilt = LedgerRecord(seq=r["seq"], actor=bytes.fromhex(r["actor"][2:]),
                           event_type=r["eventType"], delta=r["delta"].encode(),
                           nonce=int(r["nonce"]), attestation_id=bytes.fromhex(r["attestationId"][2:]),
                           data_hash=bytes.fromhex(r["dataHash"][2:]),
                           previous_hash=bytes.fromhex(r["previousHash"][2:]),
                           timestamp=int(dt.datetime.fromisoformat(r["time"]).timestamp()),
                           block_height=r["blockNumber"])
    assert "0x" + record_hash(rebuilt).hex() == r["recordHash"]


def _register(world, fund: str, query: str = "") -> dict[tuple[str, str], Decimal]:
    rows = all_pages(world, f"/v1/funds/{fund}/register{query}", limit=4)
    return {(fund, h["holder"]): Decimal(h["balance"]) for h in rows}


def test_the_register_at_the_head_and_at_an_earlier_block_or_time(world):
    records = [r for r, _ in chain_records(world.chain.url, world.ledger.address)]
    for f in range(3):
        fund = isin(f)
        want = {k: v for k, v in world.scenario.register.items() if k[0] == fund and v != 0}
        assert _register(world, fund) == want
        earlier = {k: v for k, v in replay_register(records, world.mid_block).items()
                   if k[0] == fund}
        assert _register(world, fund, f"?block={world.mid_block}") == earlier
    stamp = int(world.chain.call("eth_getBlockByNumber", [hex(world.mid_block), False])
                ["timestamp"], 16)
    at = dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat().replace("+00:00", "Z")
    _, _, body = call(world, f"/v1/funds/{isin(0)}/register?at={at}", token="observer")
    assert body["block"] == world.mid_block


def test_holdings_of_an_investor_sum_the_register(world):
    who = next(iter(world.scenario.register))[1]
    status, _, body = call(world, f"/v1/investors/{who}/holdings", token="observer")
    assert status == 200
    got = {h["fund"]: Decimal(h["units"]) for h in body["data"]}
    assert got == {f: u for (f, w), u in world.scenario.register.items() if w == who and u != 0}


def test_nav_history_in_nav_date_order(world):
    navs = all_pages(world, f"/v1/funds/{isin(2)}/nav", limit=5)
    want = sorted(((d, Decimal(n)) for f, d, n in world.scenario.navs if f == isin(2)),
                  key=lambda x: x[0])
    assert [(n["navDate"], Decimal(n["nav"])) for n in navs] == want


@pytest.mark.parametrize("path, status, kind", [
    ("/v1/funds/NOTANISIN/register", 400, "invalid-parameter"),
    ("/v1/ledger/records?limit=0", 400, "invalid-parameter"),
    ("/v1/ledger/records?cursor=bm9wZQ", 400, "invalid-cursor"),
    ("/v1/funds/LU0000000009/register?block=99999999", 409, "not-indexed-yet"),
    ("/v1/funds/LU0000000009/register?at=2026-01-01T00:00:00", 400, "invalid-parameter"),
    ("/v1/ledger/records/99999999", 404, "not-found"),
    ("/v1/no/such/route", 404, "not-found"),
])
def test_bad_requests_get_problem_details_that_say_what_to_do(world, path, status, kind):
    got, headers, body = call(world, path, token="observer")
    assert got == status
    assert headers["content-type"] == "application/problem+json"
    assert body["type"].endswith("/" + kind) and body["status"] == status
    assert body["title"] and body["detail"] and body["instance"] == path.split("?")[0]


def test_without_a_valid_credential_nothing_is_answered(world):
    status, headers, body = call(world, "/v1/ledger/records", token=None)
    assert status == 401 and "Bearer" in headers["www-authenticate"]
    status, _, body = call(world, "/v1/ledger/records", token="stk_made-up")
    assert status == 401 and body["type"].endswith("unauthenticated")


def test_an_observer_credential_can_never_write(world, pg_dsn):
    routes = write_routes(world.app)
    assert {("POST", "/v1/admin/credentials"), ("DELETE", "/v1/admin/credentials/{credential_id}"),
            ("DELETE", "/v1/investors/{investor}/personal-data")} <= set(routes)
    before = pg_rows(pg_dsn, f"SELECT count(*) AS n, count(revoked_at) AS r FROM "
                             f"{world.schema}.api_credentials")
    personal = pg_rows(pg_dsn, f"SELECT count(personal) AS n FROM {world.schema}.domain_events")
    samples = {"{credential_id}": "1", "{investor}": "inv_0123456789abcdef"}
    for method, path in routes:
        for name, value in samples.items():
            path = path.replace(name, value)
        status, _, body = call(world, path, token="observer", method=method,
                               body={"organisation": "x", "role": "operator"})
        assert status == 403, (method, path, body)
        assert body["type"].endswith("read-only-credential")
    assert pg_rows(pg_dsn, f"SELECT count(*) AS n, count(revoked_at) AS r FROM "
                           f"{world.schema}.api_credentials") == before
    assert pg_rows(pg_dsn, f"SELECT count(personal) AS n FROM {world.schema}.domain_events") == \
        personal


def test_an_operator_issues_and_revokes_credentials_and_erases_personal_data(world, pg_dsn):
    status, _, body = call(world, "/v1/admin/credentials", method="POST",
                           body={"organisation": "FCA", "role": "observer"})
    assert status == 201 and body["token"].startswith("stk_")
    token = body["token"]
    assert call(world, "/v1/status", token=token)[0] == 200
    assert call(world, f"/v1/admin/credentials/{body['id']}", method="DELETE")[0] == 200
    assert call(world, "/v1/status", token=token)[0] == 401
    status, _, erased = call(world, "/v1/investors/inv_0123456789abcdef/personal-data",
                             method="DELETE")
    assert status == 200 and erased["erased"] == 5
    left = pg_rows(pg_dsn, f"SELECT count(personal) AS n FROM {world.schema}.domain_events")
    assert left[0]["n"] == 0


def test_analytics_from_clickhouse_agree_with_the_ledger(world):
    status, _, body = call(world, "/v1/analytics/events-per-type", token="observer")
    assert status == 200
    per_type: dict[str, int] = {}
    for row in body["data"]:
        per_type[row["eventType"]] = per_type.get(row["eventType"], 0) + row["records"]
    assert per_type == world.scenario.counts
    fund = isin(0)
    _, _, aum = call(world, f"/v1/analytics/aum?isin={fund}", token="observer")
    outstanding = sum(v for (f, _), v in world.scenario.register.items() if f == fund)
    assert Decimal(aum["data"][-1]["unitsOutstanding"]) == outstanding
    _, _, flows = call(world, f"/v1/analytics/flows?isin={fund}&granularity=block",
                       token="observer")
    assert sum(r["subscriptions"] for r in flows["data"]) == len(
        all_pages(world, f"/v1/ledger/records?fund={fund}&event_type=UNITS_ISSUED", limit=500))
    _, _, blocks = call(world, "/v1/analytics/blocks?limit=1000", token="observer")
    assert sum(b["records"] for b in blocks["data"]) == sum(world.scenario.counts.values())


def test_order_timeline_joins_ledger_records_and_domain_events(world):
    order = next(r for r in all_pages(world, "/v1/ledger/records?event_type=UNITS_ISSUED",
                                      limit=500))["reference"]
    status, _, body = call(world, f"/v1/orders/{order}", token="observer")
    assert status == 200 and body["data"]["ledgerRecords"][0]["reference"] == order
    status, _, body = call(world, "/v1/orders/ORD-3", token="observer")
    assert [e["aggregateId"] for e in body["data"]["domainEvents"]] == ["ORD-3"]
    assert "personal" not in body["data"]["domainEvents"][0]


def test_the_openapi_document_describes_every_route(world):
    status, _, doc = call(world, "/openapi.json", token=None)
    assert status == 200
    for route in world.app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/v1/"):
            assert path in doc["paths"], path
            for op in doc["paths"][path].values():
                assert op.get("description") or op.get("summary"), path
