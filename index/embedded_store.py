"""The embedded Store: SQLite (documents, versions, sentences, vectors) + FAISS + Tantivy.

SQLite is the source of truth and every write is one transaction, committed before the
caller acknowledges it. Sentence vectors are stored in SQLite too, so the FAISS index is
a rebuildable cache: on open it is reconciled with the database (missing ids added from
the stored vectors, orphans dropped), which is what makes a SIGKILL at any moment safe.
The Tantivy BM25 indexes (index/tantivy_lexical.py) are a cache too, following a log of
changed versions that each write transaction appends to.
Readers borrow connections from a bounded pool (WAL), so searches go on while a writer
ingests, and no more than ``max_connections`` of them are ever open.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from citeqa.index import rows
from citeqa.index.faiss_index import VectorIndex
from citeqa.index.lexical import OLD_FTS_TABLES
from citeqa.index.scope import (
    DEFAULT_COLLECTION,
    DEFAULT_SCOPE,
    Condition,
    Scope,
    check_collection,
    key_prefix,
    split_key,
    storage_key,
)
from citeqa.index.sql_reads import ReadStatements, SqlReads
from citeqa.index.sqlite_wal import switch_to_wal
from citeqa.index.tantivy_lexical import COMMIT_WAIT_S, Changes, LexicalIndex, query_terms
from citeqa.index.thread_connections import DEFAULT_MAX_OPEN, ConnectionPool
from citeqa.index.types import Document, Mention, Scored, Sentence
from citeqa.index.vector_checks import Batch, CheckedWrites, check_stored_dimension

log = logging.getLogger(__name__)

# Saving FAISS after writes costs time in proportion to its size (~1.8 GB, seconds, at 1M
# sentences). Writes save at most once per this many times the last save took, so saving
# stays under ~1/SAVE_COST_FACTOR of ingest time however large the index grows. FAISS is
# a cache of SQLite: what a crash loses is re-added from SQLite on the next open.
SAVE_COST_FACTOR = 10.0

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS documents (
        doc_id TEXT PRIMARY KEY,
        current_version TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS versions (
        id INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL,
        version TEXT NOT NULL,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        metadata TEXT NOT NULL,
        created_at REAL NOT NULL,
        source TEXT,
        UNIQUE (doc_id, version))""",
    # The files versions were extracted from, once per content (versions.source names one
    # by its sha256): re-ingesting a file, or the same file under another doc_id, adds no copy.
    "CREATE TABLE IF NOT EXISTS originals (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL)",
    # id is the FAISS id; active marks the sentences of live current versions (the searchable ones).
    """CREATE TABLE IF NOT EXISTS sentences (
        id INTEGER PRIMARY KEY,
        version_id INTEGER NOT NULL REFERENCES versions (id),
        idx INTEGER NOT NULL,
        start_char INTEGER NOT NULL,
        end_char INTEGER NOT NULL,
        text TEXT NOT NULL,
        vector BLOB NOT NULL,
        active INTEGER NOT NULL DEFAULT 0,
        mentions TEXT,
        UNIQUE (version_id, idx))""",
    "CREATE INDEX IF NOT EXISTS sentences_active ON sentences (active) WHERE active = 1",
    # Collections by name (index/scope.py); documents are filed under storage keys that
    # name their collection, so this table only records which exist and since when.
    "CREATE TABLE IF NOT EXISTS collections (name TEXT PRIMARY KEY, created_at REAL NOT NULL)",
    # The versions each write switched on or off, in commit order: what the Tantivy indexes
    # (a cache) still have to apply past their mark. AUTOINCREMENT: a sequence is never
    # reused, even once applied entries are deleted.
    "CREATE TABLE IF NOT EXISTS lexical_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL)",
]
_LOG_VERSION = "INSERT INTO lexical_log (version_id) VALUES (?)"
# Applied entries are deleted (in a write transaction that happens anyway) once this many piled up.
_PRUNE_AFTER = 10_000
# After the migrations (the column may be new): the sentences still to analyse, found
# without a scan; empty once the backfill is done.
_UNANALYSED_INDEX = "CREATE INDEX IF NOT EXISTS sentences_unanalysed ON sentences (id) WHERE mentions IS NULL"

# The columns rows.sentence reads. mentions: JSON text, NULL when not analysed.
_SENTENCE_COLUMNS = "s.id, v.doc_id, v.version, s.idx, s.start_char, s.end_char, s.text, s.mentions"
# A document row is these, whether it is current, then v.source (JSON text, NULL for a
# version without a source file); never the original's bytes (document() is on the ask path).
_DOCUMENT_COLUMNS = "v.doc_id, v.version, v.title, v.text, v.metadata, v.created_at"
# The same without the text (document_info: what anchors and passage titles read).
_DOCUMENT_INFO_COLUMNS = "v.doc_id, v.version, v.title, '', v.metadata, v.created_at"
_CURRENT = "JOIN versions v ON v.doc_id = d.doc_id AND v.version = d.current_version"

_INSERT_VERSION = (
    "INSERT INTO versions (doc_id, version, title, text, metadata, created_at, source) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (doc_id, version) DO NOTHING"
)
_INSERT_ORIGINAL = "INSERT INTO originals (sha256, data) VALUES (?, ?) ON CONFLICT (sha256) DO NOTHING"
# Columns added since the first data directories were written: (table, column, type).
# Added NULL in every existing row: a sentence not analysed yet, a version without a source.
_ADDED_COLUMNS = [("sentences", "mentions", "TEXT"), ("versions", "source", "TEXT")]

# A storage key (index/scope.py) of the collection whose key_prefix is :prefix ("" for
# default: the keys without a separator).
_IN_COLLECTION = ("(CASE WHEN :prefix = '' THEN instr({key}, char(31)) = 0 "
                  "ELSE substr({key}, 1, length(:prefix)) = :prefix END)")
_INSERT_COLLECTION = "INSERT INTO collections (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
# A filtered search first takes this many times k from the unfiltered index and keeps
# those in scope; only when that leaves fewer than k (a narrow filter) does it search
# the scope's own sentences: exactly (dense) or through a join (lexical).
POST_FILTER_FACTOR = 8
_SCOPES_KEPT = 32  # scopes whose sentence keys are kept between searches

# (doc_id, idx) names one sentence among the active ones. Walk the wanted pairs through
# the unique indexes; "+" keeps the planner off the partial index on active, which would
# scan every searchable row.
def _searchable_pairs(columns: str) -> str:
    """``columns`` of the searchable sentences named by the pairs of :doc_ids and :indexes."""
    return ("WITH wanted(doc_id, idx) AS ("
            " SELECT d.value, json_extract(:indexes, '$[' || d.key || ']') FROM json_each(:doc_ids) AS d) "
            f"SELECT {columns} FROM wanted w JOIN versions v ON v.doc_id = w.doc_id "
            "JOIN sentences s ON s.version_id = v.id AND s.idx = w.idx WHERE +s.active = 1")


_READS = ReadStatements(
    document=(
        f"SELECT {_DOCUMENT_COLUMNS}, 1, v.source FROM documents d {_CURRENT} "
        "WHERE d.doc_id = :doc_id AND d.deleted = 0"
    ),
    document_version=(
        f"SELECT {_DOCUMENT_COLUMNS}, v.version = d.current_version AND d.deleted = 0, v.source FROM versions v "
        "JOIN documents d ON d.doc_id = v.doc_id WHERE v.doc_id = :doc_id AND v.version = :version"
    ),
    document_info=(
        f"SELECT {_DOCUMENT_INFO_COLUMNS}, v.version = d.current_version AND d.deleted = 0, v.source FROM versions v "
        "JOIN documents d ON d.doc_id = v.doc_id WHERE v.doc_id = :doc_id AND v.version = :version"
    ),
    original=(
        "SELECT o.data FROM versions v JOIN originals o ON o.sha256 = json_extract(v.source, '$.sha256') "
        "WHERE v.doc_id = :doc_id AND v.version = :version"
    ),
    sentences=(
        f"SELECT {_SENTENCE_COLUMNS} FROM sentences s JOIN versions v ON v.id = s.version_id "
        "WHERE v.doc_id = :doc_id AND v.version = :version ORDER BY s.idx"
    ),
    live_count=f"SELECT count(*) FROM documents d WHERE d.deleted = 0 AND {_IN_COLLECTION.format(key='d.doc_id')}",
    listing=(
        f"SELECT d.doc_id, d.current_version, v.title, v.metadata, v.created_at FROM documents d {_CURRENT} "
        f"WHERE d.deleted = 0 AND {_IN_COLLECTION.format(key='d.doc_id')} "
        "ORDER BY d.doc_id LIMIT coalesce(:limit, -1) OFFSET :offset"
    ),
    vectors_by_text=(
        "SELECT s.text, s.vector FROM sentences s JOIN versions v ON v.id = s.version_id "
        "WHERE v.doc_id = :doc_id AND v.title = :title"
    ),
    sentence_count="SELECT count(*) FROM sentences WHERE active = 1",
    flag="SELECT value FROM meta WHERE key = :key",
    # Walk documents -> current version -> its sentences (unary + keeps the planner off
    # the partial index on active, which would scan every searchable sentence).
    current_sentences=(
        f"SELECT {_SENTENCE_COLUMNS} FROM documents d {_CURRENT} JOIN sentences s ON s.version_id = v.id "
        "WHERE d.doc_id IN (SELECT value FROM json_each(:doc_ids)) AND d.deleted = 0 AND +s.active = 1 "
        "ORDER BY v.doc_id, s.idx"
    ),
    searchable_vectors=_searchable_pairs("v.doc_id, s.idx, s.vector"),
    # The neighbours' texts a ranker reads: four columns, no mentions to decode.
    searchable_texts=_searchable_pairs("v.doc_id, v.version, s.idx, s.text"),
    unanalysed=(
        f"SELECT {_SENTENCE_COLUMNS} FROM sentences s JOIN versions v ON v.id = s.version_id "
        "WHERE s.mentions IS NULL AND s.id > :after ORDER BY s.id LIMIT :limit"
    ),
    collections="SELECT name, created_at FROM collections ORDER BY name",
    has_collection="SELECT 1 FROM collections WHERE name = :name",
    live_keys="SELECT doc_id FROM documents WHERE deleted = 0",
)


@dataclass
class _Changes:
    """The FAISS ids a write transaction activated and deactivated."""

    added: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)

    def switch(self, activated: np.ndarray, deactivated: np.ndarray) -> None:
        gone = set(deactivated.tolist())
        # The same document twice in one batch: its first version's ids never reach FAISS.
        self.added = (self.added - gone) | set(activated.tolist())
        self.removed |= gone


def _scope_sql(scope: Scope) -> tuple[str, dict[str, Any]]:
    """A WHERE condition on a version ``v`` (its storage key and metadata) that holds for
    the versions of documents in ``scope``, and its named parameters. Conditions mean what
    ``Condition.admits`` says: json_type keeps numbers, text, booleans and null apart."""
    parts = [_IN_COLLECTION.format(key="v.doc_id")]
    params: dict[str, Any] = {"prefix": key_prefix(scope.collection)}
    if scope.doc_ids is not None:
        parts.append("v.doc_id IN (SELECT value FROM json_each(:scope_keys))")
        params["scope_keys"] = json.dumps(scope.storage_keys)
    for i, c in enumerate(scope.conditions):
        parts.append(_condition_sql(c, f"c{i}", params))
    return " AND ".join(parts), params


def _condition_sql(c: Condition, name: str, params: dict[str, Any]) -> str:
    params[name] = '$."' + c.key + '"'  # keys hold no quote or backslash (index/scope.py)
    kind, value = f"json_type(v.metadata, :{name})", f"json_extract(v.metadata, :{name})"
    if c.one_of:
        tests = []
        for j, wanted in enumerate(c.one_of):
            if isinstance(wanted, bool) or wanted is None:
                tests.append(f"{kind} = '{'null' if wanted is None else str(wanted).lower()}'")
                continue
            params[f"{name}_{j}"] = wanted
            kinds = "('text')" if isinstance(wanted, str) else "('integer', 'real')"
            tests.append(f"({kind} IN {kinds} AND {value} = :{name}_{j})")
        return "(" + " OR ".join(tests) + ")"
    operators = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    tests = [f"{kind} IN ('integer', 'real')" if c.numeric else f"{kind} = 'text'"]
    for op, bound in c.bounds.items():
        params[f"{name}_{op}"] = bound
        tests.append(f"{value} {operators[op]} :{name}_{op}")
    return "(" + " AND ".join(tests) + ")"


class EmbeddedStore(CheckedWrites, SqlReads):
    """A :class:`citeqa.index.types.Store` in one data directory: ``citeqa.sqlite3`` + ``vectors.faiss``."""

    _reads = _READS

    def __init__(self, data_dir: Path, dimension: int, save_interval_s: float = 5.0,
                 max_connections: int = DEFAULT_MAX_OPEN):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / "citeqa.sqlite3"
        self.faiss_path = self.data_dir / "vectors.faiss"
        self.dimension = dimension
        self._save_interval_s = save_interval_s
        self._last_save = time.monotonic()
        self._save_cost = 0.0  # seconds the last save took
        self._dirty = False
        # Readers borrow a connection per call (at most max_connections open); the writer
        # and the watch below are the store's own, two more.
        self.pool = ConnectionPool(self._connect, max_open=max_connections)
        self._write_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        # collection -> (data_version, whether it holds every live document): see _whole.
        self._alone: dict[str, tuple[int, bool]] = {}
        # scope -> (data_version, keys of its searchable sentences): see _ids_in_scope.
        self._scope_ids: dict[Scope, tuple[int, np.ndarray]] = {}
        self._scope_lock = threading.Lock()
        # scope -> (data_version, storage keys of its live documents): see _keys_in_scope.
        # Keyed by repr: scopes on 1 and on True are equal (and hash alike) in Python.
        self._scope_keys: dict[str, tuple[int, list[str]]] = {}
        self._live_count: tuple[int, int] = (-1, 0)
        self._writer = self._connect()
        # Another process (say `citeqa ingest` beside a running server) may write to the same
        # database; data_version tells us, and the next search reconciles FAISS with it.
        self._watch = self._connect()
        try:
            for statement in _SCHEMA:
                self._writer.execute(statement)
            self._add_missing_columns()
            self._add_default_collection()
            self._writer.execute(_UNANALYSED_INDEX)
            self._check_dimension()
            self._drop_old_fts()
            self._lexical_seen: tuple[int, int] = (-1, 0)  # (data_version, log mark) last read
            self._pruned = self.lexical_pruned()
            self.lexical = LexicalIndex(self.data_dir / "lexical", self._lexical_epoch(), self)
            self._seen_version = self._data_version()
            # Switching to HNSW or compacting it takes minutes at a million vectors: done off
            # the lock, so searches and writes go on meanwhile.
            self.vectors = VectorIndex.load(self.faiss_path, dimension, rebuild_in_background=True,
                                            on_rebuilt=self._save_rebuilt)
            self.reconcile()
        except BaseException:
            if hasattr(self, "vectors"):
                self.vectors.stop_rebuild()
            if hasattr(self, "lexical"):
                self.lexical.close()
            self._close_connections()  # a store that did not open leaves no connection behind
            raise

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False, timeout=30)
        switch_to_wal(conn)
        # FULL: a commit is on disk before we acknowledge it, even across a power cut.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _data_version(self) -> int:
        return int(self._watch.execute("PRAGMA data_version").fetchone()[0])

    def _check_dimension(self) -> None:
        row = self._writer.execute("SELECT value FROM meta WHERE key = 'dimension'").fetchone()
        if row is None:
            self._writer.execute("INSERT INTO meta VALUES ('dimension', ?)", (str(self.dimension),))
        else:
            check_stored_dimension(row[0], self.dimension, str(self.db_path), "data directory")

    def _add_missing_columns(self) -> None:
        """Data directories made before a column existed get it, NULL in every row (adding a
        nullable column rewrites nothing): they open at once. Sentences without mentions
        are analysed in the background by a running service (index/mention_backfill.py);
        versions without a source read back with none. Checked and added in one write
        transaction, so two processes opening an old directory at once add each column once."""
        def missing(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
            return [(table, column, kind) for table, column, kind in _ADDED_COLUMNS
                    if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}]

        if not missing(self._writer):
            return  # the usual open: no write lock taken
        with self._transaction() as conn:
            for table, column, kind in missing(conn):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _add_default_collection(self) -> None:
        """``default`` always exists; data directories from before collections get it here."""
        if self._writer.execute(self._reads.has_collection, {"name": DEFAULT_COLLECTION}).fetchone() is None:
            with self._transaction() as conn:
                conn.execute(_INSERT_COLLECTION, (DEFAULT_COLLECTION, time.time()))

    def _drop_old_fts(self) -> None:
        """Data directories from before Tantivy hold FTS5 tables nothing reads any more:
        dropped once (their Tantivy indexes are built from the sentences on open)."""
        marks = ",".join("?" * len(OLD_FTS_TABLES))
        if self._writer.execute(f"SELECT 1 FROM sqlite_master WHERE name IN ({marks})", OLD_FTS_TABLES).fetchone():
            with self._transaction() as conn:
                for table in OLD_FTS_TABLES:
                    conn.execute(f"DROP TABLE IF EXISTS {table}")

    def _lexical_epoch(self) -> str:
        """This database's identity: a lexical index made for another one is rebuilt."""
        row = self._writer.execute("SELECT value FROM meta WHERE key = 'lexical_epoch'").fetchone()
        if row is not None:
            return str(row[0])
        with self._transaction() as conn:
            conn.execute("INSERT INTO meta VALUES ('lexical_epoch', ?) ON CONFLICT (key) DO NOTHING",
                         (uuid.uuid4().hex,))
            return str(conn.execute("SELECT value FROM meta WHERE key = 'lexical_epoch'").fetchone()[0])

    # -- LexicalSource (index/tantivy_lexical.py reads the log through these) --------------

    def lexical_mark(self) -> int:
        row = self._fetch("SELECT seq FROM sqlite_sequence WHERE name = 'lexical_log'")
        return int(row[0][0]) if row else 0

    def lexical_pruned(self) -> int:
        row = self._fetch("SELECT value FROM meta WHERE key = 'lexical_pruned'")
        return int(row[0][0]) if row else 0

    def lexical_changes(self, after: int | None) -> Changes:
        live = ("FROM documents d JOIN versions v ON v.doc_id = d.doc_id AND v.version = d.current_version "
                "AND d.deleted = 0")
        with self.pool.connection() as conn:
            conn.execute("BEGIN")  # one snapshot: the rows are those of the mark read with them
            try:
                row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'lexical_log'").fetchone()
                mark = int(row[0]) if row else 0
                if after is None:
                    versions = None
                    chosen = ""
                    params: dict[str, Any] = {}
                else:
                    versions = [r[0] for r in conn.execute(
                        "SELECT DISTINCT version_id FROM lexical_log WHERE seq > ? AND seq <= ?", (after, mark))]
                    chosen = " AND v.id IN (SELECT value FROM json_each(:versions))"
                    params = {"versions": json.dumps(versions)}
                # "+": walk the chosen versions to their sentences, not the partial index on active.
                sentences = conn.execute(f"SELECT s.id, v.id, v.doc_id, s.text {live} "
                                         f"JOIN sentences s ON s.version_id = v.id WHERE +s.active = 1{chosen}",
                                         params).fetchall()
                documents = conn.execute(f"SELECT v.id, v.doc_id, v.title, v.text {live} WHERE 1{chosen}",
                                         params).fetchall()
            finally:
                conn.execute("COMMIT")
        return Changes(mark, versions, sentences, documents)

    # -- FAISS <-> SQLite ----------------------------------------------------------------

    def reconcile(self) -> tuple[int, int]:
        """Make FAISS hold exactly the active sentences; returns (added, removed)."""
        with self._sync_lock:
            version = self._data_version()
            active = np.array([r[0] for r in self._fetch("SELECT id FROM sentences WHERE active = 1")], dtype=np.int64)
            present = self.vectors.ids()
            missing = np.setdiff1d(active, present, assume_unique=True)
            orphans = np.setdiff1d(present, active, assume_unique=True)
            self.vectors.remove(orphans)
            for chunk in np.array_split(missing, max(1, len(missing) // 5000 + 1)):
                self.vectors.add(chunk, self._stored_vectors(chunk))
            self._seen_version = version
            if len(missing) or len(orphans):
                log.info("reconciled vector index: %d added, %d removed", len(missing), len(orphans))
                self._dirty = True
                self.save()
            return len(missing), len(orphans)

    def _stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        blobs = dict(self._fetch(
            f"SELECT id, vector FROM sentences WHERE id IN ({','.join('?' * len(ids))})", [int(i) for i in ids]
        ))
        return np.stack([np.frombuffer(blobs[int(i)], dtype=np.float32) for i in ids])

    def _save_rebuilt(self) -> None:
        """A background rebuild (flat -> HNSW, or a compaction) was swapped in: save it now.
        Left to the next periodic save, a store closed before one came (a restart soon after
        the switch) saved the old flat file, and every open rebuilt the graph again (minutes
        at 1M) while its searches ran exact over all the vectors."""
        with self._sync_lock:
            self._dirty = True
            self.save()

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until no background work on the vector index is running (a type switch or a
        compaction, saved when it ends); False if ``timeout`` passed first. For benchmarks
        and tools that want the store as a long-running service holds it."""
        return self.vectors.wait_for_rebuild(timeout)

    def _sync_if_changed_elsewhere(self) -> None:
        if self._data_version() != self._seen_version:
            self.reconcile()

    def save(self) -> None:
        """Write the FAISS file atomically if it changed since the last save."""
        if self._dirty:
            self._dirty = False
            started = time.monotonic()
            self.vectors.save(self.faiss_path)
            self._last_save = time.monotonic()
            self._save_cost = self._last_save - started

    def _quiet_mark(self) -> int | None:
        """Call inside a write transaction (no other connection can commit then): the writer
        connection's data_version if FAISS has seen every other connection's commit, else None."""
        if self._data_version() != self._seen_version:
            return None
        return int(self._writer.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def _transaction(self, changes: "_Changes | None" = None) -> Iterator[sqlite3.Connection]:
        """One write transaction under the write lock, committed or rolled back. With
        ``changes`` (the ids the caller activated and deactivated), FAISS follows the commit."""
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                quiet = self._quiet_mark() if changes is not None else None
                if changes is not None:
                    self._prune_lexical_log(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if changes is not None:
                self.lexical.changed()
                self._after_write(changes, quiet)

    def _prune_lexical_log(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: delete the log entries the lexical index applied,
        once enough piled up (the index's mark never goes back, so none is needed again)."""
        applied = self.lexical.applied
        if applied - self._pruned >= _PRUNE_AFTER:
            conn.execute("DELETE FROM lexical_log WHERE seq <= ?", (applied,))
            conn.execute("INSERT INTO meta VALUES ('lexical_pruned', ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(applied),))
            self._pruned = applied

    def _after_write(self, changes: "_Changes", quiet: int | None) -> None:
        added = np.array(sorted(changes.added), dtype=np.int64)
        with self._sync_lock:
            self.vectors.remove(np.array(sorted(changes.removed), dtype=np.int64))
            # A search in another thread may already have reconciled this commit (it saw
            # data_version move before we took the lock); adding those ids again would
            # put duplicates in FAISS, and dense_search would return a sentence twice.
            fresh = ~np.isin(added, self.vectors.ids())
            added = added[fresh]
            if len(added):
                self.vectors.add(added, self._stored_vectors(added))
            # Our own commit bumps data_version too; FAISS already reflects it. Commits of
            # other connections (before our write, or right after our COMMIT: the writer's
            # own data_version moves only for those) do not: then the next search reconciles.
            version = self._data_version()
            if quiet is not None and int(self._writer.execute("PRAGMA data_version").fetchone()[0]) == quiet:
                self._seen_version = version
            if not (len(added) or changes.removed):
                return  # FAISS is as it was (say, only mentions were written): nothing to save
            self._dirty = True
            if time.monotonic() - self._last_save >= max(self._save_interval_s, SAVE_COST_FACTOR * self._save_cost):
                self.save()

    # -- writes (CheckedWrites calls _write) ---------------------------------------------

    def _write(self, items: Batch) -> list[bool]:
        """One transaction (one fsync) for the batch, originals included; FAISS follows the commit."""
        originals = rows.originals(items)  # checked before anything is written
        changes = _Changes()
        created = []
        with self._transaction(changes) as conn:
            conn.executemany(_INSERT_ORIGINAL, originals.items())
            conn.executemany(_INSERT_COLLECTION, [(name, time.time()) for name in {d.collection for d, _, _ in items}])
            for doc, sentences, vectors in items:
                created.append(self._insert_version(conn, doc, sentences, vectors))
                changes.switch(*self._switch_current(conn, storage_key(doc.collection, doc.doc_id), doc.version))
        return created

    def _insert_version(self, conn: sqlite3.Connection, doc: Document, sentences: Sequence[Sentence],
                        vectors: np.ndarray) -> bool:
        """Store a version and its sentences; False if it was stored already."""
        cur = conn.execute(_INSERT_VERSION, rows.version_row(doc))
        # rowcount 0: a concurrent writer stored this very version first; just make it current.
        if cur.rowcount:
            conn.executemany(
                "INSERT INTO sentences (version_id, idx, start_char, end_char, text, vector, mentions) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (cur.lastrowid, s.index, s.start, s.end, s.text, np.asarray(v, dtype=np.float32).tobytes(),
                     rows.stored_mentions(s))
                    for s, v in zip(sentences, vectors, strict=True)
                ],
            )
        return bool(cur.rowcount)

    def make_current(self, doc_id: str, version: str, collection: str = DEFAULT_COLLECTION) -> None:
        changes = _Changes()
        with self._transaction(changes) as conn:
            changes.switch(*self._switch_current(conn, storage_key(collection, doc_id), version))
            # Reviving a document of a deleted collection brings the collection back: a live
            # document never sits in a collection that is not listed.
            conn.execute(_INSERT_COLLECTION, (collection, time.time()))

    def _switch_current(self, conn: sqlite3.Connection, doc_id: str, version: str) -> tuple[np.ndarray, np.ndarray]:
        """Inside a transaction: make ``version`` of the document filed under ``doc_id`` (a
        storage key) the live one; returns (activated, deactivated) ids."""
        removed = self._deactivate(conn, doc_id)
        row = conn.execute("SELECT id FROM versions WHERE doc_id = ? AND version = ?", (doc_id, version)).fetchone()
        if row is None:
            raise KeyError(f"{doc_id}@{version}")
        conn.execute(
            "INSERT INTO documents (doc_id, current_version, deleted, updated_at) VALUES (?, ?, 0, ?) "
            "ON CONFLICT (doc_id) DO UPDATE SET current_version = excluded.current_version, "
            "deleted = 0, updated_at = excluded.updated_at",
            (doc_id, version, time.time()),
        )
        conn.execute("UPDATE sentences SET active = 1 WHERE version_id = ?", (row[0],))
        conn.execute(_LOG_VERSION, (row[0],))
        added = [r[0] for r in conn.execute("SELECT id FROM sentences WHERE version_id = ?", (row[0],))]
        return np.array(added, dtype=np.int64), removed

    def _deactivate(self, conn: sqlite3.Connection, doc_id: str) -> np.ndarray:
        # The version searchable until now (if any) leaves the lexical index.
        conn.execute("INSERT INTO lexical_log (version_id) SELECT v.id FROM documents d JOIN versions v "
                     "ON v.doc_id = d.doc_id AND v.version = d.current_version WHERE d.doc_id = ?",
                     (doc_id,))
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT s.id FROM sentences s JOIN versions v ON v.id = s.version_id "
                "WHERE v.doc_id = ? AND +s.active = 1",  # + : walk this document, not every active row
                (doc_id,),
            )
        ]
        if ids:
            marks = ",".join("?" * len(ids))
            conn.execute(f"UPDATE sentences SET active = 0 WHERE id IN ({marks})", ids)
        return np.array(ids, dtype=np.int64)

    def delete(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> bool:
        changes = _Changes()
        with self._transaction(changes) as conn:
            deleted = self._delete(conn, storage_key(collection, doc_id), changes)
        return deleted

    def _delete(self, conn: sqlite3.Connection, key: str, changes: _Changes) -> bool:
        cur = conn.execute("UPDATE documents SET deleted = 1, updated_at = ? WHERE doc_id = ? AND deleted = 0",
                           (time.time(), key))
        if cur.rowcount:
            changes.switch(np.zeros(0, dtype=np.int64), self._deactivate(conn, key))
        return bool(cur.rowcount)

    # -- collections ---------------------------------------------------------------------

    def create_collection(self, name: str) -> bool:
        check_collection(name)
        with self._transaction() as conn:
            return bool(conn.execute(_INSERT_COLLECTION, (name, time.time())).rowcount)

    def delete_collection(self, name: str) -> int:
        changes = _Changes()
        with self._transaction(changes) as conn:
            if conn.execute(self._reads.has_collection, {"name": name}).fetchone() is None:
                raise KeyError(name)
            keys = [r[0] for r in conn.execute(
                f"SELECT doc_id FROM documents d WHERE deleted = 0 AND {_IN_COLLECTION.format(key='d.doc_id')}",
                {"prefix": key_prefix(name)})]
            for key in keys:
                self._delete(conn, key, changes)
            if name != DEFAULT_COLLECTION:
                conn.execute("DELETE FROM collections WHERE name = ?", (name,))
        return len(keys)

    def store_mentions(self, found: Sequence[tuple[Sentence, Sequence[Mention]]]) -> None:
        """Record the mentions of sentences stored without them (by their keys), one
        transaction. Searchable rows do not change, so FAISS is left as it is."""
        with self._transaction(_Changes()) as conn:
            conn.executemany(
                "UPDATE sentences SET mentions = ? WHERE id = ? AND mentions IS NULL",
                [(rows.mentions_value(m), s.key) for s, m in found],
            )

    def set_flag(self, key: str, value: str) -> None:
        with self._write_lock:
            self._writer.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- reads: documents (SqlReads runs _READS) -----------------------------------------

    def _fetch(self, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()) -> list[Any]:
        """Every row of one statement, on a connection borrowed for just that."""
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _vector(self, stored: Any) -> np.ndarray:
        return np.frombuffer(stored, dtype=np.float32)

    def _list(self, values: list[Any]) -> str:
        return json.dumps(values)  # SQLite has no array parameters; statements read it with json_each

    def _active_sentences(self, ids: Iterable[int]) -> dict[int, Sentence]:
        ids = list(ids)
        if not ids:
            return {}
        found = self._fetch(
            f"SELECT {_SENTENCE_COLUMNS} FROM sentences s JOIN versions v ON v.id = s.version_id "
            f"WHERE s.active = 1 AND s.id IN ({','.join('?' * len(ids))})",
            ids,
        )
        return {r[0]: rows.sentence(r) for r in found}

    # -- scopes: what a search may return ------------------------------------------------

    def _whole(self, scope: Scope) -> bool:
        """True when ``scope`` is every searchable sentence: no filter, and no live document
        in another collection (a store with one collection in use). Searches then run with
        no filtering at all, as before collections. Asked again once the database changed."""
        if scope.filtered:
            return False
        version = self._data_version()
        cached = self._alone.get(scope.collection)
        if cached is None or cached[0] != version:
            others = self._fetch(
                f"SELECT 1 FROM documents d WHERE d.deleted = 0 AND NOT {_IN_COLLECTION.format(key='d.doc_id')} "
                "LIMIT 1", {"prefix": key_prefix(scope.collection)})
            cached = self._alone[scope.collection] = (version, not others)
        return cached[1]

    def _sentences_in_scope(self, ids: Iterable[int], scope: Scope) -> dict[int, Sentence]:
        """The searchable sentences among ``ids`` that are in ``scope``, by key."""
        ids = list(ids)
        if not ids:
            return {}
        where, params = _scope_sql(scope)
        found = self._fetch(
            f"SELECT {_SENTENCE_COLUMNS} FROM sentences s JOIN versions v ON v.id = s.version_id "
            f"WHERE s.id IN (SELECT value FROM json_each(:ids)) AND s.active = 1 AND {where}",
            {**params, "ids": json.dumps(ids)})
        return {r[0]: rows.sentence(r) for r in found}

    def _ids_in_scope(self, scope: Scope) -> np.ndarray:
        """Keys of every searchable sentence in ``scope``, kept until the database changes
        (a customer's scope is asked again and again). CROSS JOIN walks the versions first,
        then their sentences through the unique index ("+": not the partial index on
        active): SQLite's own choice scanned every sentence, 875 ms at 100k against 46."""
        version = self._data_version()
        cached = self._scope_ids.get(scope)
        if cached is not None and cached[0] == version:
            return cached[1]
        where, params = _scope_sql(scope)
        found = self._fetch(f"SELECT s.id FROM versions v CROSS JOIN sentences s ON s.version_id = v.id "
                            f"WHERE {where} AND +s.active = 1", params)
        ids = np.array([r[0] for r in found], dtype=np.int64)
        with self._scope_lock:
            if len(self._scope_ids) >= _SCOPES_KEPT:
                self._scope_ids.pop(next(iter(self._scope_ids)))  # the oldest
            self._scope_ids[scope] = (version, ids)
        return ids

    def _known_narrow(self, scope: Scope) -> bool:
        """The scope's sentences are known (from an earlier search since the last change)
        and too few for the post-filter to find k among the nearest overall."""
        cached = self._scope_ids.get(scope)
        return (cached is not None and cached[0] == self._data_version()
                and len(cached[1]) * POST_FILTER_FACTOR <= len(self.vectors))

    def _kept(self, found: list[tuple[int, float]], scope: Scope) -> list[Scored]:
        by_id = self._sentences_in_scope((i for i, _ in found), scope)
        return [Scored(by_id[i], score) for i, score in found if i in by_id]

    # -- DenseIndex ----------------------------------------------------------------------

    def dense_search(self, vector: np.ndarray, k: int, scope: Scope = DEFAULT_SCOPE) -> list[Scored]:
        self._sync_if_changed_elsewhere()
        if k <= 0:
            return []
        if self._whole(scope):
            found = self.vectors.search(vector, k)
            # A sentence deactivated between the FAISS search and this read is skipped.
            by_id = self._active_sentences(i for i, _ in found)
            return [Scored(by_id[i], score) for i, score in found if i in by_id]
        # A wide filter: the nearest vectors overall hold k in scope. A narrow one: an
        # exact search among the scope's own vectors (k whenever the scope holds k).
        if not self._known_narrow(scope):
            n = k * POST_FILTER_FACTOR
            found = self.vectors.search(vector, n)
            kept = self._kept(found, scope)
            if len(kept) >= k or len(found) < n:
                return kept[:k]
        return self._kept(self.vectors.search_among(vector, k, self._ids_in_scope(scope)), scope)

    def dense_scores(self, vector: np.ndarray, sentences: Sequence[Sentence]) -> list[float]:
        if not sentences:
            return []
        query = np.asarray(vector, dtype=np.float32)
        if all(s.key >= 0 for s in sentences):
            stored = self.vectors.reconstruct([s.key for s in sentences])
            if stored is not None:  # else one was deactivated meanwhile: ask SQLite
                return [float(x) for x in stored @ query]
        return super().dense_scores(vector, sentences)

    # -- LexicalIndex --------------------------------------------------------------------

    def lexical_search(self, query: str, k: int, scope: Scope = DEFAULT_SCOPE) -> list[Scored]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        self._lexical_fresh()
        if self._whole(scope):
            found = self.lexical.search_sentences(terms, k)
            # A sentence deactivated since the index last applied the log is skipped.
            by_id = self._active_sentences(i for i, _ in found)
            return [Scored(by_id[i], score) for i, score in found if i in by_id]
        keys = self._keys_in_scope(scope)
        if keys is None or len(keys) * POST_FILTER_FACTOR > self._live_documents():
            # A wide scope: the best matches overall hold k in scope (the pruned search
            # stays pruned; a filter makes Tantivy score every match in scope).
            n = k * POST_FILTER_FACTOR
            found = self.lexical.search_sentences(terms, n)
            kept = self._kept(found, scope)
            if len(kept) >= k or len(found) < n:
                return kept[:k]
        # Narrow, or too few in scope among the best: search the scope's documents only.
        found = self.lexical.search_sentences(terms, k, keys, scope.collection)
        return self._kept(found, scope)

    def lexical_document_search(self, query: str, k: int, scope: Scope = DEFAULT_SCOPE) -> list[tuple[str, float]]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        self._lexical_fresh()
        whole = self._whole(scope)
        found = (self.lexical.search_documents(terms, k) if whole else
                 self.lexical.search_documents(terms, k, self._keys_in_scope(scope), scope.collection))
        if not found:
            return []
        # Only live current versions in scope: the index may still hold one replaced or
        # deleted since it last applied the log.
        where, params = _scope_sql(scope)
        keys = dict(self._fetch(
            "SELECT v.id, v.doc_id FROM versions v JOIN documents d ON d.doc_id = v.doc_id "
            "AND d.current_version = v.version AND d.deleted = 0 "
            f"WHERE v.id IN (SELECT value FROM json_each(:versions)) AND {where}",
            {**params, "versions": json.dumps([v for v, _ in found])}))
        return [(split_key(keys[v])[1], score) for v, score in found if v in keys]

    def _lexical_fresh(self) -> None:
        """Wait until the lexical index holds every write committed before this search
        (mostly at once: only a search right after a write waits for its Tantivy commit)."""
        version = self._data_version()
        if self._lexical_seen[0] != version:
            self._lexical_seen = (version, self.lexical_mark())
        if not self.lexical.wait_for(self._lexical_seen[1]):
            log.warning("lexical index behind the database after %.0fs; searching what it holds", COMMIT_WAIT_S)

    def _live_documents(self) -> int:
        version = self._data_version()
        if self._live_count[0] != version:
            self._live_count = (version, int(self._fetch("SELECT count(*) FROM documents WHERE deleted = 0")[0][0]))
        return self._live_count[1]

    def _keys_in_scope(self, scope: Scope) -> list[str] | None:
        """Storage keys of the live documents in a filtered ``scope``, kept until the
        database changes; None for a whole collection (the index filters that itself)."""
        if not scope.filtered:
            return None
        version = self._data_version()
        name = repr(scope)
        cached = self._scope_keys.get(name)
        if cached is not None and cached[0] == version:
            return cached[1]
        where, params = _scope_sql(scope)
        keys = [r[0] for r in self._fetch(
            f"SELECT v.doc_id FROM documents d {_CURRENT} WHERE d.deleted = 0 AND {where}", params)]
        with self._scope_lock:
            if len(self._scope_keys) >= _SCOPES_KEPT:
                self._scope_keys.pop(next(iter(self._scope_keys)))
            self._scope_keys[name] = (version, keys)
        return keys

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        # A background rebuild is abandoned (the next open starts it again), not left
        # running inside FAISS while the process exits.
        self.vectors.stop_rebuild()
        with self._sync_lock:
            self.save()
        self.lexical.close()
        self._close_connections()

    def _close_connections(self) -> None:
        self.pool.close()
        self._watch.close()
        # The last connection to close checkpoints the WAL into the database file.
        self._writer.close()
