"""The DenseIndex contract: cosine search over the searchable sentences, and exact cosines.

Most tests use the fake embedder's vectors (a sentence's own text finds it at cosine 1);
the ``real model`` tests use the real one, where what matters is meaning, not shared words.
"""

from __future__ import annotations

import numpy as np
import pytest

from citeqa.index.types import Document, DocumentStore, Sentence
from tests.contracts.backend import BackendFixtures
from tests.contracts.samples import DIMENSION, OTHER_TEXT, STORM, V1_TEXT, V2_TEXT, WHALES, keys, put, texts, vector


def fill_with_unsearchable_neighbours(store: DocumentStore, query: np.ndarray) -> None:
    """40 deleted versions of 50 sentences each right next to ``query`` (2,000 rows no
    search may return), and 30 searchable sentences far from it."""
    rng = np.random.default_rng(7)
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
    store.put(Document("far", "v1", "x" * 30), [Sentence("far", "v1", i, i, i + 1, "x") for i in range(30)], far)


class DenseIndexContract(BackendFixtures):
    def test_dense_search_finds_exact_sentence_first_with_sorted_scores(self, store):
        put(store, "doc", V1_TEXT)
        put(store, "other", OTHER_TEXT)
        results = store.dense_search(vector(STORM), 4)
        assert len(results) == 4
        assert results[0].sentence.text == STORM
        assert results[0].score == pytest.approx(1.0, abs=1e-4)
        scores = [r.score for r in results]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0001 <= s <= 1.0001 for s in scores)
        assert len(store.dense_search(vector(STORM), 100)) == store.sentence_count() == 6
        assert store.dense_search(vector(STORM), 0) == []

    def test_dense_search_on_empty_store(self, store):
        assert store.dense_search(vector("anything"), 5) == []

    def test_only_the_current_version_of_a_live_document_is_searched(self, store):
        v1 = put(store, "doc", V1_TEXT)
        assert STORM in texts(store.dense_search(vector(STORM), 3))
        v2 = put(store, "doc", V2_TEXT)
        dense = store.dense_search(vector(STORM), 50)
        assert {r.sentence.doc_version for r in dense} == {v2.doc.version}
        assert STORM not in texts(dense)
        store.make_current("doc", v1.doc.version)
        dense = store.dense_search(vector(STORM), 50)
        assert dense[0].sentence.text == STORM
        assert {r.sentence.doc_version for r in dense} == {v1.doc.version}
        put(store, "other", OTHER_TEXT)
        store.delete("doc")
        assert {r.sentence.doc_id for r in store.dense_search(vector(STORM), 50)} == {"other"}

    def test_search_still_returns_k_past_many_unsearchable_neighbours(self, store):
        query = vector(STORM)
        fill_with_unsearchable_neighbours(store, query)
        assert store.sentence_count() == 30
        hits = store.dense_search(query, 25)
        assert len(hits) == 25 and {h.sentence.doc_id for h in hits} == {"far"}
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        assert len(store.dense_search(query, 1000)) == 30

    def test_dense_scores_are_cosines_in_order(self, store):
        item = put(store, "doc", V1_TEXT)
        other = put(store, "other", OTHER_TEXT)
        query = vector("Bad weather hit the coast.")
        wanted = [other.sentences[1], item.sentences[2], item.sentences[0]]
        expected = [float(other.vectors[1] @ query), float(item.vectors[2] @ query), float(item.vectors[0] @ query)]
        # Sentences as ingest builds them (no backend key) and as the store reads them back.
        other_back, doc_back = store.sentences("other", other.doc.version), store.sentences("doc", item.doc.version)
        read_back = [other_back[1], doc_back[2], doc_back[0]]
        for sentences in (wanted, read_back):
            got = store.dense_scores(query, sentences)
            assert got == pytest.approx(expected, abs=1e-5)
            assert got[1] > got[0]  # the storm sentence shares words with the query; the croissants none
        assert store.dense_scores(query, []) == []

    def test_dense_scores_of_unsearchable_sentences_are_zero(self, store):
        v1 = put(store, "doc", V1_TEXT)
        old = store.sentences("doc", v1.doc.version)
        put(store, "doc", V2_TEXT)  # three sentences: doc:3 is searchable no more
        query = vector("Fishermen stayed in port.")
        assert store.dense_scores(query, [old[3], v1.sentences[3]]) == [0.0, 0.0]
        missing = Sentence("missing", "0123456789abcdef", 0, 0, 5, STORM)
        whale = [s for s in store.sentences("doc", store.document("doc").version) if s.text == WHALES]
        got = store.dense_scores(vector(WHALES), [missing, *whale])
        assert got[0] == 0.0 and got[1] == pytest.approx(1.0, abs=1e-4)

    # -- the real model --------------------------------------------------------------------

    def test_dense_search_finds_a_paraphrase_with_the_real_model(self, store, embedder):
        assert embedder.dimension == DIMENSION
        put(store, "doc", V1_TEXT, embedder)
        put(store, "other", OTHER_TEXT, embedder)
        # No word in common with the storm sentence: only meaning can find it.
        found = store.dense_search(vector("Gales lashed the shoreline through the cold months.", embedder), 3)
        assert found[0].sentence.text == STORM

    def test_dense_scores_are_the_real_models_cosines(self, store, embedder):
        item = put(store, "doc", V1_TEXT, embedder)
        query = vector("Bad weather hit the coast.", embedder)
        got = store.dense_scores(query, store.sentences("doc", item.doc.version))
        assert got == pytest.approx([float(v @ query) for v in item.vectors], abs=1e-5)
        hits = store.dense_search(query, 4)
        assert hits[0].sentence.text == STORM
        assert keys(hits) == {("doc", item.doc.version, i) for i in range(4)}
