"""Growing a bench-scale PostgreSQL store the fast way, to the same database put_many makes.

``Store.put_many`` keeps every index up to date row by row: at 1M sentences it stores ~290
sentences/s, ~93% of it inserting into the HNSW graph, so growing a store to 1M that way
takes over an hour. Here the same rows go in as PostgreSQL is loaded in bulk, in one
transaction:

1. the non-unique indexes of the sentence and version tables (the HNSW graph, the GIN
   indexes, the partial btrees) are dropped, their definitions kept as the server prints
   them (``pg_get_indexdef``); the unique ones stay, so a document stored before, or twice
   in the load, still fails (as a replacement it would need put_many's deactivation);
2. versions and sentences are written by the store's own ``_insert_versions`` (versions
   current and live, sentences active, one binary COPY per batch), after the store's own
   ``_enter_collections``, so every row holds what put_many would have written;
3. ``citeqa_terms`` gains the lexemes of the loaded rows in one ``INSERT ... SELECT``
   (put_many counts the same rows batch by batch);
4. the dropped indexes are created again from their definitions, with the HNSW graph built
   in memory (``maintenance_work_mem``) by parallel workers, as pgvector's docs advise for
   a large load.

The result is the database put_many would have produced (tests/bench/test_scale.py
compares both): the same rows, ids, flags, term counts and index definitions; only the
HNSW graph's links differ, as they do between any two insertion orders.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable

import psycopg
from pgvector.psycopg import register_vector

from citeqa.index import rows
from citeqa.index.postgres_store import _FILL_LIVE_WORDS, _INSERT_ORIGINAL, LIVE_WORDS_TRIGGER, PostgresStore
from citeqa.index.scope import check_collection, storage_key
from citeqa.index.vector_checks import Batch, check_batch

# The HNSW graph of 1M 384-d vectors takes ~2-3 GB while it is built; below that pgvector
# builds on disk, many times slower. (A session setting: the server's stays as it is.)
BUILD_MEMORY = "4GB"
# Workers besides the leader for CREATE INDEX (pgvector builds HNSW in parallel since 0.6).
BUILD_WORKERS = 1
_TABLES = ("citeqa_sentences", "citeqa_versions", "citeqa_live_words")
# citeqa_live_words is filled once after the COPY, not by its trigger row by row. Each row the
# trigger adds has its key checked against citeqa_versions, by a plan the backend made while
# that table was empty: a sequential scan of every version loaded so far, for every new one.
# The COPY of 980,000 sentences took 1,788 s so (session 30: 100,000 sentences per 4 minutes
# and slowing, the backend's time in int8eq under SeqNext), against ~110 s without the copy.
_TEMPORARY_INDEXES = (
    "SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
    "WHERE x.indrelid = ANY(%s::regclass[]) AND NOT x.indisunique ORDER BY c.relname"
)
# The lexemes of the rows loaded after the given ids, added as put_many's TermDelta adds a
# batch's (index/postgres_store.py _APPLY_TERMS), in lexeme order.
_ADD_LOADED_TERMS = (
    "INSERT INTO citeqa_terms AS t (lexeme, sentences, versions) "
    "SELECT lexeme, sum(s), sum(v) FROM ("
    " SELECT unnest(tsvector_to_array(tsv)) AS lexeme, 1 AS s, 0 AS v FROM citeqa_sentences"
    " WHERE active AND id > %(sentence)s"
    " UNION ALL SELECT unnest(tsvector_to_array(tsv)), 0, 1 FROM citeqa_versions WHERE live AND id > %(version)s"
    ") AS found GROUP BY lexeme ORDER BY lexeme "
    "ON CONFLICT (lexeme) DO UPDATE SET sentences = t.sentences + excluded.sentences, "
    "versions = t.versions + excluded.versions"
)

Log = Callable[[str], None]


@dataclass
class BulkLoad:
    """What one load stored and where its time went (seconds)."""

    documents: int = 0
    sentences: int = 0
    copy_s: float = 0.0
    terms_s: float = 0.0
    index_s: float = 0.0
    analyze_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.copy_s + self.terms_s + self.index_s + self.analyze_s


def bulk_load(url: str, dimension: int, batches: Iterable[Batch], log: Log = print) -> BulkLoad:
    """Store ``batches`` of new documents (none stored before, each once) in the PostgresStore
    database at ``url`` (its schema made already: a PostgresStore was opened on it), as
    put_many would, in one transaction; then VACUUM ANALYZE, as autovacuum would after as
    many inserts, so the planner knows the rows."""
    done = BulkLoad()
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)  # the COPY sends vectors in binary
        with conn.transaction():
            dropped = conn.execute(_TEMPORARY_INDEXES, (list(_TABLES),)).fetchall()
            for name, _ in dropped:
                conn.execute(f"DROP INDEX {name}")
            after = conn.execute("SELECT (SELECT coalesce(max(id), 0) FROM citeqa_sentences), "
                                 "(SELECT coalesce(max(id), 0) FROM citeqa_versions)").fetchone()
            started = time.perf_counter()
            conn.execute(f"ALTER TABLE citeqa_versions DISABLE TRIGGER {LIVE_WORDS_TRIGGER}")
            _copy(conn, dimension, batches, done, log)
            # Statistics first (this transaction's rows count): the fill's key checks then
            # read citeqa_versions by its primary key.
            conn.execute("ANALYZE citeqa_versions")
            conn.execute(_FILL_LIVE_WORDS)
            conn.execute(f"ALTER TABLE citeqa_versions ENABLE TRIGGER {LIVE_WORDS_TRIGGER}")
            done.copy_s = time.perf_counter() - started
            started = time.perf_counter()
            if after is not None:
                conn.execute(_ADD_LOADED_TERMS, {"sentence": after[0], "version": after[1]})
            done.terms_s = time.perf_counter() - started
            log(f"  bulk: {done.sentences:,} sentences copied in {done.copy_s:,.0f} s, terms counted in "
                f"{done.terms_s:,.0f} s; creating {len(dropped)} indexes")
            conn.execute(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'")
            conn.execute(f"SET LOCAL max_parallel_maintenance_workers = {BUILD_WORKERS}")
            for name, definition in dropped:
                started = time.perf_counter()
                conn.execute(definition)
                took = time.perf_counter() - started
                done.index_s += took
                if took > 5:
                    log(f"  bulk: {name} created in {took:,.0f} s")
        started = time.perf_counter()
        for table in _TABLES:
            conn.execute(f"VACUUM (ANALYZE) {table}")
        done.analyze_s = time.perf_counter() - started
    return done


def _copy(conn: psycopg.Connection, dimension: int, batches: Iterable[Batch], done: BulkLoad, log: Log) -> None:
    """Every batch's versions and sentences, written by the store's own statements."""
    seen: set[str] = set()
    for batch in batches:
        check_batch(batch, dimension)  # put_many's check
        keys = [storage_key(doc.collection, doc.doc_id) for doc, _, _ in batch]
        if len(seen.union(keys)) < len(seen) + len(keys):  # a second version would need put_many's replacement
            raise ValueError("bulk_load stores each document once: a batch repeats one")
        seen.update(keys)
        PostgresStore._enter_collections(conn, sorted({check_collection(doc.collection) for doc, _, _ in batch}))
        originals = rows.originals(batch)
        if originals:
            with conn.cursor() as cur:
                cur.executemany(_INSERT_ORIGINAL, list(originals.items()))
        PostgresStore._insert_versions(conn, [(key, item, True) for key, item in zip(keys, batch, strict=True)])
        before = done.sentences
        done.documents += len(batch)
        done.sentences += sum(len(sentences) for _, sentences, _ in batch)
        if done.sentences // 100_000 != before // 100_000:
            log(f"  bulk: {done.sentences:,} sentences copied")
