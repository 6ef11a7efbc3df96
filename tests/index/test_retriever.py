"""Hybrid retrieval (dense + sentence BM25 + document BM25) with the real model, on the
seed article and on small corpora where meaning and words pull apart."""

from __future__ import annotations

from contextlib import closing

import pytest

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.ingest import DocumentInput, Ingestor
from citeqa.index.retriever import HybridRetriever, RetrievalSettings
from tests.support.corpus import TROOPS_QUESTION

TROOPS_FACT = "11,000 to 12,000"


@pytest.fixture
def store(tmp_path, embedder):
    with closing(EmbeddedStore(tmp_path / "data", embedder.dimension)) as store:
        yield store


@pytest.mark.parametrize("fusion", ["blend", "rrf"])
def test_troops_sentence_is_in_top_three(seeded, embedder, fusion):
    retriever = HybridRetriever(seeded, embedder, RetrievalSettings(fusion=fusion))
    hits = retriever.search(TROOPS_QUESTION, 3)
    assert len(hits) == 3
    assert any(TROOPS_FACT in h.sentence.text for h in hits), [h.sentence.text for h in hits]


def test_parallel_searches_give_the_same_pool(seeded, embedder):
    sequential = HybridRetriever(seeded, embedder).pool(TROOPS_QUESTION, 10, context="the Russian ambassador")
    parallel = HybridRetriever(seeded, embedder, RetrievalSettings(parallel_searches=True)).pool(
        TROOPS_QUESTION, 10, context="the Russian ambassador")
    assert parallel == sequential
    assert parallel.top_document > 0 and parallel.top_lexical > 0  # all three searches ran


@pytest.mark.parametrize("fusion", ["blend", "rrf"])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_hits_have_dense_scores_sorted_scores_and_respect_top_k(seeded, embedder, fusion, k):
    retriever = HybridRetriever(seeded, embedder, RetrievalSettings(fusion=fusion))
    hits = retriever.search(TROOPS_QUESTION, k)
    assert len(hits) == k
    assert len({h.sentence.id for h in hits}) == k
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    vector = embedder.encode([TROOPS_QUESTION])[0]
    for h in hits:
        assert h.dense_score is not None
        # dense_score is the real cosine of the question with the stored sentence.
        assert h.dense_score == pytest.approx(seeded.dense_scores(vector, [h.sentence])[0], abs=1e-4)
        doc = seeded.document(h.sentence.doc_id, h.sentence.doc_version)
        assert doc.text[h.sentence.start:h.sentence.end] == h.sentence.text


@pytest.mark.parametrize("fusion", ["blend", "rrf"])
def test_lexical_only_hits_get_their_real_dense_score(store, embedder, fusion):
    """A sentence found only by BM25 (outside the dense candidates) still carries its
    cosine, the support signal the answerer abstains on."""
    Ingestor(store, embedder).ingest_many([
        DocumentInput(doc_id="physics", text=(
            "Quantum mechanics describes particles as wave functions. "
            "Entanglement links the states of distant particles. "
            "Physicists measure spin along chosen axes."
        )),
        DocumentInput(doc_id="hall", text="The lecture hall was painted green. Its seats were replaced in May."),
    ])
    settings = RetrievalSettings(fusion=fusion, candidates=2, dense_weight=0.2, lexical_weight=0.8)
    hits = HybridRetriever(store, embedder, settings).search("a quantum physics lecture", 2)
    lexical_only = [h for h in hits if h.sentence.doc_id == "hall"]
    assert lexical_only, "the BM25-only sentence ranks in the top 2"
    vector = embedder.encode(["a quantum physics lecture"])[0]
    for h in hits:
        assert h.dense_score is not None, h
        assert h.dense_score == pytest.approx(store.dense_scores(vector, [h.sentence])[0], abs=1e-4)


def test_top_k_larger_than_the_collection(seeded, embedder):
    hits = HybridRetriever(seeded, embedder).search(TROOPS_QUESTION, 500)
    assert len(hits) == seeded.sentence_count()


def test_retrieval_skips_an_old_version(store, embedder):
    ingestor = Ingestor(store, embedder)
    ingestor.ingest(DocumentInput(text="The bridge opened in 1932. It carries six lanes.", doc_id="bridge"))
    new = ingestor.ingest(DocumentInput(text="The bridge opened in 1937. It carries eight lanes.", doc_id="bridge"))
    for fusion in ("blend", "rrf"):
        hits = HybridRetriever(store, embedder, RetrievalSettings(fusion=fusion)).search("When did the bridge open?", 5)
        assert {h.sentence.doc_version for h in hits} == {new.doc_version}
        assert "1937" in hits[0].sentence.text
