"""API keys: created by `citeqa keys create`, stored hashed where the documents are.

A key is ``cq_<key id>_<secret>``; only SHA-256 of the whole key is stored (a random
256-bit secret needs no slow hash: there is nothing to guess). The key id, printed in
lists and logs, identifies a key without revealing it. Scopes: ``read`` (ask, search,
chat, get), ``write`` (ingest, delete) and ``admin`` (manage keys and collections); they
are checked literally, so an admin key that should also read and write holds all three.
Each key has its own rate limit, and may be limited to some collections (``collections``;
None: every collection): outside them it sees nothing (api/security.py ``may_see``).

Two backends fill the :class:`KeyStore` role, chosen like the document store
(api/services.py ``open_store``): ``keys.db`` (SQLite) in the data directory, or, with
``CITEQA_STORE=postgresql://...``, tables of that database (api/key_store_postgres.py),
so that every replica sees the same keys, revocations and rate-limit buckets at once.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Protocol

from citeqa.index.scope import InvalidScope, check_collection
from citeqa.index.sqlite_wal import switch_to_wal

if TYPE_CHECKING:
    from citeqa.api.settings import Settings

SCOPES = ("read", "write", "admin")
PREFIX = "cq_"
MAX_KEY_CHARS = 200  # longer "keys" are refused before hashing or asking the database


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[str]
    rate_per_s: float | None  # None: the server's default for keys
    burst: int | None
    created_at: float
    revoked_at: float | None = None
    collections: frozenset[str] | None = None  # None: every collection


class KeyStore(Protocol):
    """Keys, their revocations and their rate-limit buckets.

    ``verify`` answers from the backing store on every call (no cache), so a revocation
    holds from the next request on, wherever it was made."""

    def create(self, name: str, scopes: list[str], rate_per_s: float | None = None,
               burst: int | None = None, collections: list[str] | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret, which is shown once and never stored. ``collections``
        limits the key to those collections (None: every one); ValueError for unknown
        scopes or invalid collection names, before anything is stored."""
        ...

    def list(self) -> list[ApiKey]: ...

    def revoke(self, key_id: str) -> bool:
        """True if a live key was revoked now (False: unknown or already revoked)."""
        ...

    def has_keys(self) -> bool:
        """Whether any key was ever created (revoked ones count: auth stays on)."""
        ...

    def verify(self, secret: str) -> ApiKey | None:
        """The live key this secret belongs to, or None."""
        ...

    def take(self, key_id: str, rate_per_s: float, burst: int) -> float:
        """One token from the key's bucket: 0 if the request may go now, else the seconds
        until it may (``rate_per_s`` > 0)."""
        ...

    def close(self) -> None: ...


def open_key_store(settings: Settings) -> KeyStore:
    """``keys.db`` in the data directory unless ``CITEQA_STORE`` is a PostgreSQL URL (the
    rule of api/services.py ``open_store``): then the keys live in that database."""
    url = settings.store.get_secret_value().strip()
    if url.startswith(("postgresql://", "postgres://")):
        from citeqa.api.key_store_postgres import PostgresKeyStore

        return PostgresKeyStore(url, max_connections=settings.key_db_connections)
    return SqliteKeyStore(settings.data_dir)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def plausible(secret: str) -> bool:
    """Whether ``secret`` could be a key at all (anything else is refused unhashed)."""
    return secret.startswith(PREFIX) and len(secret) <= MAX_KEY_CHARS


def new_key(name: str, scopes: list[str], rate_per_s: float | None, burst: int | None,
            collections: Iterable[str] | None = None) -> tuple[ApiKey, str]:
    """A fresh key and its secret; ValueError for scopes that do not exist (or none) and
    for collection names that are not valid (or an empty list: a key for nothing)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
    limited = None if collections is None else checked_collections(collections)
    key_id = secrets.token_hex(4)
    secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    return ApiKey(key_id, name, frozenset(scopes), rate_per_s, burst, time.time(), collections=limited), secret


def checked_collections(collections: Iterable[str]) -> frozenset[str]:
    """The collections a key is limited to; ValueError unless each is a valid name and
    there is at least one (a key for every collection says so with None, not [])."""
    if isinstance(collections, str):  # a bare name would otherwise be read letter by letter
        raise ValueError(f"collections must be a list of collection names, not the string {collections!r}")
    names = list(collections)
    if not names:
        raise ValueError("collections must name at least one collection (leave it out for a key that sees every "
                         "collection)")
    for name in names:
        try:
            check_collection(name)
        except InvalidScope as exc:
            raise ValueError(f"collections: {exc}") from None
    return frozenset(names)


class TokenBuckets:
    """One bucket per caller, in this process: ``rate`` tokens a second, at most ``burst``
    saved up. Used for keys in keys.db (one data directory: one process) and for callers
    without a key (by address) on every backend."""

    def __init__(self, max_callers: int = 10_000):
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, at)
        self._lock = threading.Lock()
        self.max_callers = max_callers

    def take(self, caller: str, rate: float, burst: int) -> float:
        """0 if the request may go now, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) >= self.max_callers and caller not in self._buckets:
                self._buckets.clear()  # bounded memory; a full refill only errs towards allowing
            tokens, at = self._buckets.get(caller, (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[caller] = (tokens - 1.0, now)
                return 0.0
            self._buckets[caller] = (tokens, now)
            return (1.0 - tokens) / rate


_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    rate_per_s REAL,
    burst INTEGER,
    created_at REAL NOT NULL,
    revoked_at REAL,
    collections TEXT
)
"""
# ``collections``: comma-separated names (a name holds no comma), NULL for every collection.
# keys.db files from before it get the column on open, NULL in every row: all unlimited.
_COLUMNS = "key_id, name, scopes, rate_per_s, burst, created_at, revoked_at, collections"


class SqliteKeyStore:
    """``keys.db`` in one replica's data directory. Its rate-limit buckets live in this
    process's memory: a data directory is served by one process."""

    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "keys.db"
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        switch_to_wal(self._db)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._add_collections_column()
        self._lock = threading.Lock()
        self._buckets = TokenBuckets()

    def _add_collections_column(self) -> None:
        """A keys.db from before collections gets the column (NULL: every key unlimited).
        Checked again under the write lock, so two processes opening it at once add it once."""
        def missing() -> bool:
            return "collections" not in {row[1] for row in self._db.execute("PRAGMA table_info(api_keys)")}

        if not missing():
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if missing():
                self._db.execute("ALTER TABLE api_keys ADD COLUMN collections TEXT")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def create(self, name: str, scopes: list[str], rate_per_s: float | None = None,
               burst: int | None = None, collections: list[str] | None = None) -> tuple[ApiKey, str]:
        key, secret = new_key(name, scopes, rate_per_s, burst, collections)
        limited = None if key.collections is None else ",".join(sorted(key.collections))
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys (key_id, name, digest, scopes, rate_per_s, burst, created_at, collections) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (key.key_id, name, digest(secret), ",".join(sorted(scopes)), rate_per_s, burst, key.created_at,
                 limited))
        return key, secret

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at").fetchall()
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                                   (time.time(), key_id))
        return cur.rowcount == 1

    def has_keys(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def verify(self, secret: str) -> ApiKey | None:
        if not plausible(secret):
            return None
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE digest = ? AND revoked_at IS NULL",
                                   (digest(secret),)).fetchone()
        return None if row is None else _key(row)

    def take(self, key_id: str, rate_per_s: float, burst: int) -> float:
        return self._buckets.take(key_id, rate_per_s, burst)

    def close(self) -> None:
        self._db.close()


def _key(row: tuple) -> ApiKey:
    key_id, name, scopes, rate, burst, created, revoked, collections = row
    if isinstance(scopes, str):
        scopes = scopes.split(",")
    if isinstance(collections, str):
        collections = collections.split(",")
    return ApiKey(key_id, name, frozenset(scopes), rate, burst, created, revoked,
                  None if collections is None else frozenset(collections))
