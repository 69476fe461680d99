"""The query API (FastAPI): thin routes over ``indexer.queries`` and the analytics store.

Every answer carries ``consistentWith``: the heights (per chain, the ledger's sequence number,
the bus position) its rows are exactly consistent with; PostgreSQL answers are read in one
REPEATABLE READ transaction that starts by reading the checkpoints. Errors are RFC 9457 problem
details. Every route needs a bearer credential: ``observer`` credentials read (and their
transactions are read-only in PostgreSQL too), only ``operator`` credentials write.
"""

# No `from __future__ import annotations` here: FastAPI resolves route annotations at
# definition time, and the dependencies below are closures over the app's settings.
import asyncio
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer import access, queries
from indexer.abc import AnalyticsStore
from indexer.queries import QueryError, View

log = logging.getLogger("smartta.api")
PROBLEM_BASE = "https://smartta.dev/problems/"
_ISIN = r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$"
_ADDRESS = r"^0x[0-9a-fA-F]{40}$"
_PSEUDONYM = r"^[a-z]{2,12}_[0-9a-f]{16,64}$"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    pg_dsn: str
    schema: str
    pool_size: int = 10


class Problem(Exception):
    def __init__(self, status: int, kind: str, title: str, detail: str,
                 extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.extra = extra or {}
        self.headers = headers or {}


def problem_response(request: Request, p: Problem) -> JSONResponse:
    body = {"type": PROBLEM_BASE + p.kind, "title": p.title, "status": p.status,
            "detail": p.detail, "instance": request.url.path, **p.extra}
    return JSONResponse(body, status_code=p.status, media_type="application/problem+json",
                        headers=p.headers)


# ---- response models (for the OpenAPI document) ----------------------------------------------

class ChainHeight(BaseModel):
    block: int
    blockHash: str | None


class LedgerHeight(BaseModel):
    chainId: int
    block: int
    seq: int


class BusPosition(BaseModel):
    xid: int
    id: int


class Consistency(BaseModel):
    """The heights the rows of an answer are exactly consistent with."""

    chains: dict[str, ChainHeight]
    ledger: LedgerHeight | None
    bus: BusPosition | None


class LedgerRecordOut(BaseModel):
    seq: int
    chainId: int
    blockNumber: int
    blockHash: str
    txHash: str
    logIndex: int
    time: str
    actor: str
    eventType: str
    nonce: str
    scheme: int
    attestationId: str
    dataHash: str = Field(description="keccak256(delta)")
    previousHash: str = Field(description="recordHash of the record before (or the anchor)")
    recordHash: str
    delta: str = Field(description="the exact canonical bytes dataHash commits to")
    fields: dict[str, Any] | None
    fund: str | None
    investor: str | None
    counterparty: str | None
    reference: str | None
    finding: str | None = Field(description="why the delta fails its schema, if it does")
    units: str | None = Field(description="the delta's units field, if any")


class RecordsPage(BaseModel):
    data: list[LedgerRecordOut]
    next: str | None = Field(description="cursor of the next page, if any")
    consistentWith: Consistency


class RecordOut(BaseModel):
    data: LedgerRecordOut
    consistentWith: Consistency


class Holder(BaseModel):
    holder: str
    balance: str
    changedAtBlock: int


class RegisterPage(BaseModel):
    asset: str
    block: int = Field(description="the block the register is taken at")
    data: list[Holder]
    next: str | None
    consistentWith: Consistency


class Holding(BaseModel):
    fund: str
    units: str
    changedAtBlock: int


class HoldingsOut(BaseModel):
    investor: str
    block: int
    data: list[Holding]
    consistentWith: Consistency


class Nav(BaseModel):
    navDate: str
    nav: str
    currency: str
    netAssets: str | None
    unitsOutstanding: str | None
    seq: int
    blockNumber: int
    time: str


class NavPage(BaseModel):
    isin: str
    data: list[Nav]
    next: str | None
    consistentWith: Consistency


class Transfer(BaseModel):
    chainId: int
    blockNumber: int
    logIndex: int
    txHash: str
    token: str
    to: str
    amount: str
    kind: Literal["mint", "burn", "transfer"]
    time: str
    from_: str = Field(alias="from")


class TransfersPage(BaseModel):
    data: list[dict[str, Any]]
    next: str | None
    consistentWith: Consistency


class GenericPage(BaseModel):
    data: list[dict[str, Any]]
    next: str | None = None
    consistentWith: Consistency


class OrderOut(BaseModel):
    data: dict[str, Any]
    consistentWith: Consistency


class AnalyticsOut(BaseModel):
    data: list[dict[str, Any]]
    consistentWith: dict[str, Any] = Field(
        description="ClickHouse positions the aggregates are computed up to")


class CredentialIn(BaseModel):
    organisation: str = Field(min_length=1, max_length=200)
    role: Literal["observer", "operator"]


class CredentialOut(BaseModel):
    id: int
    organisation: str
    role: str
    token: str | None = Field(None, description="shown once, when issued")


class ErasureOut(BaseModel):
    subject: str
    erased: int


class StatusOut(BaseModel):
    consistentWith: Consistency
    analytics: dict[str, Any] | None


# ---- the app -----------------------------------------------------------------------------------

def create_app(settings: ApiSettings, analytics: AnalyticsStore | None = None, *,
               analytics_error: str | None = None,
               pool: asyncpg.Pool | None = None) -> FastAPI:
    state: dict[str, Any] = {"pool": pool}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        own = state["pool"] is None
        if own:
            state["pool"] = await asyncpg.create_pool(settings.pg_dsn, min_size=1,
                                                      max_size=settings.pool_size)
        try:
            yield
        finally:
            if own:
                await state["pool"].close()

    app = FastAPI(
        title="SMART-TA Ledger query API", version="1.0",
        description="Ledger records with their proofs, fund registers, holdings, NAV, token "
                    "transfers and analytics, projected by the indexer. Every answer states the "
                    "heights it is consistent with; errors are RFC 9457 problem details.",
        lifespan=lifespan)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(QueryError)
    async def _query_error(request: Request, exc: QueryError) -> JSONResponse:
        return problem_response(request, Problem(exc.status, exc.kind,
                                                 _TITLES.get(exc.kind, "Cannot answer"),
                                                 str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"parameter": ".".join(str(x) for x in e.get("loc", ()) if x != "body"),
                   "problem": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{e['parameter']}: {e['problem']}" for e in errors)
        return problem_response(request, Problem(400, "invalid-parameter", "Invalid parameter",
                                                 detail, {"errors": errors}))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(request, Problem(exc.status_code, kind,
                                                 str(exc.detail), str(exc.detail)))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        if isinstance(exc, asyncpg.PostgresConnectionError | OSError):
            return problem_response(request, Problem(
                503, "store-unavailable", "Store unavailable",
                "PostgreSQL is not reachable right now; retry shortly",
                headers={"Retry-After": "5"}))
        return problem_response(request, Problem(500, "internal", "Internal error",
                                                 "the API failed; the operators have the log"))

    # ---- dependencies -----------------------------------------------------------------------

    async def credential(authorization: Annotated[str | None, Header()] = None,
                         ) -> access.Credential:
        challenge = {"WWW-Authenticate": 'Bearer realm="smartta"'}
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Problem(401, "unauthenticated", "Credential required",
                          "send `Authorization: Bearer <token>`; an operator issues tokens with "
                          "`smartta indexer credentials issue`", headers=challenge)
        async with state["pool"].acquire() as conn:
            cred = await access.authenticate(conn, settings.schema,
                                             authorization[7:].strip())
        if cred is None:
            raise Problem(401, "unauthenticated", "Unknown or revoked credential",
                          "the token is not valid (revoked, or never issued); ask an operator "
                          "for a new one", headers=challenge)
        return cred

    async def read_view(cred: Annotated[access.Credential, Depends(credential)],
                        ) -> AsyncIterator[View]:
        async with state["pool"].acquire() as conn, \
                conn.transaction(isolation="repeatable_read", readonly=True):
            yield await View.open(conn, settings.schema)

    async def writer(cred: Annotated[access.Credential, Depends(credential)],
                     ) -> AsyncIterator[asyncpg.Connection]:
        if not cred.can_write:
            raise Problem(403, "read-only-credential", "Read-only credential",
                          f"the credential of {cred.organisation} is an {cred.role} credential "
                          "and can never write; writes need an operator credential")
        # No transaction around the route: a yield dependency's exit may run after the
        # response is sent, and a client must be able to use what it was just told is done.
        # Each write is one statement, committed before the route returns.
        async with state["pool"].acquire() as conn:
            yield conn

    ViewDep = Annotated[View, Depends(read_view)]
    WriterDep = Annotated[asyncpg.Connection, Depends(writer)]
    Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT, description="rows per page")]
    Cursor = Annotated[str | None, Query(description="`next` of the previous page")]
    Block = Annotated[int | None, Query(ge=0, description="take it at this block")]
    At = Annotated[dt.datetime | None, Query(description="take it at this time (RFC 3339)")]

    def consistent(view: View, body: dict[str, Any]) -> JSONResponse:
        body["consistentWith"] = view.consistency()
        return JSONResponse(body, headers={"X-Ledger-Block": str(view.ledger_height),
                                           "X-Ledger-Seq": str(view.ledger_seq)})

    # ---- reads --------------------------------------------------------------------------------

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/status", response_model=StatusOut, tags=["status"])
    async def status(view: ViewDep) -> JSONResponse:
        positions = None
        if analytics is not None:
            positions = await asyncio.to_thread(_positions, analytics, view)
        return consistent(view, {"analytics": positions})

    @app.get("/v1/ledger/records", response_model=RecordsPage, tags=["ledger"])
    async def list_records(
        view: ViewDep, limit: Limit = 100, cursor: Cursor = None,
        event_type: Annotated[str | None, Query(pattern=r"^[A-Z][A-Z0-9_]{0,31}$")] = None,
        actor: Annotated[str | None, Query(pattern=_ADDRESS)] = None,
        fund: Annotated[str | None, Query(pattern=_ISIN)] = None,
        investor: Annotated[str | None, Query(pattern=_PSEUDONYM)] = None,
        reference: Annotated[str | None, Query(max_length=80)] = None,
        from_seq: Annotated[int | None, Query(ge=1)] = None,
    ) -> JSONResponse:
        """Ledger records in sequence order, filtered by type, actor, fund, investor or
        business reference, each with its proof fields."""
        page, nxt = await queries.records(
            view, event_type=event_type, actor=None if actor is None else bytes.fromhex(actor[2:]),
            fund=fund, investor=investor, reference=reference, from_seq=from_seq, limit=limit,
            cursor=cursor)
        return consistent(view, {"data": page, "next": nxt})

    @app.get("/v1/ledger/records/{seq}", response_model=RecordOut, tags=["ledger"])
    async def get_record(view: ViewDep, seq: Annotated[int, Path(ge=1)]) -> JSONResponse:
        """One ledger record by sequence number, with its proof fields."""
        return consistent(view, {"data": await queries.record(view, seq)})

    @app.get("/v1/funds/{isin}/register", response_model=RegisterPage, tags=["register"])
    async def fund_register(view: ViewDep, isin: Annotated[str, Path(pattern=_ISIN)],
                            block: Block = None, at: At = None, limit: Limit = 100,
                            cursor: Cursor = None) -> JSONResponse:
        """The fund's holders and their units at a block or a time (default: the indexed
        height), in holder order."""
        page, nxt, height = await queries.register(view, "units", view.ledger_chain, isin,
                                                   block=block, at=at, limit=limit, cursor=cursor)
        return consistent(view, {"asset": isin, "block": height, "data": page, "next": nxt})

    @app.get("/v1/investors/{investor}/holdings", response_model=HoldingsOut,
             tags=["register"])
    async def investor_holdings(view: ViewDep,
                                investor: Annotated[str, Path(pattern=_PSEUDONYM)],
                                block: Block = None, at: At = None) -> JSONResponse:
        """An investor's units per fund at a block or a time (default: the indexed height)."""
        rows, height = await queries.holdings(view, investor, block=block, at=at)
        return consistent(view, {"investor": investor, "block": height, "data": rows})

    @app.get("/v1/investors/{investor}/history", response_model=RecordsPage, tags=["register"])
    async def investor_history(view: ViewDep,
                               investor: Annotated[str, Path(pattern=_PSEUDONYM)],
                               limit: Limit = 100, cursor: Cursor = None) -> JSONResponse:
        """Every ledger record naming the investor (as investor, sender or receiver)."""
        page, nxt = await queries.records(view, investor=investor, limit=limit, cursor=cursor)
        return consistent(view, {"data": page, "next": nxt})

    @app.get("/v1/funds/{isin}/nav", response_model=NavPage, tags=["register"])
    async def fund_nav(view: ViewDep, isin: Annotated[str, Path(pattern=_ISIN)],
                       since: Annotated[dt.date | None, Query(alias="from")] = None,
                       until: Annotated[dt.date | None, Query(alias="to")] = None,
                       limit: Limit = 100, cursor: Cursor = None) -> JSONResponse:
        """Published NAVs of the fund in NAV-date order."""
        page, nxt = await queries.nav_history(view, isin, since=since, until=until, limit=limit,
                                              cursor=cursor)
        return consistent(view, {"isin": isin, "data": page, "next": nxt})

    @app.get("/v1/tokens/transfers", response_model=TransfersPage, tags=["tokens"])
    async def token_transfers(
        view: ViewDep, limit: Limit = 100, cursor: Cursor = None,
        chain_id: Annotated[int | None, Query(ge=0)] = None,
        token: Annotated[str | None, Query(pattern=_ADDRESS)] = None,
        address: Annotated[str | None, Query(pattern=_ADDRESS)] = None,
    ) -> JSONResponse:
        """ERC-3643 transfers (mints and burns included), optionally of one token or wallet."""
        page, nxt = await queries.transfers(
            view, chain_id=chain_id, token=None if token is None else bytes.fromhex(token[2:]),
            address=None if address is None else bytes.fromhex(address[2:]), limit=limit,
            cursor=cursor)
        return consistent(view, {"data": page, "next": nxt})

    @app.get("/v1/tokens/{token}/holders", response_model=RegisterPage, tags=["tokens"])
    async def token_holders(view: ViewDep, token: Annotated[str, Path(pattern=_ADDRESS)],
                            chain_id: Annotated[int, Query(ge=0)],
                            block: Block = None, at: At = None, limit: Limit = 100,
                            cursor: Cursor = None) -> JSONResponse:
        """The token's holders and balances at a block or a time (the token register)."""
        asset = token.lower()
        page, nxt, height = await queries.register(view, "token", chain_id, asset, block=block,
                                                   at=at, limit=limit, cursor=cursor)
        return consistent(view, {"asset": asset, "block": height, "data": page, "next": nxt})

    @app.get("/v1/bridge/links", response_model=GenericPage, tags=["tokens"])
    async def bridge(view: ViewDep, matched: bool | None = None, limit: Limit = 100,
                     cursor: Cursor = None) -> JSONResponse:
        """Ledger records of token mints, burns and forced transfers, and whether the token
        chain shows the transfer they name."""
        page, nxt = await queries.bridge_links(view, matched=matched, limit=limit, cursor=cursor)
        return consistent(view, {"data": page, "next": nxt})

    @app.get("/v1/orders/{reference}", response_model=OrderOut, tags=["orders"])
    async def order(view: ViewDep,
                    reference: Annotated[str, Path(max_length=80)]) -> JSONResponse:
        """What happened to an order: its ledger records and its domain events."""
        return consistent(view, {"data": await queries.order(view, reference)})

    @app.get("/v1/domain-events", response_model=GenericPage, tags=["orders"])
    async def events(view: ViewDep, limit: Limit = 100, cursor: Cursor = None,
                     topic: str | None = None, event_type: str | None = None,
                     aggregate_id: str | None = None) -> JSONResponse:
        """Domain events from the TA services' outbox, in commit order (personal data never
        leaves the store through this API)."""
        page, nxt = await queries.domain_events(view, topic=topic, event_type=event_type,
                                                aggregate_id=aggregate_id, limit=limit,
                                                cursor=cursor)
        return consistent(view, {"data": page, "next": nxt})

    # ---- analytics (ClickHouse) ---------------------------------------------------------------

    async def analytic(view: View, fn: Callable[..., list[dict[str, Any]]],
                       *args: Any) -> JSONResponse:
        if analytics is None:
            raise Problem(503, "analytics-unavailable", "Analytics unavailable",
                          analytics_error or "no ClickHouse store is configured for this API")
        if view.ledger_chain is None:
            raise QueryError("nothing is indexed yet", status=404, kind="not-found")
        positions = await asyncio.to_thread(_positions, analytics, view)
        height = positions.get(f"chain:{view.ledger_chain}", -1)
        rows = await asyncio.to_thread(fn, analytics, view.ledger_chain, height, *args)
        return JSONResponse({"data": rows, "consistentWith": {
            "clickhouse": positions, "ledger": {"chainId": view.ledger_chain, "block": height}}})

    Granularity = Annotated[Literal["day", "block"], Query()]

    @app.get("/v1/analytics/events-per-type", response_model=AnalyticsOut, tags=["analytics"])
    async def events_per_type(view: ViewDep, granularity: Granularity = "day") -> JSONResponse:
        """Ledger records per event type, per day or per block."""
        return await analytic(view, _events_per_type, granularity)

    @app.get("/v1/analytics/flows", response_model=AnalyticsOut, tags=["analytics"])
    async def flows(view: ViewDep, isin: Annotated[str, Query(pattern=_ISIN)],
                    granularity: Granularity = "day") -> JSONResponse:
        """Units issued, redeemed and net per day (or block) for a fund."""
        return await analytic(view, _flows, isin, granularity)

    @app.get("/v1/analytics/aum", response_model=AnalyticsOut, tags=["analytics"])
    async def aum(view: ViewDep, isin: Annotated[str, Query(pattern=_ISIN)]) -> JSONResponse:
        """Units outstanding, the last NAV and assets under management at the end of each day."""
        return await analytic(view, _aum, isin)

    @app.get("/v1/analytics/blocks", response_model=AnalyticsOut, tags=["analytics"])
    async def per_block(view: ViewDep, from_block: Annotated[int, Query(ge=0)] = 0,
                        limit: Limit = 100) -> JSONResponse:
        """Per-block aggregates: records, units issued and redeemed."""
        return await analytic(view, _blocks, from_block, limit)

    # ---- writes (operators only) --------------------------------------------------------------

    @app.post("/v1/admin/credentials", response_model=CredentialOut, status_code=201,
              tags=["admin"])
    async def issue_credential(body: CredentialIn, conn: WriterDep) -> JSONResponse:
        """Issue a credential for an organisation; the token is in this answer only."""
        cred, token = await access.issue(conn, settings.schema, body.organisation, body.role)
        return JSONResponse({"id": cred.id, "organisation": cred.organisation, "role": cred.role,
                             "token": token}, status_code=201)

    @app.delete("/v1/admin/credentials/{credential_id}", response_model=CredentialOut,
                tags=["admin"])
    async def revoke_credential(credential_id: Annotated[int, Path(ge=1)],
                                conn: WriterDep) -> JSONResponse:
        """Revoke a credential at once."""
        if not await access.revoke(conn, settings.schema, credential_id):
            raise Problem(404, "not-found", "No such credential",
                          f"credential {credential_id} does not exist or is already revoked")
        return JSONResponse({"id": credential_id, "organisation": "", "role": "",
                             "token": None})

    @app.delete("/v1/investors/{investor}/personal-data", response_model=ErasureOut,
                tags=["admin"])
    async def erase(investor: Annotated[str, Path(pattern=_PSEUDONYM)],
                    conn: WriterDep) -> JSONResponse:
        """Erase the personal data the TA services' events carried for this investor (GDPR
        art. 17). The chain never held any; the pseudonymous records stay."""
        n = await queries.erase_personal_data(conn, settings.schema, investor)
        return JSONResponse({"subject": investor, "erased": n})

    return app


_TITLES = {"invalid-parameter": "Invalid parameter", "invalid-cursor": "Invalid cursor",
           "not-found": "Not found", "not-indexed-yet": "Not indexed yet"}


def write_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route that writes: all but GET/HEAD/OPTIONS."""
    out = []
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        for m in sorted(methods - {"GET", "HEAD", "OPTIONS"}):
            out.append((m, getattr(route, "path", "")))
    return out


# ---- ClickHouse queries (run in a thread; the store serialises its client) ---------------------

def _positions(store: AnalyticsStore, view: View) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for chain in view.chains:
        pos = store.position(f"chain:{chain}")
        out[f"chain:{chain}"] = -1 if pos is None else pos[0]
    return out


def _db(store: AnalyticsStore) -> str:
    db = getattr(store, "database", "")
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", db):
        raise RuntimeError("analytics store has no valid database name")
    return str(db)


def _events_per_type(store: AnalyticsStore, chain: int, height: int, granularity: str,
                     ) -> list[dict[str, Any]]:
    bucket = "toString(toDate(time))" if granularity == "day" else "toString(block_number)"
    rows = store.query(
        f"SELECT {bucket} AS b, event_type, count() FROM {_db(store)}.ledger_records "
        "WHERE chain_id = {c:UInt64} AND block_number <= {h:Int64} GROUP BY b, event_type "
        "ORDER BY b, event_type", {"c": chain, "h": height})
    return [{granularity: r[0], "eventType": r[1], "records": int(r[2])} for r in rows]


def _flows(store: AnalyticsStore, chain: int, height: int, isin: str, granularity: str,
           ) -> list[dict[str, Any]]:
    bucket = "toString(toDate(time))" if granularity == "day" else "toString(block_number)"
    units = "ifNull(units, 0)"
    rows = store.query(
        f"SELECT {bucket} AS b, sumIf({units}, event_type = 'UNITS_ISSUED'), "
        f"sumIf({units}, event_type = 'UNITS_REDEEMED'), countIf(event_type = 'UNITS_ISSUED'), "
        f"countIf(event_type = 'UNITS_REDEEMED') FROM {_db(store)}.ledger_records "
        "WHERE chain_id = {c:UInt64} AND block_number <= {h:Int64} AND fund = {f:String} "
        "AND event_type IN ('UNITS_ISSUED', 'UNITS_REDEEMED') GROUP BY b ORDER BY b",
        {"c": chain, "h": height, "f": isin})
    return [{granularity: r[0], "unitsIssued": queries._dec(r[1]),
             "unitsRedeemed": queries._dec(r[2]), "netUnits": queries._dec(r[1] - r[2]),
             "subscriptions": int(r[3]), "redemptions": int(r[4])} for r in rows]


def _aum(store: AnalyticsStore, chain: int, height: int, isin: str) -> list[dict[str, Any]]:
    db = _db(store)
    units = store.query(
        f"SELECT toDate(time) AS d, sum(amount) FROM {db}.balance_changes "
        "WHERE kind = 'units' AND chain_id = {c:UInt64} AND asset = {f:String} "
        "AND block_number <= {h:Int64} GROUP BY d ORDER BY d", {"c": chain, "h": height, "f": isin})
    navs = store.query(
        f"SELECT toDate(time) AS d, argMax(nav, seq) FROM {db}.nav_history "
        "WHERE chain_id = {c:UInt64} AND isin = {f:String} AND block_number <= {h:Int64} "
        "GROUP BY d ORDER BY d", {"c": chain, "h": height, "f": isin})
    nav_by_day = dict(navs)
    days = sorted(set(nav_by_day) | {d for d, _ in units})
    change = dict(units)
    out, outstanding, nav = [], None, None
    for day in days:
        if day in change:
            outstanding = (outstanding or 0) + change[day]
        nav = nav_by_day.get(day, nav)
        out.append({"day": day.isoformat(), "unitsOutstanding": queries._dec(outstanding),
                    "nav": queries._dec(nav),
                    "aum": None if outstanding is None or nav is None
                    else queries._dec(outstanding * nav)})
    return out


def _blocks(store: AnalyticsStore, chain: int, height: int, from_block: int, limit: int,
            ) -> list[dict[str, Any]]:
    db = _db(store)
    units = "ifNull(r.units, 0)"
    rows = store.query(
        f"SELECT b.number, b.time, b.log_count, countIf(r.seq != 0), "
        f"sumIf({units}, r.event_type = 'UNITS_ISSUED'), "
        f"sumIf({units}, r.event_type = 'UNITS_REDEEMED') FROM {db}.blocks AS b "
        f"LEFT JOIN {db}.ledger_records AS r ON r.chain_id = b.chain_id AND "
        "r.block_number = b.number WHERE b.chain_id = {c:UInt64} AND b.number >= {f:Int64} AND "
        "b.number <= {h:Int64} GROUP BY b.number, b.time, b.log_count ORDER BY b.number "
        "LIMIT {n:UInt32}", {"c": chain, "h": height, "f": from_block, "n": limit})
    return [{"block": int(r[0]), "time": queries._time(r[1].replace(tzinfo=dt.UTC)),
             "logs": int(r[2]), "records": int(r[3]), "unitsIssued": queries._dec(r[4]),
             "unitsRedeemed": queries._dec(r[5])} for r in rows]


Route = Callable[..., Awaitable[Any]]
