"""Stores written before versions kept their source files (issue 15) open and work: their
versions read back with no source and no original, and new versions with files go in
beside them. The contract itself (round trips, sharing, refusals) is
tests/contracts/sources.py, run by each backend's test module.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from citeqa.index.embedded_store import EmbeddedStore
from tests.contracts.concurrency import run_at_once
from tests.contracts.samples import (
    DIMENSION,
    ORIGINAL,
    OTHER_TEXT,
    STORM,
    V1_TEXT,
    V2_TEXT,
    WHALES,
    Stored,
    build,
    source_of,
    texts,
    vector,
)

# The SQLite layout as citeqa wrote it before sources (versions without ``source``, no
# ``originals`` table); before mentions, ``sentences`` had no ``mentions`` column either.
_SENTENCES_BEFORE_MENTIONS = """CREATE TABLE sentences (
    id INTEGER PRIMARY KEY,
    version_id INTEGER NOT NULL REFERENCES versions (id),
    idx INTEGER NOT NULL,
    start_char INTEGER NOT NULL,
    end_char INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    UNIQUE (version_id, idx))"""
# The FTS5 tables lexical search used before Tantivy (index/tantivy_lexical.py).
_OLD_FTS = "tokenize = 'porter unicode61 remove_diacritics 2'"
FTS_TABLE_SQL = f"CREATE VIRTUAL TABLE IF NOT EXISTS sentence_fts USING fts5(text, {_OLD_FTS})"
DOCUMENT_FTS_TABLE_SQL = f"CREATE VIRTUAL TABLE IF NOT EXISTS document_fts USING fts5(title, text, {_OLD_FTS})"
OLD_LAYOUT = {
    "before-sources": [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE documents (
            doc_id TEXT PRIMARY KEY,
            current_version TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL)""",
        """CREATE TABLE versions (
            id INTEGER PRIMARY KEY,
            doc_id TEXT NOT NULL,
            version TEXT NOT NULL,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            metadata TEXT NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (doc_id, version))""",
        _SENTENCES_BEFORE_MENTIONS.replace("active INTEGER NOT NULL DEFAULT 0,",
                                           "active INTEGER NOT NULL DEFAULT 0,\n    mentions TEXT,"),
        "CREATE INDEX sentences_active ON sentences (active) WHERE active = 1",
        FTS_TABLE_SQL,
        DOCUMENT_FTS_TABLE_SQL,
    ],
}
OLD_LAYOUT["before-mentions"] = [_SENTENCES_BEFORE_MENTIONS if s.startswith("CREATE TABLE sentences") else s
                                 for s in OLD_LAYOUT["before-sources"]]


def write_old_directory(data_dir: Path, layout: str, items: list[Stored]) -> None:
    """A data directory in an old layout holding ``items`` (the last version of each
    document current), written as the store of that time wrote it: rows, the vectors in
    SQLite, the FTS entries of live versions; no FAISS file (the store rebuilds it)."""
    data_dir.mkdir(parents=True)
    with closing(sqlite3.connect(data_dir / "citeqa.sqlite3")) as conn, conn:
        conn.execute("PRAGMA journal_mode = WAL")  # as every store has left its database
        for statement in OLD_LAYOUT[layout]:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('dimension', ?)", (str(DIMENSION),))
        current = {item.doc.doc_id: item.doc.version for item in items}
        for item in items:
            doc, live = item.doc, current[item.doc.doc_id] == item.doc.version
            version_id = conn.execute(
                "INSERT INTO versions (doc_id, version, title, text, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (doc.doc_id, doc.version, doc.title, doc.text, "{}", time.time())).lastrowid
            for s, v in zip(item.sentences, item.vectors, strict=True):
                sentence_id = conn.execute(
                    "INSERT INTO sentences (version_id, idx, start_char, end_char, text, vector, active) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (version_id, s.index, s.start, s.end, s.text, np.asarray(v, np.float32).tobytes(), int(live)),
                ).lastrowid
                if live:
                    conn.execute("INSERT INTO sentence_fts (rowid, text) VALUES (?, ?)", (sentence_id, s.text))
            if live:
                conn.execute("INSERT INTO document_fts (rowid, title, text) VALUES (?, ?, ?)",
                             (version_id, doc.title, doc.text))
                conn.execute("INSERT INTO documents VALUES (?, ?, 0, ?) ON CONFLICT (doc_id) DO UPDATE SET "
                             "current_version = excluded.current_version", (doc.doc_id, doc.version, time.time()))


def columns(data_dir: Path, table: str) -> set[str]:
    with closing(sqlite3.connect(data_dir / "citeqa.sqlite3")) as conn:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


@pytest.mark.parametrize("layout", sorted(OLD_LAYOUT))
def test_a_data_directory_from_before_sources_opens_and_reads(tmp_path, layout):
    data_dir = tmp_path / "data"
    v1, v2, other = build("doc", V1_TEXT), build("doc", V2_TEXT), build("other", OTHER_TEXT)
    write_old_directory(data_dir, layout, [v1, v2, other])
    assert "source" not in columns(data_dir, "versions")

    store = EmbeddedStore(data_dir, DIMENSION)
    try:
        assert {"source"} <= columns(data_dir, "versions") and {"mentions"} <= columns(data_dir, "sentences")
        current = store.document("doc")
        assert current is not None and current.version == v2.doc.version and current.text == V2_TEXT
        assert current.source is None and store.document("other").source is None
        old = store.document("doc", v1.doc.version)
        assert old is not None and old.text == V1_TEXT and not old.current and old.source is None
        for item in (v1, v2, other):
            assert store.original(item.doc.doc_id, item.doc.version) is None
            assert [s.text for s in store.sentences(item.doc.doc_id, item.doc.version)] == \
                [s.text for s in item.sentences]
        assert texts(store.dense_search(vector(WHALES), 1)) == [WHALES]
        assert texts(store.lexical_search("whales harbour", 1)) == [WHALES]
        assert store.lexical_search("storms battered", 5) == []  # v1 is not the current version
        assert store.list_documents(10, 0).total == 2

        # A version with a file goes in beside the old ones, and comes back after a reopen.
        source = source_of(ORIGINAL, pages=((0, 17), (17, len(V1_TEXT))))
        v3 = build("doc", V1_TEXT, source=source, original=ORIGINAL)
        assert store.put(v3.doc, v3.sentences, v3.vectors) is True
    finally:
        store.close()
    again = EmbeddedStore(data_dir, DIMENSION)
    try:
        assert again.document("doc").source == source
        assert again.original("doc", v3.doc.version) == ORIGINAL
        assert again.document("doc", v2.doc.version).source is None
        assert texts(again.dense_search(vector(STORM), 1)) == [STORM]
    finally:
        again.close()


def test_stores_opening_an_old_directory_at_once_all_open(tmp_path):
    """Several stores (a server and `citeqa ingest`, say) open one old directory together:
    each column is added once, and none of them fails on it (checking and adding outside a
    write transaction failed this with "duplicate column name" in ~1 run of 2). The
    document has no sentences: the stores then have no FAISS file to build and save, so
    the migration is all they race on."""
    data_dir = tmp_path / "data"
    item = build("empty", "   ")
    write_old_directory(data_dir, "before-mentions", [item])
    stores = run_at_once([lambda: EmbeddedStore(data_dir, DIMENSION)] * 6)
    try:
        assert all(s.document("empty").source is None for s in stores)
        assert all(s.original("empty", item.doc.version) is None for s in stores)
    finally:
        for store in stores:
            store.close()


def test_a_postgres_database_from_before_sources_opens_and_reads(database_url):
    """A database as citeqa wrote it before sources: no source column, no originals table."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed: pip install 'psycopg[binary]'")
    pytest.importorskip("pgvector.psycopg", reason="the pgvector adapter is not installed: pip install pgvector")
    from citeqa.index.postgres_store import PostgresStore

    v1, v2 = build("doc", V1_TEXT), build("doc", V2_TEXT)
    store = PostgresStore(database_url, DIMENSION)
    try:
        for item in (v1, v2):
            store.put(item.doc, item.sentences, item.vectors)
    finally:
        store.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE citeqa_versions DROP COLUMN source")
        conn.execute("DROP TABLE citeqa_originals")
    store = PostgresStore(database_url, DIMENSION)
    try:
        assert store.document("doc").version == v2.doc.version and store.document("doc").source is None
        assert store.document("doc", v1.doc.version).source is None
        assert store.original("doc", v1.doc.version) is None
        assert texts(store.dense_search(vector(WHALES), 1)) == [WHALES]
        v3 = build("doc", OTHER_TEXT, source=source_of(ORIGINAL), original=ORIGINAL)
        store.put(v3.doc, v3.sentences, v3.vectors)
        assert store.document("doc").source == source_of(ORIGINAL)
        assert store.original("doc", v3.doc.version) == ORIGINAL
    finally:
        store.close()
