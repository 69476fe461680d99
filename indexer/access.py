"""API credentials: one bearer token per organisation and role.

``observer`` (a regulator, an auditor) reads; ``operator`` (the TA) reads and writes. Only the
SHA-256 of a token is stored; the token is shown once, when issued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

from indexer import pg

ROLES = ("observer", "operator")
TOKEN_PREFIX = "stk_"


@dataclass(frozen=True, slots=True)
class Credential:
    id: int
    organisation: str
    role: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def can_write(self) -> bool:
        return self.role == "operator" and self.revoked_at is None


def _sha(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def issue(conn: asyncpg.Connection, schema: str, organisation: str, role: str,
                ) -> tuple[Credential, str]:
    if role not in ROLES:
        raise ValueError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if not organisation.strip():
        raise ValueError("organisation is empty; name who the credential is for")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = await conn.fetchrow(
        f"INSERT INTO {pg.check_schema(schema)}.api_credentials (organisation, role, "
        f"token_sha256) VALUES ($1, $2, $3) RETURNING id, created_at",
        organisation.strip(), role, _sha(token))
    return Credential(row["id"], organisation.strip(), role, row["created_at"]), token


async def revoke(conn: asyncpg.Connection, schema: str, credential_id: int) -> bool:
    status = await conn.execute(
        f"UPDATE {pg.check_schema(schema)}.api_credentials SET revoked_at = now() "
        f"WHERE id = $1 AND revoked_at IS NULL", credential_id)
    return bool(status.endswith(" 1"))


async def listing(conn: asyncpg.Connection, schema: str) -> list[Credential]:
    rows = await conn.fetch(f"SELECT id, organisation, role, created_at, revoked_at FROM "
                            f"{pg.check_schema(schema)}.api_credentials ORDER BY id")
    return [Credential(r["id"], r["organisation"], r["role"], r["created_at"], r["revoked_at"])
            for r in rows]


async def authenticate(conn: asyncpg.Connection, schema: str, token: str) -> Credential | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = await conn.fetchrow(
        f"SELECT id, organisation, role, created_at, revoked_at FROM "
        f"{pg.check_schema(schema)}.api_credentials WHERE token_sha256 = $1", _sha(token))
    if row is None or row["revoked_at"] is not None:
        return None
    return Credential(row["id"], row["organisation"], row["role"], row["created_at"])
