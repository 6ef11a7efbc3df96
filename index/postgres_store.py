"""A :class:`citeqa.index.types.Store` in PostgreSQL: pgvector (HNSW) + full-text search.

One database holds everything, so there is no cache to reconcile: every write is one
transaction, durable when ``COMMIT`` returns (PostgreSQL's default ``synchronous_commit``).

Tables (prefixed ``citeqa_`` so the store can share a database):

* ``citeqa_versions``: one row per document version (text, title, metadata, created_at)
  with two flags: ``current`` (the document's newest version, kept after a delete) and
  ``live`` (current and not deleted). A document exists while it has a ``current`` row.
* ``citeqa_sentences``: the sentences of every version with their ``embedding`` and an
  ``active`` flag on the sentences of live current versions, the only searchable ones.
  The HNSW (``vector_cosine_ops``) and GIN (``tsvector``) indexes are *partial*, ``WHERE
  active``: a search walks only searchable sentences, so no hit is lost to filtering.
* ``citeqa_originals``: the bytes of the files versions were extracted from, once per
  SHA-256 (a version's ``source`` jsonb names its file by ``sha256``).
* ``citeqa_flags`` (``get_flag``/``set_flag``) and ``citeqa_meta`` (the vector dimension).
* ``citeqa_collections``: the collections (index/scope.py), ``default`` always. Every
  ``doc_id`` column holds a storage key (the bare doc_id in default, ``<collection>\\x1f<doc_id>``
  elsewhere), so a database from before collections opens with everything in default.

A search runs in a Scope: its collection (a key prefix) and filter (doc_ids as storage
keys, metadata conditions compiled to jsonb tests of the version's metadata, meaning what
``Condition.admits`` says). A scope of a few documents is searched exactly among their
sentences; a wider one through the HNSW index, whose iterative scan walks past rows out of
scope until k are found (an exact search follows if it gives up first). Lexical searches
are a pruned top k (index/postgres_lexical.py): the rows holding the rarest words are
scored, and common words are read only when they could still reach the k-th score; within
a scope the same holds among the scope's rows (a scope never starves: with fewer than k
candidates, more words are read, up to every match). BM25's statistics stay the whole
store's: document frequencies from ``citeqa_terms``, kept by each write transaction. Writers hold their
collections with a shared advisory lock, which ``delete_collection`` takes exclusively.

Lexical scores are BM25, computed here because PostgreSQL's own ranking (``ts_rank_cd``)
has no IDF: with it, SQuAD dev search hit@1 fell from 0.739 to 0.636 (docs/SCALING.md).
Questions become an OR of their content words (:func:`citeqa.index.text.query_words`),
as in the embedded store's FTS5 queries.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from citeqa.index import rows
from citeqa.index.postgres_lexical import (
    SEED_BUDGET_ROWS,
    TermDelta,
    first_prefix,
    needed_prefix,
    pair_queries,
    reaching_alone,
    unread_rows,
    upper_bound,
)
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
from citeqa.index.text import query_words
from citeqa.index.thread_connections import DEFAULT_MAX_OPEN, ConnectionPool
from citeqa.index.types import Document, Mention, Scored, Sentence
from citeqa.index.vector_checks import Batch, CheckedWrites, check_stored_dimension

# The text search configuration of both tsvector columns and every query (stemming +
# English stop words, like FTS5's porter tokenizer minus diacritic folding).
TS_CONFIG = "english"
# hnsw.ef_search is capped at 1000 by pgvector; iterative scans go on past it. The default
# floor is the efSearch the embedded FAISS HNSW uses; docs/SCALING.md has what each value
# keeps at 1M sentences (64: recall@10 0.963 on SQuAD questions; 256: 0.990).
DEFAULT_EF_SEARCH = 64
_MAX_EF_SEARCH = 1000
_SCHEMA_LOCK = 0x63697465  # advisory lock key: two processes creating the schema at once
# BM25 with FTS5's defaults, so both stores rank alike.
BM25_K1, BM25_B = 1.2, 0.75
# The collection statistics BM25 needs (how many rows, their mean length) move slowly:
# each process refreshes them at most this often instead of counting on every query.
STATS_TTL_S = 60.0
_LENGTH_SAMPLE = 10_000  # rows whose mean length stands for the collection's
# The trigger that keeps citeqa_live_words (bench/scale_bulk.py turns it off while it copies).
LIVE_WORDS_TRIGGER = "citeqa_versions_live_words"


def _schema(dimension: int) -> list[str]:
    return [
        "CREATE EXTENSION IF NOT EXISTS vector",
        "CREATE TABLE IF NOT EXISTS citeqa_meta (key text PRIMARY KEY, value text NOT NULL)",
        "CREATE TABLE IF NOT EXISTS citeqa_flags (key text PRIMARY KEY, value text NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS citeqa_versions (
            id bigserial PRIMARY KEY,
            doc_id text NOT NULL,
            version text NOT NULL,
            title text NOT NULL,
            text text NOT NULL,
            metadata jsonb NOT NULL,
            created_at double precision NOT NULL,
            source jsonb,
            current boolean NOT NULL DEFAULT false,
            live boolean NOT NULL DEFAULT false,
            tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('{TS_CONFIG}'::regconfig, title), 'A')
                || to_tsvector('{TS_CONFIG}'::regconfig, text)) STORED,
            text_length integer GENERATED ALWAYS AS (char_length(title) + char_length(text)) STORED,
            UNIQUE (doc_id, version),
            CHECK (current OR NOT live))""",
        # At most one current version per document.
        "CREATE UNIQUE INDEX IF NOT EXISTS citeqa_versions_current ON citeqa_versions (doc_id) WHERE current",
        "CREATE INDEX IF NOT EXISTS citeqa_versions_live ON citeqa_versions (doc_id) WHERE live",
        "CREATE INDEX IF NOT EXISTS citeqa_versions_tsv ON citeqa_versions USING gin (tsv) WHERE live",
        f"""CREATE TABLE IF NOT EXISTS citeqa_sentences (
            id bigserial PRIMARY KEY,
            doc_id text NOT NULL,
            version text NOT NULL,
            idx integer NOT NULL,
            start_char integer NOT NULL,
            end_char integer NOT NULL,
            text text NOT NULL,
            embedding vector({dimension}) NOT NULL,
            active boolean NOT NULL DEFAULT false,
            mentions jsonb,
            tsv tsvector GENERATED ALWAYS AS (to_tsvector('{TS_CONFIG}'::regconfig, text)) STORED,
            UNIQUE (doc_id, version, idx),
            FOREIGN KEY (doc_id, version) REFERENCES citeqa_versions (doc_id, version))""",
        "CREATE INDEX IF NOT EXISTS citeqa_sentences_active ON citeqa_sentences (doc_id, idx) WHERE active",
        "CREATE INDEX IF NOT EXISTS citeqa_sentences_hnsw ON citeqa_sentences "
        "USING hnsw (embedding vector_cosine_ops) WHERE active",
        "CREATE INDEX IF NOT EXISTS citeqa_sentences_tsv ON citeqa_sentences USING gin (tsv) WHERE active",
        # Databases made before mentions were stored get the column, NULL (not analysed)
        # in every row; a running service fills them in (index/mention_backfill.py).
        "ALTER TABLE citeqa_sentences ADD COLUMN IF NOT EXISTS mentions jsonb",
        "CREATE INDEX IF NOT EXISTS citeqa_sentences_unanalysed ON citeqa_sentences (id) WHERE mentions IS NULL",
        # BM25's document length, stored: char_length() of a TOASTed text reads and
        # decompresses it, once per candidate document of every search. Databases made
        # before it get it computed once here (a rewrite of the versions table).
        "ALTER TABLE citeqa_versions ADD COLUMN IF NOT EXISTS text_length integer "
        "GENERATED ALWAYS AS (char_length(title) + char_length(text)) STORED",
        # Databases made before sources were stored: their versions have none (NULL).
        "ALTER TABLE citeqa_versions ADD COLUMN IF NOT EXISTS source jsonb",
        "CREATE TABLE IF NOT EXISTS citeqa_originals (sha256 text PRIMARY KEY, data bytea NOT NULL)",
        # Collections (index/scope.py): documents are filed under storage keys that name
        # their collection, so this only records which exist and since when. Databases made
        # before collections get the table here, with everything in default.
        "CREATE TABLE IF NOT EXISTS citeqa_collections (name text PRIMARY KEY, created_at double precision NOT NULL)",
        f"INSERT INTO citeqa_collections VALUES ('{DEFAULT_COLLECTION}', extract(epoch FROM now())) "
        "ON CONFLICT (name) DO NOTHING",
        # A collection's live versions by key prefix (starts_with uses a "C" btree), default's
        # (keys without a separator), and the live ones outside default (an index probe tells
        # an unfiltered default search whether it may skip the collection test).
        'CREATE INDEX IF NOT EXISTS citeqa_versions_key ON citeqa_versions ((doc_id COLLATE "C")) WHERE live',
        f"CREATE INDEX IF NOT EXISTS citeqa_versions_default ON citeqa_versions (doc_id) WHERE live AND NOT {_NAMED}",
        f"CREATE INDEX IF NOT EXISTS citeqa_versions_named ON citeqa_versions (doc_id) WHERE live AND {_NAMED}",
        # How many sentences are in default: without it the planner guesses 0.5% for "no
        # separator" and, in a store with other collections, sorts every row for a default
        # search instead of walking the HNSW index (measured: 15 ms -> 1.2 ms at 6,000 rows).
        "CREATE STATISTICS IF NOT EXISTS citeqa_sentences_keys ON (strpos(doc_id, chr(31))) FROM citeqa_sentences",
        # The same for versions: without it the planner guesses a third of them lie outside
        # default, and answers "is every live document in default?" (_NAMED_LIVE_SQL, asked
        # before every unscoped search) by a sequential scan that finds none: 50-90 ms for
        # 125k versions at 1M sentences, against 0.03 ms from the empty partial index.
        "CREATE STATISTICS IF NOT EXISTS citeqa_versions_keys ON (strpos(doc_id, chr(31))) FROM citeqa_versions",
        # BM25's document frequencies, per lexeme (index/postgres_lexical.py): kept by every
        # write transaction, so a search reads them instead of counting matching rows.
        "CREATE TABLE IF NOT EXISTS citeqa_terms (lexeme text PRIMARY KEY, sentences bigint NOT NULL, "
        "versions bigint NOT NULL)",
        # The live versions' words (their tsvector without positions) and BM25 lengths, in
        # rows narrow enough to stay in the table's own pages: a version's tsvector beside its
        # text is TOASTed, and the document BM25 read and decompressed it once per candidate
        # (index/postgres_lexical.py). Kept by a trigger, so every write path (put, replace,
        # make_current, delete, a collection's deletion, a bulk COPY) keeps it exact.
        "CREATE TABLE IF NOT EXISTS citeqa_live_words (id bigint PRIMARY KEY REFERENCES citeqa_versions (id) "
        "ON DELETE CASCADE, doc_id text NOT NULL, length integer NOT NULL, words tsvector NOT NULL)",
        "CREATE INDEX IF NOT EXISTS citeqa_live_words_words ON citeqa_live_words USING gin (words)",
        """CREATE OR REPLACE FUNCTION citeqa_follow_live() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.live AND (TG_OP = 'INSERT' OR NOT OLD.live) THEN
                INSERT INTO citeqa_live_words VALUES (NEW.id, NEW.doc_id, NEW.text_length, strip(NEW.tsv));
            ELSIF TG_OP = 'UPDATE' AND OLD.live AND NOT NEW.live THEN
                DELETE FROM citeqa_live_words WHERE id = OLD.id;
            END IF;
            RETURN NULL;
        END $$""",
        # Created once: replacing a trigger locks the table against writers, and every
        # replica runs this schema when it opens.
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{LIVE_WORDS_TRIGGER}'
                           AND tgrelid = 'citeqa_versions'::regclass) THEN
                CREATE TRIGGER {LIVE_WORDS_TRIGGER} AFTER INSERT OR UPDATE OF live ON citeqa_versions
                FOR EACH ROW EXECUTE FUNCTION citeqa_follow_live();
            END IF;
        END $$""",
    ]

# Fills citeqa_live_words once, when a database made before it opens.
_FILL_LIVE_WORDS = ("INSERT INTO citeqa_live_words SELECT id, doc_id, text_length, strip(tsv) FROM citeqa_versions "
                    "WHERE live ON CONFLICT (id) DO NOTHING")


# Fills citeqa_terms from the searchable rows, once, when a database made before it opens.
_COUNT_ALL_TERMS = (
    "INSERT INTO citeqa_terms (lexeme, sentences, versions) "
    "SELECT lexeme, sum(s), sum(v) FROM ("
    " SELECT unnest(tsvector_to_array(tsv)) AS lexeme, 1 AS s, 0 AS v FROM citeqa_sentences WHERE active"
    " UNION ALL SELECT unnest(tsvector_to_array(tsv)), 0, 1 FROM citeqa_versions WHERE live) AS found "
    "GROUP BY lexeme"
)
# Lexemes of the rows meeting a condition, with how many rows hold each (a tsvector's
# array has each lexeme once).
_SENTENCE_TERMS = ("SELECT lexeme, count(*) FROM citeqa_sentences s, unnest(tsvector_to_array(s.tsv)) AS lexeme "
                   "WHERE {where} GROUP BY lexeme")
_VERSION_TERMS = ("SELECT lexeme, count(*) FROM citeqa_versions v, unnest(tsvector_to_array(v.tsv)) AS lexeme "
                  "WHERE {where} GROUP BY lexeme")
# A transaction's changes, in the order given (lexeme order: index/postgres_lexical.py TermDelta).
_APPLY_TERMS = (
    "INSERT INTO citeqa_terms AS t (lexeme, sentences, versions) "
    "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) "
    "ON CONFLICT (lexeme) DO UPDATE SET sentences = t.sentences + excluded.sentences, "
    "versions = t.versions + excluded.versions"
)


# A storage key outside default holds the separator (index/scope.py).
_NAMED = "strpos(doc_id, chr(31)) > 0"


def _in_collection(column: str, param: str = "prefix") -> str:
    """SQL true for the storage keys in ``column`` of the collection whose key_prefix is
    the parameter ``param`` ("" for default: the keys without a separator)."""
    return (f"(CASE WHEN %({param})s = '' THEN strpos({column}, chr(31)) = 0 "
            f"ELSE starts_with({column}, %({param})s) END)")


# The columns rows.sentence reads. mentions: jsonb, NULL when not analysed.
_SENTENCE_COLUMNS = "s.id, s.doc_id, s.version, s.idx, s.start_char, s.end_char, s.text, s.mentions"
_SCORE = 8  # the column after them: a search's distance or score
# source as text, not jsonb: rows.source keeps the decoded sources of recent reads by their text.
_DOCUMENT_COLUMNS = "doc_id, version, title, text, metadata, created_at, live, source::text"
# The same without the text (document_info: what anchors and passage titles read).
_DOCUMENT_INFO_COLUMNS = "doc_id, version, title, '', metadata, created_at, live, source::text"

# A new version, inserted as it stays: current and live, or neither (the caller locked the document).
_INSERT_LIVE_VERSION = (
    "INSERT INTO citeqa_versions (doc_id, version, title, text, metadata, created_at, source, current, live) "
    "VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s::jsonb, %s, %s)"
)
# Sentences in binary COPY (a vector's 384 floats as bytes, not as text to parse).
_COPY_SENTENCES = ("COPY citeqa_sentences (doc_id, version, idx, start_char, end_char, text, embedding, active, "
                   "mentions) FROM STDIN (FORMAT BINARY)")
_SENTENCE_TYPES = ["text", "text", "int4", "int4", "int4", "text", "vector", "bool", "jsonb"]
_INSERT_COLLECTION = (
    "INSERT INTO citeqa_collections (name, created_at) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING"
)
_INSERT_ORIGINAL = "INSERT INTO citeqa_originals (sha256, data) VALUES (%s, %s) ON CONFLICT (sha256) DO NOTHING"

# The searchable sentences named by (doc_id, idx) pairs, given as two arrays.
_WANTED_SEARCHABLE = (
    "FROM citeqa_sentences s JOIN unnest(%(doc_ids)s::text[], %(indexes)s::int[]) AS w(doc_id, idx) "
    "ON s.doc_id = w.doc_id AND s.idx = w.idx WHERE s.active"
)

_READS = ReadStatements(
    document=f"SELECT {_DOCUMENT_COLUMNS} FROM citeqa_versions WHERE doc_id = %(doc_id)s AND live",
    document_version=(
        f"SELECT {_DOCUMENT_COLUMNS} FROM citeqa_versions WHERE doc_id = %(doc_id)s AND version = %(version)s"
    ),
    document_info=(
        f"SELECT {_DOCUMENT_INFO_COLUMNS} FROM citeqa_versions WHERE doc_id = %(doc_id)s AND version = %(version)s"
    ),
    original=(
        "SELECT o.data FROM citeqa_versions v JOIN citeqa_originals o ON o.sha256 = v.source ->> 'sha256' "
        "WHERE v.doc_id = %(doc_id)s AND v.version = %(version)s"
    ),
    sentences=(
        f"SELECT {_SENTENCE_COLUMNS} FROM citeqa_sentences s WHERE s.doc_id = %(doc_id)s AND s.version = %(version)s "
        "ORDER BY s.idx"
    ),
    live_count=f"SELECT count(*) FROM citeqa_versions WHERE live AND {_in_collection('doc_id')}",
    # LIMIT NULL is LIMIT ALL.
    listing=(
        f"SELECT doc_id, version, title, metadata, created_at FROM citeqa_versions WHERE live "
        f"AND {_in_collection('doc_id')} ORDER BY doc_id LIMIT %(limit)s OFFSET %(offset)s"
    ),
    vectors_by_text=(
        "SELECT s.text, s.embedding FROM citeqa_sentences s JOIN citeqa_versions v "
        "ON v.doc_id = s.doc_id AND v.version = s.version WHERE s.doc_id = %(doc_id)s AND v.title = %(title)s"
    ),
    sentence_count="SELECT count(*) FROM citeqa_sentences WHERE active",
    flag="SELECT value FROM citeqa_flags WHERE key = %(key)s",
    current_sentences=(
        f"SELECT {_SENTENCE_COLUMNS} FROM citeqa_sentences s "
        "WHERE s.doc_id = ANY(%(doc_ids)s) AND s.active ORDER BY s.doc_id, s.idx"
    ),
    searchable_vectors=f"SELECT s.doc_id, s.idx, s.embedding {_WANTED_SEARCHABLE}",
    # The neighbours' texts a ranker reads: four columns, no mentions to decode.
    searchable_texts=f"SELECT s.doc_id, s.version, s.idx, s.text {_WANTED_SEARCHABLE}",
    unanalysed=(
        f"SELECT {_SENTENCE_COLUMNS} FROM citeqa_sentences s WHERE s.mentions IS NULL AND s.id > %(after)s "
        "ORDER BY s.id LIMIT %(limit)s"
    ),
    collections="SELECT name, created_at FROM citeqa_collections ORDER BY name",
    has_collection="SELECT 1 FROM citeqa_collections WHERE name = %(name)s",
    live_keys="SELECT doc_id FROM citeqa_versions WHERE live",
)


# The k nearest searchable sentences by cosine distance, through the partial HNSW index.
DENSE_SEARCH_SQL = (
    f"WITH found AS MATERIALIZED ("
    f" SELECT {_SENTENCE_COLUMNS}, s.embedding <=> %(q)s AS distance FROM citeqa_sentences s"
    f" WHERE s.active ORDER BY s.embedding <=> %(q)s LIMIT %(k)s)"
    f" SELECT * FROM found ORDER BY distance, id"
)


# Is any document live outside default? (an index probe: citeqa_versions_named)
_NAMED_LIVE_SQL = f"SELECT EXISTS (SELECT 1 FROM citeqa_versions WHERE live AND {_NAMED})"


def _dense_sql(where: str) -> str:
    """The k nearest searchable sentences meeting ``where`` (on ``s``), through the HNSW
    index: its iterative scan walks on past the rows ``where`` rejects until k are found,
    or hnsw.max_scan_tuples were read."""
    return (f"WITH found AS MATERIALIZED ("
            f" SELECT {_SENTENCE_COLUMNS}, s.embedding <=> %(q)s AS distance FROM citeqa_sentences s"
            f" WHERE s.active AND {where} ORDER BY s.embedding <=> %(q)s LIMIT %(k)s)"
            f" SELECT * FROM found ORDER BY distance, id")


def _exact_dense_sql(where: str) -> str:
    """The k nearest searchable sentences of the versions meeting ``where`` (on ``v``), by
    their exact distances: the scope's versions first, then their sentences ("+ 0" keeps
    the HNSW index, which could stop short, out of the ordering)."""
    return (f"SELECT {_SENTENCE_COLUMNS}, s.embedding <=> %(q)s AS distance FROM citeqa_versions v"
            f" JOIN citeqa_sentences s ON s.doc_id = v.doc_id AND s.version = v.version"
            f" WHERE v.live AND s.active AND {where} ORDER BY (s.embedding <=> %(q)s) + 0, s.id LIMIT %(k)s")


# A scope of at most this many documents is searched exactly, among its documents'
# sentences: a filter that keeps a small part of the store makes an HNSW scan walk (and
# drop) most of the rows nearest the query, or the planner scan every sentence. Finding
# them (up to one more) reads versions only, through an index for a collection or doc_ids.
EXACT_SEARCH_DOCUMENTS = 50
_SCOPE_KEYS_SQL = "SELECT v.doc_id FROM citeqa_versions v WHERE v.live AND {where} LIMIT %(cap)s"


def _exact_among_sql(where: str) -> str:
    """The k nearest searchable sentences of the documents ``few_keys`` that still
    meet ``where`` (on ``s``; the keys were read by an earlier statement), by their exact
    distances ("+ 0": never ordered by the HNSW index, which could stop short)."""
    return (f"SELECT {_SENTENCE_COLUMNS}, s.embedding <=> %(q)s AS distance FROM citeqa_sentences s "
            f"WHERE s.active AND s.doc_id = ANY(%(few_keys)s) AND {where} "
            "ORDER BY (s.embedding <=> %(q)s) + 0, s.id LIMIT %(k)s")


def _collection_sql(column: str, collection: str) -> str:
    """SQL true for the storage keys in ``column`` of ``collection`` (the prefix, if any,
    is the parameter ``prefix``: index/scope.py key_prefix)."""
    if collection == DEFAULT_COLLECTION:  # the partial indexes' own words, so they match
        return f"NOT strpos({column}, chr(31)) > 0"
    return f"starts_with({column}, %(prefix)s)"


def _scope_sql(scope: Scope, on_versions: bool) -> tuple[str, dict[str, Any]]:
    """A WHERE condition that holds for the rows in ``scope`` and its named parameters:
    rows of versions ``v`` (on_versions), else of sentences ``s``, whose metadata is their
    version's (a probe of the version by its unique key)."""
    key = "v.doc_id" if on_versions else "s.doc_id"
    params: dict[str, Any] = {"prefix": key_prefix(scope.collection)}
    parts = [_collection_sql(key, scope.collection)]
    if scope.doc_ids is not None:
        parts.append(f"{key} = ANY(%(scope_keys)s)")
        params["scope_keys"] = scope.storage_keys
    tests = [_condition_sql(c, f"c{i}", params) for i, c in enumerate(scope.conditions)]
    if tests and on_versions:
        parts.extend(tests)
    elif tests:
        parts.append("EXISTS (SELECT 1 FROM citeqa_versions v WHERE v.doc_id = s.doc_id AND v.version = s.version "
                     f"AND {' AND '.join(tests)})")
    return " AND ".join(parts), params


_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _condition_sql(c: Condition, name: str, params: dict[str, Any]) -> str:
    """``Condition.admits`` on the metadata of a version ``v``, in SQL. jsonb equality is
    JSON's (1 = 1.0; true, "1", null and 1 each equal only their own kind); a range tests
    the value's kind first, in a CASE so no cast ever meets a value of another kind.
    Numbers compare as numeric (float bounds by their shortest decimal, as json.dumps wrote
    the stored ones), dates as text in code point order (COLLATE "C", Python's order)."""
    params[name] = c.key
    value = f"(v.metadata -> %({name})s)"
    if c.one_of:
        # A string with NUL can be no stored value (jsonb refuses \u0000), nor a jsonb literal.
        wanted = [json.dumps(w) for w in c.one_of if not (isinstance(w, str) and "\x00" in w)]
        params[f"{name}_in"] = wanted
        return f"{value} = ANY(%({name}_in)s::jsonb[])" if wanted else "false"
    tests = []
    for op, bound in c.bounds.items():
        params[f"{name}_{op}"] = Decimal(repr(bound)) if c.numeric else bound
        if c.numeric:
            tests.append(f"{value}::numeric {_OPERATORS[op]} %({name}_{op})s::numeric")
        else:
            tests.append(f'(v.metadata ->> %({name})s) COLLATE "C" {_OPERATORS[op]} %({name}_{op})s::text')
    kind = "number" if c.numeric else "string"
    return f"(CASE WHEN jsonb_typeof({value}) = '{kind}' THEN {' AND '.join(tests) or 'true'} ELSE false END)"


@dataclass(frozen=True)
class _LexicalTable:
    """A table searched with BM25: its searchable rows, their length, what a hit returns.

    Each word is matched on its own through the GIN index (``plainto_tsquery``: user text
    is never parsed as tsquery syntax, so no input can raise a syntax error). A word's
    term frequency is taken as 1, so a row scores ``sum(idf) * (k1 + 1) / (1 + k1 * (1 - b
    + b * len / avglen))``: sentences rarely repeat a word, and reading positions out of
    every matching tsvector would cost more. ``length`` is in characters, which follows
    FTS5's token count (stop words included) more closely than the tsvector's lexemes do."""

    table: str  # with its alias, e.g. "citeqa_sentences s"
    alias: str
    live: str  # the searchable rows
    length: str
    columns: str
    on_versions: bool  # rows are versions (else sentences): how a scope applies (_scope_sql)
    terms_column: str  # its document frequencies in citeqa_terms
    # Whole documents: a version's tsvector (~1.6 kB at 1M sentences) is TOASTed, and each
    # reference to a TOASTed value reads and decompresses it again (see seeded_sql).
    toasted: bool = False
    # Whether to read rows holding two of the other words rather than every row of each
    # (index/postgres_lexical.py pair_queries). Not for whole documents: most documents
    # holding one of a question's words hold another, so the pairs cut few rows and their
    # scans cost more (one question at 1M: 0.4-0.65 s reading every row, 2.6-2.9 s paired).
    pairs: bool = True
    column: str = "tsv"  # the tsvector searched
    # What a search of the whole store (no scope condition) reads instead, if anything.
    whole_store: "_LexicalTable | None" = None

    def _matches(self, word: str) -> str:
        return f"{self.alias}.{self.column} @@ plainto_tsquery('{TS_CONFIG}'::regconfig, {word})"

    @property
    def stats_sql(self) -> str:
        """(rows, mean length of a bounded sample): BM25's collection statistics."""
        return (f"SELECT (SELECT count(*) FROM {self.table} WHERE {self.live}), "
                f"(SELECT avg(n) FROM (SELECT {self.length} AS n FROM {self.table} WHERE {self.live} "
                f"LIMIT {_LENGTH_SAMPLE}) AS sample)")

    @property
    def document_frequency_sql(self) -> str:
        """Each word's number of searchable rows and its tsquery: read from citeqa_terms for
        a word of one lexeme, counted (GIN) for one of several ("e-mail": a row must hold
        them all), 0 for a stop word."""
        return (f"SELECT w.word, plainto_tsquery('{TS_CONFIG}'::regconfig, w.word)::text, CASE cardinality(l.lexemes) "
                f"WHEN 0 THEN 0 "
                f"WHEN 1 THEN coalesce((SELECT t.{self.terms_column} FROM citeqa_terms t "
                f"WHERE t.lexeme = l.lexemes[1]), 0) "
                f"ELSE (SELECT count(*) FROM {self.table} WHERE {self.live} AND {self._matches('w.word')}) END "
                f"FROM unnest(%s::text[]) AS w(word), "
                f"LATERAL (SELECT tsvector_to_array(to_tsvector('{TS_CONFIG}'::regconfig, w.word)) AS lexemes) AS l")

    def seeded_sql(self, where: str, words: int, pairs: int = 0) -> str:
        """The k best rows meeting ``where`` among those holding a seed word (``seeds``: the
        seed words' tsqueries ORed, one bitmap scan, each row read once); each is scored over
        the query's ``words`` words (tsqueries ``q0``.., IDFs ``idf0``..) by testing its own
        tsvector, so the other words' posting lists are never read (index/postgres_lexical.py
        says when this is the exact top k). The sum is written out: a subquery per row cost
        more than the scoring. ``pairs``: also the rows matching tsqueries ``pair0``.. (two
        words each, index/postgres_lexical.py pair_queries), a GIN scan each, ORed."""
        norm = f"(1 + %(k1)s * (1 - %(b)s + %(b)s * ({self.length}) / %(avglen)s))"
        a = self.alias
        tests = ["seeds"] + [f"pair{i}" for i in range(pairs)]
        holds = " OR ".join(f"{a}.{self.column} @@ %({name})s::tsquery" for name in tests)
        matches = f"({holds}) AND {self.live} AND {where}"
        rows, tested = f"{self.table} WHERE {matches}", f"{a}.{self.column}"
        if self.toasted:
            # Detoasted once per row: strip() makes one in-memory copy (without positions,
            # which @@ of plain words never reads), the subquery (OFFSET 0: not flattened
            # into this query) hands it to every test. Testing the column itself read each
            # document's TOAST chunks once per word: 1.93M buffer reads for 40k documents.
            rows = f"(SELECT {a}.*, strip({a}.tsv) AS words FROM {rows} OFFSET 0) AS {a}"
            tested = f"{a}.words"
        total = " + ".join(f"(CASE WHEN {tested} @@ %(q{i})s::tsquery THEN %(idf{i})s::float8 ELSE 0 END)"
                           for i in range(words))
        return (
            f"SELECT {self.columns}, ({total}) * (%(k1)s + 1) / {norm} AS score "
            f"FROM {rows} ORDER BY score DESC, {a}.id LIMIT %(k)s"
        )

    def search_sql(self, where: str) -> str:
        """The k best rows meeting ``where`` by scoring every match (a join per word): the
        reference the pruned search is tested against (tests/index/test_postgres_lexical.py)."""
        norm = f"(1 + %(k1)s * (1 - %(b)s + %(b)s * ({self.length}) / %(avglen)s))"
        return (
            f"SELECT {self.columns}, sum(w.idf) * (%(k1)s + 1) / {norm} AS score "
            f"FROM unnest(%(words)s::text[], %(idf)s::float8[]) AS w(word, idf) "
            f"JOIN {self.table} ON {self._matches('w.word')} "
            f"WHERE {self.live} AND {where} GROUP BY {self.alias}.id ORDER BY score DESC, {self.alias}.id LIMIT %(k)s"
        )


_SENTENCES = _LexicalTable("citeqa_sentences s", "s", "s.active", "char_length(s.text)", _SENTENCE_COLUMNS,
                           on_versions=False, terms_column="sentences")
# The whole store's documents are read from their narrow copies (citeqa_live_words); a scope's
# condition reads the versions' own columns, so a search in a scope reads the versions.
_DOCUMENTS = _LexicalTable("citeqa_versions v", "v", "v.live", "v.text_length",
                           "v.doc_id", on_versions=True, terms_column="versions", toasted=True, pairs=False,
                           whole_store=_LexicalTable("citeqa_live_words d", "d", "true", "d.length", "d.doc_id",
                                                     on_versions=True, terms_column="versions", pairs=False,
                                                     column="words"))


def _top(rows: list[tuple[Any, ...]], k: int) -> list[tuple[Any, ...]]:
    """The k best of rows (key first, score last) that passes of one search found: best
    first, equal scores by key; a row found twice counts once."""
    unique = {row[0]: row for row in rows}
    return sorted(unique.values(), key=lambda row: (-float(row[-1]), row[0]))[:k]


def _as_is(text: str) -> str:
    """The mentions column's JSON is made as text already (rows.stored_mentions)."""
    return text


def _usable(conn: psycopg.Connection) -> bool:
    """Open (a server restart breaks connections) and outside any transaction, so the
    next borrower starts clean."""
    return not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


class PostgresStore(CheckedWrites, SqlReads):
    """A :class:`citeqa.index.types.Store` on a PostgreSQL database with the pgvector extension.

    ``url`` is a libpq connection string (``postgresql://user@host:port/db``). A call
    borrows a connection (autocommit; writes open explicit transactions) from a pool of at
    most ``max_connections`` per store, so replicas x max_connections bounds what the
    server must allow.
    """

    _reads = _READS
    seed_budget_rows = SEED_BUDGET_ROWS  # index/postgres_lexical.py first_prefix
    # Searches run in the server's processes: a question's dense and BM25 searches may run
    # at once (index/retriever.py parallel_searches).
    searches_run_elsewhere = True

    def __init__(self, url: str, dimension: int, ef_search: int = DEFAULT_EF_SEARCH,
                 max_connections: int = DEFAULT_MAX_OPEN):
        if not 1 <= ef_search <= _MAX_EF_SEARCH:
            raise ValueError(f"ef_search must be 1..{_MAX_EF_SEARCH}, got {ef_search}")
        self.url = url
        self.dimension = dimension
        self.ef_search = ef_search
        self.pool = ConnectionPool(self._connect, usable=_usable, max_open=max_connections)
        self._stats: dict[str, tuple[float, int, float]] = {}  # table -> (when, rows, mean length)
        self._stats_lock = threading.Lock()
        with psycopg.connect(url, autocommit=True) as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                had = conn.execute("SELECT to_regclass('citeqa_terms') IS NOT NULL, "
                                   "to_regclass('citeqa_live_words') IS NOT NULL, "
                                   "EXISTS (SELECT 1 FROM pg_statistic_ext WHERE stxname = 'citeqa_versions_keys')"
                                   ).fetchone() or (True, True, True)
                for statement in _schema(dimension):
                    conn.execute(statement)
                if not had[0]:  # a database from before citeqa_terms
                    conn.execute(_COUNT_ALL_TERMS)
                if not had[1]:  # ... or before citeqa_live_words
                    conn.execute(_FILL_LIVE_WORDS)
                if not had[2]:  # ... or before the versions' key statistics: gather them now
                    conn.execute("ANALYZE citeqa_versions")
                row = conn.execute("SELECT value FROM citeqa_meta WHERE key = 'dimension'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO citeqa_meta VALUES ('dimension', %s)", (str(dimension),))
                else:
                    check_stored_dimension(row[0], dimension, "the database", "database")

    # -- connections -------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url, autocommit=True)
        register_vector(conn)
        # Searches filter nothing (the indexes are partial), but should the planner
        # ever add a filter, iterative scans keep going until k rows are found.
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn

    # -- writes (CheckedWrites calls _write) ---------------------------------------------

    def _write(self, items: Batch) -> list[bool]:
        """Every row once: a new version that ends the batch as its document's current one is
        inserted live, and its sentences active (COPY), after the document's previous live
        version was taken out of search in the same transaction. (Inserting rows inactive and
        then updating them active wrote every sentence twice, and its tsvector, index
        entries and a dead tuple with it.) A version stored before is made current as before."""
        originals = rows.originals(items)  # checked before anything is written; in SHA-256 order
        names = sorted({check_collection(doc.collection) for doc, _, _ in items})
        keys = [storage_key(doc.collection, doc.doc_id) for doc, _, _ in items]
        with self._transaction() as conn:
            self._enter_collections(conn, names)
            self._lock_documents(conn, keys)
            # Inserted in one order by every writer (after its document locks): two batches
            # bringing the same files wait for each other instead of deadlocking.
            if originals:
                with conn.cursor() as cur:
                    cur.executemany(_INSERT_ORIGINAL, list(originals.items()))
            # Read after the locks: no other writer of these documents runs until we commit.
            stored = {(key, version) for key, version in conn.execute(
                "SELECT v.doc_id, v.version FROM citeqa_versions v JOIN unnest(%s::text[], %s::text[]) "
                "AS w(doc_id, version) ON v.doc_id = w.doc_id AND v.version = w.version",
                (keys, [doc.version for doc, _, _ in items]))}
            final = {key: doc.version for key, (doc, _, _) in zip(keys, items, strict=True)}  # the last one wins
            created, new, delta = [], [], TermDelta()
            for key, item in zip(keys, items, strict=True):
                fresh = (key, item[0].version) not in stored
                created.append(fresh)
                if fresh:
                    stored.add((key, item[0].version))
                    new.append((key, item, final[key] == item[0].version))
            replaced = sorted({key for key, _, live in new if live})
            if replaced:  # their live versions leave search before the new ones arrive live
                self._count_terms(conn, delta, -1, "doc_id = ANY(%(keys)s)", {"keys": replaced})
                conn.execute("UPDATE citeqa_versions SET current = false, live = false "
                             "WHERE doc_id = ANY(%s) AND current", (replaced,))
                conn.execute("UPDATE citeqa_sentences SET active = false WHERE doc_id = ANY(%s) AND active",
                             (replaced,))
            self._insert_versions(conn, new)
            if replaced:  # the rows just inserted live
                self._count_terms(conn, delta, +1, "doc_id = ANY(%(keys)s)", {"keys": replaced})
            for key, version in final.items():
                if key not in replaced:  # the batch ends on a version stored before: make it current
                    self._switch_current(conn, key, version, delta)
            self._apply_terms(conn, delta)
        return created

    @staticmethod
    def _insert_versions(conn: psycopg.Connection,
                         new: Sequence[tuple[str, tuple[Document, Sequence[Sentence], np.ndarray], bool]]) -> None:
        """Insert new versions (key, item, live) and their sentences, each row as it stays:
        a live version current with its sentences active, any other neither."""
        if not new:
            return
        with conn.cursor() as cur:
            cur.executemany(_INSERT_LIVE_VERSION,
                            [(*rows.version_row(doc), live, live) for _, (doc, _, _), live in new])
            with cur.copy(_COPY_SENTENCES) as copy:
                copy.set_types(_SENTENCE_TYPES)
                for key, (doc, sentences, vectors), live in new:
                    for s, v in zip(sentences, vectors, strict=True):
                        mentions = rows.stored_mentions(s)
                        copy.write_row((key, doc.version, s.index, s.start, s.end, s.text,
                                        np.asarray(v, dtype=np.float32), live,
                                        None if mentions is None else Jsonb(mentions, dumps=_as_is)))

    @staticmethod
    def _enter_collections(conn: psycopg.Connection, names: Sequence[str]) -> None:
        """Inside a write to documents of ``names`` (sorted): hold each collection against
        a concurrent delete_collection (a shared lock; it takes the exclusive one), and
        create those that do not exist. Taken before any document lock, by every writer."""
        for name in names:
            conn.execute("SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 1))", (name,))
        with conn.cursor() as cur:
            cur.executemany(_INSERT_COLLECTION, [(name, time.time()) for name in names])

    @staticmethod
    def _lock_documents(conn: psycopg.Connection, keys: Sequence[str]) -> None:
        """Serialise writers of the same documents, by storage key (sorted: no deadlocks
        between batches)."""
        for key in sorted(set(keys)):
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

    def make_current(self, doc_id: str, version: str, collection: str = DEFAULT_COLLECTION) -> None:
        key = storage_key(collection, doc_id)
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM citeqa_versions WHERE doc_id = %s AND version = %s",
                            (key, version)).fetchone() is None:
                raise KeyError(f"{doc_id}@{version}")  # before reviving a deleted collection
            self._enter_collections(conn, [collection])  # a revived document's collection exists
            self._lock_documents(conn, [key])
            delta = TermDelta()
            self._switch_current(conn, key, version, delta)
            self._apply_terms(conn, delta)

    @staticmethod
    def _count_terms(conn: psycopg.Connection, delta: TermDelta, sign: int, where: str,
                     params: Mapping[str, Any]) -> None:
        """Add (sign +1) or take (-1) to ``delta`` the lexemes of the searchable sentences and
        live versions meeting ``where`` (on their own columns): called just after rows
        become searchable, or just before they stop being so."""
        for sql, versions in ((_SENTENCE_TERMS, False), (_VERSION_TERMS, True)):
            live = "v.live" if versions else "s.active"
            delta.add(conn.execute(sql.format(where=f"{live} AND {where}"), params).fetchall(), sign,
                      versions=versions)

    @staticmethod
    def _apply_terms(conn: psycopg.Connection, delta: TermDelta) -> None:
        """A write transaction's last statement: its changes to citeqa_terms."""
        lexemes, sentences, versions = delta.rows()
        if lexemes:
            conn.execute(_APPLY_TERMS, (lexemes, sentences, versions))

    def _switch_current(self, conn: psycopg.Connection, doc_id: str, version: str, delta: TermDelta) -> None:
        """Inside a transaction: make ``version`` of the document filed under ``doc_id`` (a
        storage key) the live one (reviving a deleted document)."""
        row = conn.execute(
            "SELECT id, live FROM citeqa_versions WHERE doc_id = %s AND version = %s", (doc_id, version)
        ).fetchone()
        if row is None:
            raise KeyError(f"{doc_id}@{version}")
        version_id, live = row
        if live:
            return  # already the searchable version
        self._deactivate(conn, doc_id, delta)
        conn.execute(
            "UPDATE citeqa_versions SET current = false WHERE doc_id = %s AND current AND id <> %s",
            (doc_id, version_id),
        )
        conn.execute("UPDATE citeqa_versions SET current = true, live = true WHERE id = %s", (version_id,))
        conn.execute(
            "UPDATE citeqa_sentences SET active = true WHERE doc_id = %s AND version = %s", (doc_id, version)
        )
        self._count_terms(conn, delta, +1, "doc_id = %(key)s AND version = %(version)s",
                          {"key": doc_id, "version": version})

    @classmethod
    def _deactivate(cls, conn: psycopg.Connection, doc_id: str, delta: TermDelta) -> bool:
        """Take a document's live version out of search; False if it had none."""
        cls._count_terms(conn, delta, -1, "doc_id = %(key)s", {"key": doc_id})
        cur = conn.execute("UPDATE citeqa_versions SET live = false WHERE doc_id = %s AND live", (doc_id,))
        conn.execute("UPDATE citeqa_sentences SET active = false WHERE doc_id = %s AND active", (doc_id,))
        return bool(cur.rowcount)

    def delete(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> bool:
        key = storage_key(collection, doc_id)
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 1))", (collection,))
            self._lock_documents(conn, [key])
            delta = TermDelta()
            deleted = self._deactivate(conn, key, delta)
            self._apply_terms(conn, delta)
            return deleted

    # -- collections ---------------------------------------------------------------------

    def create_collection(self, name: str) -> bool:
        check_collection(name)
        with self.pool.connection() as conn:
            return bool(conn.execute(_INSERT_COLLECTION, (name, time.time())).rowcount)

    def delete_collection(self, name: str) -> int:
        with self._transaction() as conn:
            # Exclusive: no write to this collection runs meanwhile (each holds it shared).
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (name,))
            if conn.execute(_READS.has_collection, {"name": name}).fetchone() is None:
                raise KeyError(name)
            keys = [key for (key,) in conn.execute(
                f"SELECT doc_id FROM citeqa_versions WHERE live AND {_collection_sql('doc_id', name)}",
                {"prefix": key_prefix(name)})]
            self._lock_documents(conn, keys)
            delta = TermDelta()
            self._count_terms(conn, delta, -1, "doc_id = ANY(%(keys)s)", {"keys": keys})
            conn.execute("UPDATE citeqa_versions SET live = false WHERE live AND doc_id = ANY(%s)", (keys,))
            conn.execute("UPDATE citeqa_sentences SET active = false WHERE active AND doc_id = ANY(%s)", (keys,))
            self._apply_terms(conn, delta)
            if name != DEFAULT_COLLECTION:
                conn.execute("DELETE FROM citeqa_collections WHERE name = %s", (name,))
        return len(keys)

    def store_mentions(self, found: Sequence[tuple[Sentence, Sequence[Mention]]]) -> None:
        """Record the mentions of sentences stored without them (by their keys), one transaction."""
        with self._transaction() as conn, conn.cursor() as cur:
            cur.executemany(
                "UPDATE citeqa_sentences SET mentions = %s::jsonb WHERE id = %s AND mentions IS NULL",
                [(rows.mentions_value(m), s.key) for s, m in found],
            )

    def set_flag(self, key: str, value: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO citeqa_flags VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- reads: documents (SqlReads runs _READS) -----------------------------------------

    def _fetch(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _vector(self, stored: Any) -> np.ndarray:
        """pgvector's adapter gives a ``Vector`` or an ndarray."""
        if hasattr(stored, "to_numpy"):
            stored = stored.to_numpy()
        return np.asarray(stored, dtype=np.float32)

    def _list(self, values: list[Any]) -> list[Any]:
        return values

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        # The reads inside borrow this same connection: the pool lends a thread one at a time.
        with self.pool.connection() as conn, conn.transaction():
            yield

    # -- DenseIndex ----------------------------------------------------------------------

    def dense_search(self, vector: np.ndarray, k: int, scope: Scope = DEFAULT_SCOPE) -> list[Scored]:
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32)
        with self.pool.connection() as conn, conn.transaction():
            # ef_search bounds how many rows one HNSW scan returns; iterative scans go past it.
            ef_search = min(_MAX_EF_SEARCH, max(self.ef_search, k))
            conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef_search),))
            found = self._dense(conn, query, k, scope)
        return [Scored(rows.sentence(r), 1.0 - float(r[_SCORE])) for r in found]

    @staticmethod
    def _whole(conn: psycopg.Connection, scope: Scope) -> bool:
        """True when ``scope`` is every searchable row: default, unfiltered, and no live
        document elsewhere (one index probe). Searches then test nothing, as before
        collections (the test cost 5-20% of a lexical search's time on 5,000 sentences)."""
        if scope.filtered or scope.collection != DEFAULT_COLLECTION:
            return False
        named = conn.execute(_NAMED_LIVE_SQL).fetchone()
        return named is not None and not named[0]

    @staticmethod
    def _few_keys(conn: psycopg.Connection, where: str, params: Mapping[str, Any]) -> list[str] | None:
        """The storage keys of the live versions meeting ``where`` (on ``v``), if there are
        at most EXACT_SEARCH_DOCUMENTS of them."""
        found = conn.execute(_SCOPE_KEYS_SQL.format(where=where), {**params, "cap": EXACT_SEARCH_DOCUMENTS + 1})
        keys = [key for (key,) in found]
        return keys if len(keys) <= EXACT_SEARCH_DOCUMENTS else None

    @classmethod
    def _dense(cls, conn: psycopg.Connection, query: np.ndarray, k: int, scope: Scope) -> list[Any]:
        if cls._whole(conn, scope):
            # relaxed_order may return rows slightly out of order: the statement re-sorts
            # the materialised candidates (pgvector's pattern).
            return conn.execute(DENSE_SEARCH_SQL, {"q": query, "k": k}).fetchall()
        exact, exact_params = _scope_sql(scope, on_versions=True)
        exact_params.update(q=query, k=k)
        keys = cls._few_keys(conn, exact, exact_params)
        where, params = _scope_sql(scope, on_versions=False)
        if keys is not None:
            return conn.execute(_exact_among_sql(where), {**params, "q": query, "k": k, "few_keys": keys}).fetchall()
        found = conn.execute(_dense_sql(where), {**params, "q": query, "k": k}).fetchall()
        if len(found) == k:
            return found
        # A wide scope far from the query: the scan gave up first (hnsw.max_scan_tuples).
        return conn.execute(_exact_dense_sql(exact), exact_params).fetchall()

    # -- LexicalIndex --------------------------------------------------------------------

    def lexical_search(self, query: str, k: int, scope: Scope = DEFAULT_SCOPE) -> list[Scored]:
        return [Scored(rows.sentence(r), float(r[_SCORE])) for r in self._bm25(_SENTENCES, query, k, scope)]

    def lexical_document_search(self, query: str, k: int, scope: Scope = DEFAULT_SCOPE) -> list[tuple[str, float]]:
        return [(split_key(key)[1], float(score)) for key, score in self._bm25(_DOCUMENTS, query, k, scope)]

    def _bm25(self, lexical: _LexicalTable, query: str, k: int, scope: Scope) -> list[tuple[Any, ...]]:
        """The k best rows of ``lexical`` in ``scope``. BM25's statistics (row count, mean
        length, document frequencies) are the whole store's, whatever the scope."""
        words = query_words(query)
        if not words or k <= 0:
            return []
        with self.pool.connection() as conn:
            rows, mean_length = self._collection(conn, lexical)
            # Rarest first: the order pruning reads them in (index/postgres_lexical.py).
            found = sorted(((df, word, tsquery) for word, tsquery, df
                            in conn.execute(lexical.document_frequency_sql, (words,)) if df > 0),
                           key=lambda f: (f[0], f[1]))
            if not found:
                return []
            n = max(rows, max(df for df, _, _ in found))  # the cached count may lag behind
            # FTS5's IDF: log((N - df + 0.5) / (df + 0.5)), floored just above zero.
            idf = [max(1e-6, float(np.log((n - df + 0.5) / (df + 0.5)))) for df, _, _ in found]
            where, params = self._lexical_scope(conn, lexical, scope)
            if where == "true" and lexical.whole_store is not None:
                lexical = lexical.whole_store
            params = {**params, "words": [word for _, word, _ in found], "idf": idf, "k": k,
                      "k1": BM25_K1, "b": BM25_B, "avglen": max(mean_length, 1.0)}
            queries = [tsquery for _, _, tsquery in found]
            scored = {**{f"q{i}": q for i, q in enumerate(queries)}, **{f"idf{i}": v for i, v in enumerate(idf)}}
            bounds = [upper_bound(i, BM25_K1, BM25_B) for i in idf]
            frequencies = [df for df, _, _ in found]
            budget = self.seed_budget_rows
            prefix = first_prefix(frequencies, budget)
            paired = prefix  # the words [prefix, paired) have pair queries in this search
            read = 0  # without pairs: the seed words whose rows earlier passes scored
            best: list[tuple[Any, ...]] = []
            while True:
                # tsqueries as PostgreSQL printed them, so their text parses back as they were.
                # With pairs a pass reads every seed's rows again (its pair rows are not kept).
                seeds = unread_rows(queries, 0 if lexical.pairs else read, prefix)
                pairs = pair_queries(queries, prefix, paired)
                paired_params = {f"pair{i}": q for i, q in enumerate(pairs)}
                more = self._seeded(conn, lexical, where, len(queries),
                                    {**params, **scored, "seeds": seeds, **paired_params}, len(pairs))
                best = more if lexical.pairs else _top(best + more, k)
                read = prefix
                if prefix == len(found):  # every match was a candidate
                    return best
                if len(best) < k:
                    # No k-th score to rule words out yet. Over the whole store: seeds holding
                    # four times the rows. In a scope most seed rows may lie outside it, and
                    # a pass per word cost more than one pass over every match (bench-scale's
                    # 1% filter at 100k: lexical p50 233 ms stepping, vs 133 ms scoring all).
                    budget *= 4
                    prefix = len(found) if where != "true" else max(prefix + 1, first_prefix(frequencies, budget))
                    paired = prefix
                    continue
                threshold = float(best[-1][-1])
                needed = needed_prefix(bounds, threshold)
                if needed <= prefix:  # no row without a seed word can reach the k-th score
                    return best
                if not lexical.pairs:
                    # One more word per pass: each row is read once, and every pass may raise
                    # the k-th score and so end the search sooner.
                    prefix += 1
                    continue
                if paired > prefix:  # rows holding two of the other words were candidates
                    if bounds[prefix] < threshold:  # and one word alone reaches no k-th score
                        return best
                    prefix = min(needed, prefix + reaching_alone(bounds, prefix, threshold))
                paired = needed

    @staticmethod
    def _seeded(conn: psycopg.Connection, lexical: _LexicalTable, where: str, words: int,
                params: dict[str, Any], pairs: int = 0) -> list[tuple[Any, ...]]:
        sql = lexical.seeded_sql(where, words, pairs)
        if not lexical.toasted:
            return conn.execute(sql, params).fetchall()
        # The planner prices a sequential scan without the detoasting its filter costs on
        # every row: it chose one for a third of the documents (590 ms for 40k of 125k at
        # 1M sentences) over the GIN bitmap, which needs no tsvector to pick rows (39 ms).
        with conn.transaction():
            conn.execute("SELECT set_config('enable_seqscan', 'off', true)")
            return conn.execute(sql, params).fetchall()

    def _lexical_scope(self, conn: psycopg.Connection, lexical: _LexicalTable,
                       scope: Scope) -> tuple[str, dict[str, Any]]:
        """The WHERE condition (and parameters) a lexical search of ``scope`` adds: none for
        the whole store; the scope's keys when it holds a few documents (the planner then
        reads their rows by key instead of testing every match: 470 -> 25 ms for a
        20-document collection among 100k sentences); else the scope's test of each match."""
        if self._whole(conn, scope):
            return "true", {}
        keys = self._few_keys(conn, *_scope_sql(scope, on_versions=True))
        where, params = _scope_sql(scope, lexical.on_versions)
        if keys is not None:  # the scope's test too: a document may have changed since
            return f"{lexical.alias}.doc_id = ANY(%(few_keys)s) AND {where}", {**params, "few_keys": keys}
        return where, params

    def _collection(self, conn: psycopg.Connection, lexical: _LexicalTable) -> tuple[int, float]:
        """(searchable rows, their mean length), refreshed every STATS_TTL_S."""
        with self._stats_lock:
            cached = self._stats.get(lexical.table)
        if cached is not None and time.monotonic() - cached[0] < STATS_TTL_S:
            return cached[1], cached[2]
        # An aggregate always returns its one row ("or" only tells the type checker so).
        count, mean = conn.execute(lexical.stats_sql).fetchone() or (0, None)
        stats = (time.monotonic(), int(count), float(mean or 1.0))
        with self._stats_lock:
            self._stats[lexical.table] = stats
        return stats[1], stats[2]

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self.pool.close()

