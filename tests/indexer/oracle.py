"""What the stores must hold, worked out without the indexer: the ledger straight from the node
(decoded with chain/ledger alone), the register from the scenario that wrote it."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import asyncpg
from chainkit import FundScenario, chain_records

from indexer import digest


async def _fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def pg_rows(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(dsn, sql, *args))


def assert_pg_matches_chain(dsn: str, schema: str, url: str, ledger: bytes,
                            scenario: FundScenario | None = None, *, upto: int | None = None,
                            ) -> int:
    """Every ledger record on the chain (up to block ``upto``) is in PostgreSQL exactly once,
    field for field, and the register equals the scenario's. Returns the record count."""
    expected = chain_records(url, ledger, upto)
    rows = pg_rows(dsn, f"SELECT seq, block_number, block_hash, tx_hash, log_index, actor, "
                        f"event_type, nonce, attestation_id, data_hash, previous_hash, record_hash, "
                        f"delta, finding FROM {schema}.ledger_records ORDER BY seq")
    assert len(rows) == len(expected), f"{len(rows)} rows for {len(expected)} records on chain"
    for row, (r, lg) in zip(rows, expected, strict=True):
        got = (row["seq"], row["block_number"], "0x" + bytes(row["block_hash"]).hex(),
               "0x" + bytes(row["tx_hash"]).hex(), row["log_index"], bytes(row["actor"]),
               row["event_type"], int(row["nonce"]), bytes(row["attestation_id"]),
               bytes(row["data_hash"]), bytes(row["previous_hash"]), bytes(row["delta"]))
        want = (r.seq, r.block_height, lg["blockHash"], lg["transactionHash"],
                int(lg["logIndex"], 16), r.actor, r.event_type, r.nonce, r.attestation_id,
                r.data_hash, r.previous_hash, r.delta)
        assert got == want, f"record {r.seq} differs"
        assert row["finding"] is None
    if expected:
        # The last record of each log carries the contract's own head hash.
        assert bytes(rows[-1]["record_hash"]) == expected[-1][0].record_hash
    if scenario is not None and upto is None:
        balances = pg_rows(dsn, f"SELECT asset, holder, balance FROM {schema}.balances "
                                f"WHERE kind = 'units' AND balance <> 0")
        got_register = {(b["asset"], b["holder"]): b["balance"] for b in balances}
        want_register = {k: v for k, v in scenario.register.items() if v != Decimal(0)}
        assert got_register == want_register
    return len(rows)


def assert_no_gaps_or_duplicates(dsn: str, schema: str) -> None:
    rows = pg_rows(dsn, f"SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, "
                        f"max(seq) AS hi FROM {schema}.ledger_records")
    n, d, lo, hi = rows[0]["n"], rows[0]["d"], rows[0]["lo"], rows[0]["hi"]
    if n:
        assert n == d == hi - lo + 1 and lo == 1, f"{n} rows, {d} distinct, seq {lo}..{hi}"
    blocks = pg_rows(dsn, f"SELECT chain_id, count(*) AS n, min(number) AS lo, max(number) AS hi "
                          f"FROM {schema}.blocks GROUP BY chain_id")
    for b in blocks:
        assert b["n"] == b["hi"] - b["lo"] + 1, f"blocks of chain {b['chain_id']} have gaps"


def pg_analytics_digests(dsn: str, schema: str) -> dict[str, Any]:
    return digest.as_json(asyncio.run(digest.pg_digests(dsn, schema, analytics_only=True)))


def replay_register(records: list[Any], upto_block: int | None = None,
                    ) -> dict[tuple[str, str], Decimal]:
    """The register implied by ledger records (chain/ledger objects), replayed by hand."""
    import json

    register: dict[tuple[str, str], Decimal] = {}
    declared: dict[str, str] = {}

    def add(fund: str, who: str, units: Decimal) -> None:
        register[(fund, who)] = register.get((fund, who), Decimal(0)) + units

    for r in records:
        if upto_block is not None and r.block_height > upto_block:
            break
        d = json.loads(r.delta)
        if r.event_type == "UNITS_ISSUED":
            add(d["isin"], d["investor"], Decimal(d["units"]))
        elif r.event_type == "UNITS_REDEEMED":
            add(d["isin"], d["investor"], -Decimal(d["units"]))
        elif r.event_type == "UNITS_TRANSFERRED":
            add(d["isin"], d["from_investor"], -Decimal(d["units"]))
            add(d["isin"], d["to_investor"], Decimal(d["units"]))
        elif r.event_type == "DISTRIBUTION_DECLARED":
            declared.setdefault(d["distribution"], d["isin"])
        elif r.event_type == "DISTRIBUTION_PAID" and "reinvested_units" in d:
            add(declared[d["distribution"]], d["investor"], Decimal(d["reinvested_units"]))
    return {k: v for k, v in register.items() if v != 0}
