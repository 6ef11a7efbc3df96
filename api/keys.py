"""API keys: created by `citeqa keys create`, stored hashed in ``keys.db`` in the data dir.

A key is ``cq_<key id>_<secret>``; only SHA-256 of the whole key is stored (a random
256-bit secret needs no slow hash: there is nothing to guess). The key id, printed in
lists and logs, identifies a key without revealing it. Scopes: ``read`` (ask, search,
chat, get) and ``write`` (ingest, delete); each key also has its own rate limit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCOPES = ("read", "write")
PREFIX = "cq_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    rate_per_s REAL,
    burst INTEGER,
    created_at REAL NOT NULL,
    revoked_at REAL
)
"""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[str]
    rate_per_s: float | None  # None: the server's default for keys
    burst: int | None
    created_at: float
    revoked_at: float | None = None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "keys.db"
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def create(self, name: str, scopes: list[str], rate_per_s: float | None = None,
               burst: int | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret, which is shown once and never stored."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
        key_id = secrets.token_hex(4)
        secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, name, frozenset(scopes), rate_per_s, burst, time.time())
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys (key_id, name, digest, scopes, rate_per_s, burst, created_at) "
                "VALUES (?,?,?,?,?,?,?)",
                (key_id, name, _digest(secret), ",".join(sorted(scopes)), rate_per_s, burst, key.created_at))
        return key, secret

    def list(self) -> list[ApiKey]:
        with self._lock:
            rows = self._db.execute("SELECT key_id, name, scopes, rate_per_s, burst, created_at, revoked_at "
                                    "FROM api_keys ORDER BY created_at").fetchall()
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
        """The live key this secret belongs to, or None."""
        if not secret.startswith(PREFIX) or len(secret) > 200:
            return None
        digest = _digest(secret)
        with self._lock:
            row = self._db.execute("SELECT key_id, name, scopes, rate_per_s, burst, created_at, revoked_at, digest "
                                   "FROM api_keys WHERE digest = ?", (digest,)).fetchone()
        if row is None or not hmac.compare_digest(row[7], digest) or row[6] is not None:
            return None
        return _key(row[:7])

    def close(self) -> None:
        self._db.close()


def _key(row: tuple) -> ApiKey:
    key_id, name, scopes, rate, burst, created, revoked = row
    return ApiKey(key_id, name, frozenset(scopes.split(",")), rate, burst, created, revoked)
