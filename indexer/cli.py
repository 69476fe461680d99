"""``smartta indexer …`` and ``smartta api``.

    smartta indexer run --rpc http://127.0.0.1:8545 --ledger 0x…       # backfill, then follow
    smartta indexer run … --api 127.0.0.1:8080                        # and serve the API
    smartta indexer rebuild …                                          # drop, rebuild, compare
    smartta indexer status | digest | migrate | outbox-ddl
    smartta indexer credentials issue --org "CSSF" --role observer
    smartta api --port 8080

PostgreSQL comes from ``--pg`` / ``SMARTTA_PG_DSN``, or else an embedded ``pgserver`` under
``.smartta/pg``; ClickHouse from ``--clickhouse`` / ``SMARTTA_CLICKHOUSE_URL``, or else the
embedded engine on disk under ``.smartta/clickhouse``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table as RichTable

from indexer import access, digest, pg
from indexer.abc import IndexerError
from indexer.analytics import DEFAULT_DATABASE, AnalyticsError, ClickHouseStore
from indexer.outbox import DEFAULT_CHANNEL, DEFAULT_TABLE, outbox_ddl
from indexer.runner import (
    BusConfig,
    ChainConfig,
    Indexer,
    IndexerConfig,
    Status,
    read_checkpoints,
    targets_from,
)

console = Console(stderr=True)
EMBEDDED_DIR = Path(".smartta")
F = TypeVar("F", bound=Callable[..., Any])


def _address(_: Any, __: Any, value: Any) -> Any:
    def one(text: str) -> bytes:
        raw = text.strip().lower().removeprefix("0x")
        try:
            out = bytes.fromhex(raw)
        except ValueError:
            raise click.BadParameter(f"{text!r} is not a hex address") from None
        if len(out) != 20:
            raise click.BadParameter(f"{text!r} is {len(out)} bytes; an address is 20")
        return out

    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(one(v) for v in value)
    return one(value)


def store_options(fn: F) -> F:
    for option in reversed([
        click.option("--pg", "pg_dsn", envvar="SMARTTA_PG_DSN", default=None,
                     help="PostgreSQL DSN [env SMARTTA_PG_DSN; default: embedded pgserver in "
                          ".smartta/pg]"),
        click.option("--schema", default=pg.DEFAULT_SCHEMA, show_default=True,
                     help="PostgreSQL schema of the projection."),
        click.option("--clickhouse", "clickhouse_url", envvar="SMARTTA_CLICKHOUSE_URL",
                     default=None, help="chdb:///dir, chdb://memory or http(s)://server:8123 "
                     "[env SMARTTA_CLICKHOUSE_URL; default: chdb on disk in .smartta/clickhouse]"),
        click.option("--clickhouse-database", default=DEFAULT_DATABASE, show_default=True),
    ]):
        fn = option(fn)
    return fn


def source_options(fn: F) -> F:
    for option in reversed([
        click.option("--rpc", "rpc_url", envvar="SMARTTA_RPC_URL", required=True,
                     help="JSON-RPC URL of the ledger chain [env SMARTTA_RPC_URL]."),
        click.option("--ws", "ws_url", default=None, help="WebSocket URL of the same node "
                     "(newHeads); polling otherwise."),
        click.option("--ledger", callback=_address, required=True,
                     help="Address of the CeFi Event Ledger contract."),
        click.option("--chain-id", type=int, default=None,
                     help="Refuse a node of any other chain."),
        click.option("--from-block", type=click.IntRange(0), default=0, show_default=True,
                     help="First block (at or before the ledger's deployment)."),
        click.option("--confirmations", type=click.IntRange(0), default=0, show_default=True,
                     help="0 for QBFT (final: a fork stops the indexer); N to index only blocks "
                          "N deep and roll back deeper reorgs."),
        click.option("--token", "tokens", multiple=True, callback=_address,
                     help="ERC-3643 contract to index (token, identity registry, compliance, "
                          "factory); repeat."),
        click.option("--token-rpc", default=None,
                     help="JSON-RPC URL of the token chain (default: the ledger chain)."),
        click.option("--token-ws", default=None),
        click.option("--token-confirmations", type=click.IntRange(0), default=0,
                     show_default=True),
        click.option("--token-from-block", type=click.IntRange(0), default=0, show_default=True),
        click.option("--claims/--no-claims", default=False, show_default=True,
                     help="Index ONCHAINID claim events from any contract of the token chain."),
        click.option("--outbox-dsn", default=None, envvar="SMARTTA_OUTBOX_DSN",
                     help="PostgreSQL DSN holding the TA services' outbox (none: no bus)."),
        click.option("--outbox-table", default=DEFAULT_TABLE, show_default=True),
        click.option("--outbox-channel", default=DEFAULT_CHANNEL, show_default=True),
        click.option("--batch-events", type=click.IntRange(1), default=20_000, show_default=True),
        click.option("--max-range", type=click.IntRange(1), default=2_000, show_default=True,
                     help="Most blocks per eth_getLogs."),
        click.option("--concurrency", type=click.IntRange(1), default=4, show_default=True,
                     help="Block ranges fetched at once per chain."),
        click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
                     help="Processes verifying ledger records (0: in the indexer process)."),
    ]):
        fn = option(fn)
    return fn


def resolve_pg(dsn: str | None) -> str:
    if dsn:
        return dsn
    from pgserver.postgres_server import get_server  # embedded default: a real PostgreSQL

    folder = EMBEDDED_DIR / "pg"
    folder.mkdir(parents=True, exist_ok=True)
    server = get_server(folder.resolve(), cleanup_mode=None)
    return str(server.get_uri())


def resolve_clickhouse(url: str | None) -> str:
    if url:
        return url
    folder = (EMBEDDED_DIR / "clickhouse").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"chdb://{folder}"


def open_analytics(url: str | None, database: str) -> ClickHouseStore:
    try:
        return ClickHouseStore.connect(resolve_clickhouse(url), database)
    except AnalyticsError as exc:
        raise click.ClickException(str(exc)) from exc


def build_config(pg_dsn: str, schema: str, o: dict[str, Any]) -> IndexerConfig:
    chains = [ChainConfig(o["rpc_url"], o["ws_url"], o["ledger"],
                          o["tokens"] if not o["token_rpc"] else (), o["claims"] and
                          not o["token_rpc"], o["confirmations"], o["from_block"], o["chain_id"])]
    if o["token_rpc"]:
        if not o["tokens"] and not o["claims"]:
            raise click.UsageError("--token-rpc needs --token (or --claims)")
        chains.append(ChainConfig(o["token_rpc"], o["token_ws"], None, o["tokens"], o["claims"],
                                  o["token_confirmations"], o["token_from_block"]))
    bus = None
    if o["outbox_dsn"]:
        bus = BusConfig(o["outbox_dsn"], o["outbox_table"], o["outbox_channel"])
    return IndexerConfig(pg_dsn, tuple(chains), schema=schema, bus=bus,
                         batch_events=o["batch_events"], max_range=o["max_range"],
                         concurrency=o["concurrency"], workers=o["workers"])


class Display:
    """Progress: a live table on a terminal, a status line every few seconds otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.statuses: dict[str, Status] = {}
        self.live: Live | None = None
        self.last_line = 0.0
        if not quiet and console.is_terminal:
            self.live = Live(self._table(), console=console, refresh_per_second=4)

    def __enter__(self) -> Display:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(*exc)

    def _table(self) -> RichTable:
        table = RichTable(title="smartta indexer", expand=False)
        for col in ("source", "progress", "head", "indexed", "lag", "events", "events/s",
                    "rows/s", "state"):
            table.add_column(col, justify="left" if col in ("source", "progress", "state")
                             else "right")
        for s in self.statuses.values():
            elapsed = max(time.monotonic() - s.started, 1e-9)
            bar = ProgressBar(total=max(s.head, 1), completed=max(s.indexed, 0), width=24) \
                if not s.source.startswith("bus:") else ""
            table.add_row(s.source, bar, str(s.head), str(s.indexed), str(s.lag),
                          f"{s.events:,}", f"{s.rate:,.0f}", f"{s.rows / elapsed:,.0f}", s.state)
        return table

    def __call__(self, status: Status) -> None:
        self.statuses[status.source] = status
        if self.live is not None:
            self.live.update(self._table())
        elif not self.quiet and time.monotonic() - self.last_line > 5:
            self.last_line = time.monotonic()
            for s in self.statuses.values():
                console.print(f"{s.source} head {s.head} indexed {s.indexed} lag {s.lag} "
                              f"events {s.events} ({s.rate:,.0f}/s) rows {s.rows} {s.state}")


def fail(exc: BaseException) -> None:
    raise click.ClickException(str(exc)) from exc


# ---- smartta indexer ---------------------------------------------------------------------------

@click.group()
def indexer() -> None:
    """Project the chains and the domain events into PostgreSQL and ClickHouse."""


@indexer.command("run")
@store_options
@source_options
@click.option("--once", is_flag=True, help="Stop at the head instead of following it.")
@click.option("--api", "api_bind", default=None, metavar="HOST:PORT",
              help="Serve the query API from this process too (needed with an embedded chdb).")
@click.option("--quiet", is_flag=True, help="No progress display.")
def run_command(pg_dsn: str | None, schema: str, clickhouse_url: str | None,
                clickhouse_database: str, once: bool, api_bind: str | None, quiet: bool,
                **options: Any) -> None:
    """Backfill from the checkpoint (genesis at first), then follow the head."""
    dsn = resolve_pg(pg_dsn)
    config = build_config(dsn, schema, options)
    store = open_analytics(clickhouse_url, clickhouse_database)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        with Display(quiet) as display:
            runner = Indexer(config, store, progress=display)
            asyncio.run(_run(runner, not once, api_bind, dsn, schema, store))
    except IndexerError as exc:
        fail(exc)
    except KeyboardInterrupt:
        console.print("stopped; the next run resumes at the checkpoint")
    finally:
        store.close()


async def _run(runner: Indexer, follow: bool, api_bind: str | None, dsn: str, schema: str,
               store: ClickHouseStore) -> None:
    server = None
    serving: asyncio.Task[None] | None = None
    if api_bind is not None:
        import uvicorn

        from indexer.api import ApiSettings, create_app

        host, _, port = api_bind.rpartition(":")
        app = create_app(ApiSettings(dsn, schema), store)
        server = uvicorn.Server(uvicorn.Config(app, host=host or "127.0.0.1", port=int(port),
                                               log_level="warning"))
        # The indexer's own handlers stop both; uvicorn's would replace them.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        serving = asyncio.create_task(server.serve())

    def stop() -> None:
        # Finish the batch in hand (both stores), then exit: the next run resumes from there.
        runner.stop()
        if server is not None:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await runner.run(follow=follow)
        if serving is not None and not follow:
            await serving  # --once --api: keep answering until stopped
    finally:
        if server is not None and serving is not None:
            server.should_exit = True
            await serving


@indexer.command("rebuild")
@store_options
@source_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--quiet", is_flag=True)
def rebuild_command(pg_dsn: str | None, schema: str, clickhouse_url: str | None,
                    clickhouse_database: str, yes: bool, quiet: bool, **options: Any) -> None:
    """Drop both stores and rebuild them from genesis up to the heights indexed now; exit 1
    unless every table's digest comes out identical."""
    dsn = resolve_pg(pg_dsn)
    config = build_config(dsn, schema, options)
    if not yes:
        click.confirm(f"drop schema {schema} and ClickHouse database {clickhouse_database} and "
                      "rebuild them?", abort=True)
    store = open_analytics(clickhouse_url, clickhouse_database)
    try:
        with Display(quiet) as display:
            before, after = asyncio.run(rebuild(config, store, progress=display))
    except IndexerError as exc:
        fail(exc)
    finally:
        store.close()
    print(json.dumps({"before": before, "after": after}, indent=2))
    if before != after:
        differing = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        raise click.ClickException(f"rebuilt content differs in {', '.join(differing)}")
    console.print("[green]rebuilt: every table identical[/green]")


async def rebuild(config: IndexerConfig, store: ClickHouseStore, *,
                  progress: Callable[[Status], None] | None = None,
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Digest, drop, rebuild to the same heights, digest again; returns both digests."""
    checkpoints = await read_checkpoints(config.pg_dsn, config.schema)
    targets = targets_from(checkpoints)
    before = await _all_digests(config, store)
    conn = await pg.connect(config.pg_dsn)
    try:
        credentials = []
        if await conn.fetchval("SELECT to_regclass($1)",
                               f"{config.schema}.api_credentials") is not None:
            credentials = await conn.fetch(f"SELECT * FROM {config.schema}.api_credentials")
        await pg.drop(conn, config.schema)
        await pg.migrate(conn, config.schema)
        # Credentials are not part of the projection: they survive a rebuild.
        if credentials:
            await conn.copy_records_to_table(
                "api_credentials", schema_name=config.schema, columns=list(credentials[0].keys()),
                records=[tuple(r) for r in credentials])
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{config.schema}."
                               "api_credentials', 'id'), (SELECT max(id) FROM "
                               f"{config.schema}.api_credentials))")
    finally:
        await conn.close()
    await asyncio.to_thread(store.drop)
    runner = Indexer(config, store, progress=progress)
    await runner.run(follow=False, targets=targets)
    after = await _all_digests(config, store)
    return before, after


async def _all_digests(config: IndexerConfig, store: ClickHouseStore) -> dict[str, Any]:
    out = {f"pg.{k}": v for k, v in digest.as_json(
        await digest.pg_digests(config.pg_dsn, config.schema)).items()}
    store.migrate()
    out.update({f"clickhouse.{k}": v for k, v in digest.as_json(
        await asyncio.to_thread(digest.clickhouse_digests, store)).items()})
    return out


@indexer.command("digest")
@store_options
@click.option("--only", type=click.Choice(["pg", "clickhouse", "both"]), default="both",
              show_default=True)
@click.option("--analytics-columns", is_flag=True,
              help="PostgreSQL digests over ClickHouse's columns only (then both stores must "
                   "give the same digests).")
def digest_command(pg_dsn: str | None, schema: str, clickhouse_url: str | None,
                   clickhouse_database: str, only: str, analytics_columns: bool) -> None:
    """Print per-table row counts and SHA-256 content digests as JSON."""
    out: dict[str, Any] = {}
    if only in ("pg", "both"):
        out["pg"] = digest.as_json(asyncio.run(digest.pg_digests(
            resolve_pg(pg_dsn), schema, analytics_only=analytics_columns)))
    if only in ("clickhouse", "both"):
        store = open_analytics(clickhouse_url, clickhouse_database)
        try:
            store.migrate()
            out["clickhouse"] = digest.as_json(digest.clickhouse_digests(store))
        finally:
            store.close()
    print(json.dumps(out, indent=2, sort_keys=True))


@indexer.command("status")
@store_options
@click.option("--json", "as_json", is_flag=True)
def status_command(pg_dsn: str | None, schema: str, clickhouse_url: str | None,
                   clickhouse_database: str, as_json: bool) -> None:
    """Where each source is indexed up to, in PostgreSQL and in ClickHouse."""
    checkpoints = asyncio.run(read_checkpoints(resolve_pg(pg_dsn), schema))
    positions: dict[str, Any] = {}
    try:
        store = ClickHouseStore.connect(resolve_clickhouse(clickhouse_url), clickhouse_database)
        store.migrate()
        positions = {cp.source: store.position(cp.source) for cp in checkpoints}
        store.close()
    except (AnalyticsError, Exception) as exc:  # the status must print even without ClickHouse
        positions = {cp.source: f"unavailable: {exc}" for cp in checkpoints}
    rows = [{"source": cp.source, "block": cp.height,
             "blockHash": None if cp.block is None else "0x" + cp.block.hash.hex(),
             "ledgerSeq": cp.ledger_seq, "bus": list(cp.bus),
             "clickhouse": positions.get(cp.source)} for cp in checkpoints]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"nothing indexed in schema {schema} yet")
    for r in rows:
        console.print(f"{r['source']}: block {r['block']} {r['blockHash'] or ''} ledger seq "
                      f"{r['ledgerSeq']} bus {r['bus']} clickhouse {r['clickhouse']}")


@indexer.command("migrate")
@click.option("--pg", "pg_dsn", envvar="SMARTTA_PG_DSN", default=None)
@click.option("--schema", default=pg.DEFAULT_SCHEMA, show_default=True)
def migrate_command(pg_dsn: str | None, schema: str) -> None:
    """Create or upgrade the PostgreSQL schema (run also by `indexer run`)."""

    async def go() -> list[int]:
        conn = await pg.connect(resolve_pg(pg_dsn))
        try:
            return await pg.migrate(conn, schema)
        finally:
            await conn.close()

    try:
        applied = asyncio.run(go())
    except IndexerError as exc:
        fail(exc)
    console.print(f"schema {schema}: applied {applied or 'nothing (up to date)'}")


@indexer.command("outbox-ddl")
@click.option("--table", default=DEFAULT_TABLE, show_default=True)
@click.option("--channel", default=DEFAULT_CHANNEL, show_default=True)
def outbox_ddl_command(table: str, channel: str) -> None:
    """Print the SQL that creates the outbox table the indexer consumes."""
    print(outbox_ddl(table, channel))


@indexer.group("credentials")
def credentials() -> None:
    """Issue, list and revoke API credentials."""


def _with_conn(pg_dsn: str | None, fn: Callable[[Any], Any]) -> Any:
    async def go() -> Any:
        conn = await pg.connect(resolve_pg(pg_dsn))
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


@credentials.command("issue")
@click.option("--pg", "pg_dsn", envvar="SMARTTA_PG_DSN", default=None)
@click.option("--schema", default=pg.DEFAULT_SCHEMA, show_default=True)
@click.option("--org", "organisation", required=True, help="Who the credential is for.")
@click.option("--role", type=click.Choice(access.ROLES), required=True)
def credentials_issue(pg_dsn: str | None, schema: str, organisation: str, role: str) -> None:
    """Issue a credential; its token is printed once, on standard output."""

    async def go(conn: Any) -> tuple[access.Credential, str]:
        await pg.migrate(conn, schema)
        return await access.issue(conn, schema, organisation, role)

    cred, token = _with_conn(pg_dsn, go)
    console.print(f"credential {cred.id} for {cred.organisation} ({cred.role}); keep the token, "
                  "it is not shown again")
    print(token)


@credentials.command("revoke")
@click.option("--pg", "pg_dsn", envvar="SMARTTA_PG_DSN", default=None)
@click.option("--schema", default=pg.DEFAULT_SCHEMA, show_default=True)
@click.argument("credential_id", type=int)
def credentials_revoke(pg_dsn: str | None, schema: str, credential_id: int) -> None:
    """Revoke a credential at once."""
    if not _with_conn(pg_dsn, lambda c: access.revoke(c, schema, credential_id)):
        raise click.ClickException(f"credential {credential_id} does not exist or is revoked")
    console.print(f"credential {credential_id} revoked")


@credentials.command("list")
@click.option("--pg", "pg_dsn", envvar="SMARTTA_PG_DSN", default=None)
@click.option("--schema", default=pg.DEFAULT_SCHEMA, show_default=True)
def credentials_list(pg_dsn: str | None, schema: str) -> None:
    for c in _with_conn(pg_dsn, lambda conn: access.listing(conn, schema)):
        state = f"revoked {c.revoked_at:%Y-%m-%d}" if c.revoked_at else "active"
        print(f"{c.id}\t{c.organisation}\t{c.role}\t{state}")


# ---- smartta api -------------------------------------------------------------------------------

@click.command("api")
@store_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
def api(pg_dsn: str | None, schema: str, clickhouse_url: str | None, clickhouse_database: str,
        host: str, port: int) -> None:
    """Serve the query API (OpenAPI at /docs). With an embedded chdb that a running indexer
    holds, the analytics routes answer 503: serve the API with `smartta indexer run --api`."""
    import uvicorn

    from indexer.api import ApiSettings, create_app

    dsn = resolve_pg(pg_dsn)
    store: ClickHouseStore | None = None
    error = None
    try:
        store = ClickHouseStore.connect(resolve_clickhouse(clickhouse_url), clickhouse_database)
        store.migrate()
    except (AnalyticsError, Exception) as exc:  # serve the PostgreSQL routes regardless
        error = f"ClickHouse is not available to this process: {exc}"
        console.print(f"[yellow]{error}[/yellow]")
    app = create_app(ApiSettings(dsn, schema), store, analytics_error=error)
    console.print(f"serving on http://{host}:{port} (OpenAPI: /docs, /openapi.json)")
    uvicorn.run(app, host=host, port=port, log_level="warning")


def main() -> None:  # `python -m indexer.cli …` without the smartta launcher (tests, services)
    cli = click.Group(commands={"indexer": indexer, "api": api})
    cli(sys.argv[1:])


if __name__ == "__main__":
    main()
