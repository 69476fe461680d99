"""Real parts for the indexer tests.

- PostgreSQL: ``SMARTTA_PG_DSN`` when set, otherwise the embedded ``pgserver`` (a real
  PostgreSQL) in a temporary directory; each test gets its own schemas.
- ClickHouse: ``SMARTTA_CLICKHOUSE_URL`` when set (a server), otherwise the real engine
  in-process through chdb; each test gets its own database.
- The chain: anvil with the CeFiEventLedger deployed (``SMARTTA_INDEXER_NODE=devnode`` runs
  our own dev node from tests/compat/devnode.py instead).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

HERE = str(Path(__file__).parent)
if HERE not in sys.path:  # pytest runs with --import-mode=importlib
    sys.path.insert(0, HERE)

from chainkit import ROOT, Anvil, LedgerKit, actor_key, free_port, rpc  # noqa: E402

from indexer.analytics import ClickHouseStore  # noqa: E402


def pgserver_dir() -> Path:
    """A data directory the pgserver system user can reach (pytest's temp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="smartta-pg-"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    dsn = os.environ.get("SMARTTA_PG_DSN")
    if dsn:
        yield dsn
        return
    from pgserver.postgres_server import get_server

    where = pgserver_dir()
    server = get_server(where, cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def schema(pg_dsn: str) -> Iterator[str]:
    name = "idx_" + secrets.token_hex(4)
    yield name
    run(_execute(pg_dsn, f"DROP SCHEMA IF EXISTS {name} CASCADE"))


@pytest.fixture
def outbox_table(pg_dsn: str) -> Iterator[str]:
    from indexer.outbox import create_outbox

    name = "ob_" + secrets.token_hex(4)

    async def create() -> None:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await create_outbox(conn, f"{name}.outbox", channel=name)
        finally:
            await conn.close()

    run(create())
    yield f"{name}.outbox"
    run(_execute(pg_dsn, f"DROP SCHEMA IF EXISTS {name} CASCADE"))


@pytest.fixture(scope="session")
def clickhouse_url() -> str:
    return os.environ.get("SMARTTA_CLICKHOUSE_URL", "chdb://memory")


@pytest.fixture
def analytics(clickhouse_url: str) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore.connect(clickhouse_url, "idx_" + secrets.token_hex(4))
    store.migrate()
    yield store
    store.drop()
    store.close()


class DevNode:
    """tests/compat/devnode.py in its own process, as an anvil stand-in (our own node)."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "compat" / "devnode.py"), "--dir", str(data_dir),
             "--port", str(free_port())], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.url, self.ws_url, self.chain_id = info["url"], info["ws"], info["chain_id"]

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        return rpc(self.url, method, params)

    def head(self) -> int:
        return int(rpc(self.url, "eth_blockNumber"), 16)

    def mine(self, blocks: int = 1) -> None:
        rpc(self.url, "hardhat_mine", [hex(blocks)])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Any]:
    """A node with automining; anvil unless SMARTTA_INDEXER_NODE=devnode."""
    if os.environ.get("SMARTTA_INDEXER_NODE") == "devnode":
        dev = DevNode(tmp_path / "devnode")
        yield dev
        dev.stop()
        return
    with Anvil() as anvil:
        yield anvil


@pytest.fixture
def ledger(node: Any) -> LedgerKit:
    key = None
    if isinstance(node, DevNode):
        sys.path.insert(0, str(ROOT / "tests" / "compat"))
        from devnode import test_accounts

        key = test_accounts(1)[0][1]
    kit = LedgerKit(node.url, [actor_key(0), actor_key(1)], sender_key=key)
    kit.deploy()
    return kit
