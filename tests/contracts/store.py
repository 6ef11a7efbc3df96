"""The contract every :class:`citeqa.index.types.Store` backend passes (Haystack-style mixins).

A backend's test module subclasses :class:`StoreContract` and provides the ``open_store``
fixture (:mod:`tests.contracts.backend`); every test of each role's contract then runs
against it, plus the tests here of how the roles stay in step: one write is visible to
every role at once, or to none.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np
import pytest

from citeqa.index.ingest import DocumentInput, Ingestor
from tests.contracts.concurrency import run_at_once
from tests.contracts.dense_index import DenseIndexContract
from tests.contracts.document_store import DocumentStoreContract
from tests.contracts.lexical_index import LexicalIndexContract
from tests.contracts.mentions import MentionContract
from tests.contracts.samples import OTHER_TEXT, STORM, V1_TEXT, V2_TEXT, WHALES, build, keys, put, texts, vector
from tests.contracts.scopes import ScopeContract
from tests.contracts.sources import SourceContract
from tests.support.fake_embedder import FakeEmbedder


class StoreContract(DocumentStoreContract, DenseIndexContract, LexicalIndexContract, MentionContract, SourceContract,
                    ScopeContract):
    def test_put_many_is_one_batch_and_the_last_version_of_a_doc_wins(self, store):
        v1, v2, other = build("doc", V1_TEXT), build("doc", V2_TEXT), build("other", OTHER_TEXT)
        store.put_many([(x.doc, x.sentences, x.vectors) for x in (v1, other, v2)])
        assert store.document("doc").version == v2.doc.version
        assert store.document("doc", v1.doc.version).text == V1_TEXT
        assert store.document("other").text == OTHER_TEXT
        found = store.dense_search(vector(STORM), 20)
        assert all(r.sentence.doc_version != v1.doc.version for r in found)
        assert {r.sentence.doc_id for r in found} == {"doc", "other"}
        assert store.lexical_search("storms battered", 10) == []
        assert texts(store.lexical_search("whales", 10)) == [WHALES]
        assert store.sentence_count() == len(v2.sentences) + len(other.sentences)

    def test_putting_the_same_version_twice_is_idempotent(self, store):
        item = put(store, "doc", OTHER_TEXT)
        count = store.sentence_count()
        store.put(item.doc, item.sentences, item.vectors)
        assert store.sentence_count() == count == 2
        hits = store.dense_search(item.vectors[0], 10)
        assert len(hits) == len(keys(hits)) == 2  # no duplicates
        assert len(store.lexical_search("croissants butter", 10)) == 1
        assert store.list_documents(10, 0).total == 1

    def test_a_refused_write_leaves_every_role_as_it_was(self, store):
        kept = put(store, "doc", V1_TEXT)
        new, bad = build("doc", V2_TEXT), build("bad", OTHER_TEXT)
        with pytest.raises(ValueError):
            store.put_many([(new.doc, new.sentences, new.vectors), (bad.doc, bad.sentences, bad.vectors[:, :-1])])
        assert store.document("doc").version == kept.doc.version
        assert texts(store.dense_search(vector(STORM), 1)) == [STORM]
        assert texts(store.lexical_search("storms", 5)) == [STORM]
        assert store.lexical_search("whales croissants", 5) == []
        assert [d for d, _ in store.lexical_document_search("storms", 5)] == ["doc"]

    def test_reopen_keeps_search_results(self, store, open_store):
        put(store, "doc", V1_TEXT)
        put(store, "doc", V2_TEXT)
        put(store, "other", OTHER_TEXT)
        queries = [STORM, WHALES, "croissants and butter", "lighthouse keeper"]
        dense = [store.dense_search(vector(q), 5) for q in queries]
        lexical = [store.lexical_search(q, 5) for q in queries]
        documents = [store.lexical_document_search(q, 5) for q in queries]
        store.close()
        again = open_store()
        assert [again.dense_search(vector(q), 5) for q in queries] == dense
        assert [again.lexical_search(q, 5) for q in queries] == lexical
        assert [again.lexical_document_search(q, 5) for q in queries] == documents

    def test_concurrent_identical_ingests_create_one_version(self, store):
        """16 clients post the same document at once, each finding nothing stored when it
        looks: one is told it created the version, the other fifteen that it was there."""
        embedder = AllAtOnce(16)  # every ingest has looked before any of them writes
        ingestor = Ingestor(store, embedder)
        results = run_at_once([lambda: ingestor.ingest(DocumentInput(text=V1_TEXT, doc_id="doc"))] * 16)
        assert sorted(r.created for r in results) == [False] * 15 + [True]
        expected = build("doc", V1_TEXT)
        assert {r.doc_version for r in results} == {store.document("doc").version} == {expected.doc.version}
        assert store.sentence_count() == len(store.sentences("doc", expected.doc.version)) == 4
        hits = store.dense_search(expected.vectors[1], 10)
        assert len(hits) == len(keys(hits)) == 4  # no sentence stored or indexed twice


class AllAtOnce(FakeEmbedder):
    """The fake embedder, which returns only once ``count`` threads are embedding."""

    def __init__(self, count: int):
        super().__init__()
        self._together = threading.Barrier(count)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self._together.wait(timeout=60)
        return super().encode(texts)
