"""A store seen through a scope: the retriever and everything that answers read only
the scope's collection and filter (index/scoped_view.py), and an embedded data directory
from before collections opens with everything in ``default``."""

from __future__ import annotations

import sqlite3

import pytest

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.ingest import DocumentInput, Ingestor
from citeqa.index.retriever import HybridRetriever
from citeqa.index.scope import Scope, scope_from_request
from citeqa.index.scoped_view import ScopedView
from tests.support.fake_embedder import DIMENSION, FakeEmbedder

FAKE = FakeEmbedder()
# Near-identical documents: the same sentences, other figures.
ALPHA = "The factory in Leeds employs 1,200 workers. It opened in 1998 beside the river."
BETA = "The factory in Leeds employs 3,400 workers. It opened in 2004 beside the river."


@pytest.fixture
def store(tmp_path):
    store = EmbeddedStore(tmp_path / "data", DIMENSION)
    ingest = Ingestor(store, FAKE)
    ingest.ingest(DocumentInput(ALPHA, doc_id="plant", title="Plant", metadata={"region": "north", "year": 1998},
                                collection="alpha"))
    ingest.ingest(DocumentInput(BETA, doc_id="plant", title="Plant", metadata={"region": "south", "year": 2004},
                                collection="beta"))
    ingest.ingest(DocumentInput(BETA.replace("Leeds", "York"), doc_id="other", title="Plant",
                                metadata={"region": "north", "year": 2010}, collection="beta"))
    yield store
    store.close()


def figures(hits) -> set[str]:
    return {word for h in hits for word in h.sentence.text.split() if word[0].isdigit()}


@pytest.mark.parametrize("collection, expected", [("alpha", {"1,200", "1998."}), ("beta", {"3,400", "2004."})])
def test_a_retriever_over_a_view_finds_only_its_collection(store, collection, expected):
    retriever = HybridRetriever(ScopedView(store, Scope(collection)), FAKE)
    hits = retriever.search("How many workers does the factory in Leeds employ?", 10)
    assert hits and {h.sentence.collection for h in hits} == {collection}
    assert figures(hits) & {"1,200", "3,400", "1998.", "2004."} <= expected
    assert retriever.search("factory workers", 10, context="Leeds")  # document search is scoped too


def test_reads_through_a_view_name_its_collection(store):
    alpha, beta = ScopedView(store, Scope("alpha")), ScopedView(store, Scope("beta"))
    assert alpha.document("plant").text == ALPHA and beta.document("plant").text == BETA
    assert alpha.document("other") is None
    version = beta.document("other").version
    assert alpha.sentences("other", version) == [] and alpha.original("other", version) is None
    assert [s.doc_id for s in alpha.current_sentences(["plant", "other"])] == ["plant", "plant"]
    assert alpha.document_info("plant", alpha.document("plant").version).title == "Plant"
    assert alpha.document_info("other", version) is None and beta.document_info("other", version).text == ""
    assert sorted(alpha.searchable_texts([("plant", 1), ("other", 0)])) == [
        ("plant", alpha.document("plant").version, 1, "It opened in 1998 beside the river.")]


def test_a_sentence_of_another_collection_scores_zero_through_a_view(store):
    beta_sentence = store.current_sentences(["plant"], "beta")[0]
    view = ScopedView(store, Scope("alpha"))
    vector = FAKE.encode([beta_sentence.text])[0]
    own = store.current_sentences(["plant"], "alpha")[0]
    assert view.dense_scores(vector, [beta_sentence, own])[0] == 0.0
    assert view.dense_scores(vector, [beta_sentence, own])[1] > 0.5  # the same words, other figure


def test_filters_narrow_a_collection_and_still_fill_k(store):
    view = ScopedView(store, scope_from_request("beta", metadata={"region": "north"}))
    hits = HybridRetriever(view, FAKE).search("factory workers river", 10)
    assert {h.sentence.doc_id for h in hits} == {"other"} and len(hits) == 2
    only = ScopedView(store, scope_from_request("beta", doc_ids=["plant"]))
    assert {s.doc_id for s in only.current_sentences(["plant", "other"])} == {"plant"}
    assert {d for d, _, _, _ in only.searchable_texts([("plant", 0), ("other", 0)])} == {"plant"}


def test_a_data_directory_from_before_collections_opens_with_everything_in_default(tmp_path):
    store = EmbeddedStore(tmp_path / "old", DIMENSION)
    Ingestor(store, FAKE).ingest(DocumentInput(ALPHA, doc_id="plant"))
    store.close()
    with sqlite3.connect(tmp_path / "old" / "citeqa.sqlite3") as conn:
        conn.execute("DROP TABLE collections")  # what a directory written before looked like
    reopened = EmbeddedStore(tmp_path / "old", DIMENSION)
    try:
        assert [(c.name, c.documents) for c in reopened.collections()] == [("default", 1)]
        assert reopened.document("plant").collection == "default"
        assert HybridRetriever(ScopedView(reopened, Scope()), FAKE).search("factory workers", 3)
    finally:
        reopened.close()
