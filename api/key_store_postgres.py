"""The :class:`citeqa.api.keys.KeyStore` role in PostgreSQL, shared by every replica that
points ``CITEQA_STORE`` at the same database.

Tables (their own names, beside the document store's ``citeqa_*`` tables):

* ``citeqa_api_keys``: one row per key, the key itself only as its SHA-256 (``digest``,
  uniquely indexed: a verification is one index lookup), ``revoked_at`` set on revocation,
  ``collections`` the collections the key is limited to (NULL: every one; databases from
  before it get the column on open, NULL in every row).
* ``citeqa_rate_buckets``: each key's token bucket (tokens left, when last updated, and
  whether the last take was granted). A take is one ``INSERT ... ON CONFLICT DO UPDATE
  ... RETURNING``: the refill is computed from the stored time and the database's clock
  (one clock for all replicas) under the row's lock, so replicas taking from one bucket at
  once are serialised and a key gets at most ``burst`` requests through all of them.

Nothing is cached: a key created or revoked through any replica counts from the next
request on every replica. Connections come from a bounded ``psycopg_pool`` pool.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import psycopg
from psycopg_pool import ConnectionPool

from citeqa.api.keys import ApiKey, new_key, plausible
from citeqa.api.keys import digest as key_digest

_SCHEMA_LOCK = 0x6369746B  # "citk": advisory lock held while creating the tables
# A pool connection is awaited this long before the request fails (the queries take
# milliseconds: a longer wait means the database is gone, not busy).
POOL_TIMEOUT_S = 10.0

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS citeqa_api_keys (
        key_id text PRIMARY KEY,
        name text NOT NULL,
        digest text NOT NULL UNIQUE,
        scopes text[] NOT NULL,
        rate_per_s double precision,
        burst integer,
        created_at double precision NOT NULL,
        revoked_at double precision,
        collections text[])""",
    """CREATE TABLE IF NOT EXISTS citeqa_rate_buckets (
        key_id text PRIMARY KEY REFERENCES citeqa_api_keys (key_id) ON DELETE CASCADE,
        tokens double precision NOT NULL,
        updated_at double precision NOT NULL,
        granted boolean NOT NULL)""",
]
# Columns added after the tables first shipped: added on open when missing (nullable, no
# default: no rewrite). Looked up first, because even ``ADD COLUMN IF NOT EXISTS`` takes
# the table's exclusive lock, which would stall every replica's key checks at each start.
_ADDED_COLUMNS = [("citeqa_api_keys", "collections", "text[]")]
_COLUMNS = "key_id, name, scopes, rate_per_s, burst, created_at, revoked_at, collections"

# The token bucket, atomically: a first take inserts a full bucket less one token; later
# ones refill by the seconds since the stored time (never negative: a concurrent take
# may have stored a later time than this statement's clock), cap at the burst and take a
# token if one is there. %(rate)s > 0 and %(burst)s >= 1.
_REFILLED = ("least(%(burst)s::float8, b.tokens "
             "+ greatest(0.0, excluded.updated_at - b.updated_at) * %(rate)s::float8)")
_TAKE = f"""
INSERT INTO citeqa_rate_buckets AS b (key_id, tokens, updated_at, granted)
VALUES (%(key_id)s, %(burst)s::float8 - 1.0, extract(epoch FROM clock_timestamp()), true)
ON CONFLICT (key_id) DO UPDATE SET
    tokens = CASE WHEN {_REFILLED} >= 1.0 THEN {_REFILLED} - 1.0 ELSE {_REFILLED} END,
    updated_at = greatest(b.updated_at, excluded.updated_at),
    granted = {_REFILLED} >= 1.0
RETURNING b.tokens, b.granted
"""

T = TypeVar("T")


class PostgresKeyStore:
    def __init__(self, url: str, max_connections: int = 4):
        with psycopg.connect(url, autocommit=True) as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for statement in _SCHEMA:
                    conn.execute(statement)
                for table, column, kind in _ADDED_COLUMNS:
                    present = conn.execute(
                        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                        "AND table_name = %s AND column_name = %s", (table, column)).fetchone()
                    if present is None:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self.pool = ConnectionPool(url, min_size=1, max_size=max_connections, kwargs={"autocommit": True},
                                   timeout=POOL_TIMEOUT_S, name="citeqa-keys", open=True)

    def _run(self, work: Callable[[psycopg.Connection[Any]], T], retry: bool = True) -> T:
        """``work`` on a pooled connection. A connection that broke while idle in the pool
        (the server restarted) is dropped by the pool; idempotent work tries once more."""
        try:
            with self.pool.connection() as conn:
                return work(conn)
        except psycopg.OperationalError:
            if not retry:
                raise
            with self.pool.connection() as conn:
                return work(conn)

    def create(self, name: str, scopes: list[str], rate_per_s: float | None = None,
               burst: int | None = None, collections: list[str] | None = None) -> tuple[ApiKey, str]:
        key, secret = new_key(name, scopes, rate_per_s, burst, collections)
        limited = None if key.collections is None else sorted(key.collections)
        self._run(lambda conn: conn.execute(
            "INSERT INTO citeqa_api_keys (key_id, name, digest, scopes, rate_per_s, burst, created_at, collections) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (key.key_id, name, key_digest(secret), sorted(scopes), rate_per_s, burst, key.created_at, limited)),
            retry=False)
        return key, secret

    def list(self) -> list[ApiKey]:
        rows = self._run(lambda conn: conn.execute(
            f"SELECT {_COLUMNS} FROM citeqa_api_keys ORDER BY created_at").fetchall())
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        cur = self._run(lambda conn: conn.execute(
            "UPDATE citeqa_api_keys SET revoked_at = extract(epoch FROM clock_timestamp()) "
            "WHERE key_id = %s AND revoked_at IS NULL", (key_id,)), retry=False)
        return cur.rowcount == 1

    def has_keys(self) -> bool:
        return self._run(lambda conn: conn.execute("SELECT 1 FROM citeqa_api_keys LIMIT 1").fetchone()) is not None

    def verify(self, secret: str) -> ApiKey | None:
        if not plausible(secret):
            return None
        row = self._run(lambda conn: conn.execute(
            f"SELECT {_COLUMNS} FROM citeqa_api_keys WHERE digest = %s AND revoked_at IS NULL",
            (key_digest(secret),)).fetchone())
        return None if row is None else _key(row)

    def take(self, key_id: str, rate_per_s: float, burst: int) -> float:
        row = self._run(lambda conn: conn.execute(
            _TAKE, {"key_id": key_id, "rate": rate_per_s, "burst": burst}).fetchone(), retry=False)
        assert row is not None  # an upsert returns its row
        tokens, granted = row
        return 0.0 if granted else (1.0 - tokens) / rate_per_s

    def close(self) -> None:
        self.pool.close()


def _key(row: tuple) -> ApiKey:
    key_id, name, scopes, rate, burst, created, revoked, collections = row
    return ApiKey(key_id, name, frozenset(scopes), rate, burst, created, revoked,
                  None if collections is None else frozenset(collections))
