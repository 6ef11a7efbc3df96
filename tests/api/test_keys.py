"""API keys at rest (api/keys.py, api/key_store_postgres.py): the KeyStore contract on both
backends (tests/api/key_store_contract.py), what keys.db keeps on disk, and which backend
the settings choose."""

from __future__ import annotations

import pytest

from citeqa.api.keys import SqliteKeyStore, digest, open_key_store
from citeqa.api.settings import Settings
from tests.api.key_store_contract import CHECKS, OpenStore


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request, tmp_path) -> OpenStore:
    """Opens a store on one backing: a data directory, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return lambda: SqliteKeyStore(tmp_path)
    from citeqa.api.key_store_postgres import PostgresKeyStore

    url = request.getfixturevalue("database_url")  # skips when PostgreSQL cannot run here
    return lambda: PostgresKeyStore(url, max_connections=2)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
def test_key_store_contract(open_store, check):
    check(open_store)


def test_keys_db_holds_only_hashes(tmp_path):
    store = SqliteKeyStore(tmp_path)
    _, secret = store.create("ci", ["read", "write"])
    store.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("keys.db*"))
    assert digest(secret).encode() in raw  # what is kept instead
    assert secret.encode() not in raw and secret.split("_", 2)[2].encode() not in raw


def test_postgres_keeps_only_hashes(database_url):
    import psycopg

    from citeqa.api.key_store_postgres import PostgresKeyStore

    store = PostgresKeyStore(database_url, max_connections=1)
    key, secret = store.create("ci", ["read"])
    store.take(key.key_id, 1.0, 5)
    store.close()
    with psycopg.connect(database_url) as conn:
        dumped = " ".join(str(row) for table in ("citeqa_api_keys", "citeqa_rate_buckets")
                          for row in conn.execute(f"SELECT * FROM {table}").fetchall())
    assert key.key_id in dumped and digest(secret) in dumped and secret.split("_", 2)[2] not in dumped


def test_the_store_setting_chooses_the_backend(tmp_path, database_url):
    from citeqa.api.key_store_postgres import PostgresKeyStore

    local = open_key_store(Settings(data_dir=tmp_path))
    assert isinstance(local, SqliteKeyStore) and local.path == tmp_path / "keys.db"
    local.close()
    shared = open_key_store(Settings(data_dir=tmp_path, store=database_url, key_db_connections=3))
    assert isinstance(shared, PostgresKeyStore) and shared.pool.max_size == 3
    shared.close()


def test_two_stores_creating_the_schema_at_once_do_not_collide(database_url):
    from concurrent.futures import ThreadPoolExecutor

    from citeqa.api.key_store_postgres import PostgresKeyStore

    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: PostgresKeyStore(database_url, max_connections=1), range(4)))
    _, secret = stores[0].create("one", ["read"])
    assert all(store.verify(secret) is not None for store in stores)
    for store in stores:
        store.close()


_OLD_SQLITE_SCHEMA = """CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL, digest TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL, rate_per_s REAL, burst INTEGER, created_at REAL NOT NULL, revoked_at REAL)"""


def test_a_keys_db_from_before_collections_opens_with_every_key_unlimited(tmp_path):
    import sqlite3
    import time

    secret = "cq_0ld0ld00_" + "s" * 43
    with sqlite3.connect(tmp_path / "keys.db") as db:  # the table as it was before collections
        db.execute(_OLD_SQLITE_SCHEMA)
        db.execute("INSERT INTO api_keys VALUES (?,?,?,?,?,?,?,?)",
                   ("0ld0ld00", "old", digest(secret), "read,write", 2.0, 5, time.time(), None))
    db.close()
    store = SqliteKeyStore(tmp_path)
    old = store.verify(secret)
    assert old is not None and old.collections is None and old.scopes == frozenset({"read", "write"})
    assert (old.rate_per_s, old.burst) == (2.0, 5)
    new, new_secret = store.create("new", ["read"], collections=["news"])
    store.close()
    reopened = SqliteKeyStore(tmp_path)  # the column is there now: opening again changes nothing
    assert {k.key_id: k.collections for k in reopened.list()} == {"0ld0ld00": None, new.key_id: frozenset({"news"})}
    assert reopened.verify(new_secret) is not None
    reopened.close()


def test_a_postgres_key_table_from_before_collections_opens_with_every_key_unlimited(database_url):
    import time

    import psycopg

    from citeqa.api.key_store_postgres import PostgresKeyStore

    secret = "cq_0ld0ld00_" + "s" * 43
    with psycopg.connect(database_url, autocommit=True) as conn:  # the tables as they were before collections
        conn.execute("""CREATE TABLE citeqa_api_keys (key_id text PRIMARY KEY, name text NOT NULL,
            digest text NOT NULL UNIQUE, scopes text[] NOT NULL, rate_per_s double precision, burst integer,
            created_at double precision NOT NULL, revoked_at double precision)""")
        conn.execute("INSERT INTO citeqa_api_keys VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                     ("0ld0ld00", "old", digest(secret), ["read"], None, None, time.time(), None))
    store = PostgresKeyStore(database_url, max_connections=1)
    old = store.verify(secret)
    assert old is not None and old.collections is None and old.scopes == frozenset({"read"})
    new, _ = store.create("new", ["read"], collections=["news", "sports"])
    store.close()
    again = PostgresKeyStore(database_url, max_connections=1)
    assert {k.key_id: k.collections for k in again.list()} == {"0ld0ld00": None,
                                                               new.key_id: frozenset({"news", "sports"})}
    again.close()
