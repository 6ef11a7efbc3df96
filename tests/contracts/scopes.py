"""The collections and scopes contract: every search keeps to its Scope, every read to its collection.

A collection is a name (index/scope.py); the same doc_id in two collections is two
documents. A search runs inside one Scope (a collection, optionally narrowed by doc_ids
and metadata conditions) and returns only what ``Scope.admits`` accepts, and k hits
whenever the scope holds k, however small a part of the store it is. The property test
at the end checks a backend's filter SQL against ``Scope.admits`` on random metadata.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citeqa.index.scope import DEFAULT_COLLECTION, KEY_SEPARATOR, InvalidScope, Scope, scope_from_request
from citeqa.index.types import DocumentStore, Scored
from tests.contracts.backend import BackendFixtures
from tests.contracts.samples import (
    ORIGINAL,
    OTHER_TEXT,
    STORM,
    V1_TEXT,
    V2_TEXT,
    WHALES,
    Stored,
    build,
    source_of,
    texts,
    vector,
)

NEWS = "news"


_EXAMPLES = itertools.count()
# Few keys and values, many of them alike in one way or another (1, 1.0, true, "1",
# "true"; dates and date-times), so random filters often meet values of another kind.
_KEYS = ["a", "c d"]
_SCALARS = st.sampled_from([0, 1, 1.0, 2.5, True, False, None, "1", "true", "", "2024-01-01", "2024-01-15T10:00:00"])
_VALUES = _SCALARS | st.lists(_SCALARS, max_size=2)
_NUMBERS = st.sampled_from([0, 1, 2, -3, 1.0, 1.5, 2.5])
_DATES = st.sampled_from(["2024-01-01", "2024-01-15", "2024-02-01T10:00:00", "2023-12-31"])


def _range(bounds: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), bounds, min_size=1, max_size=2)


_ALIKE = [1, 1.0, True, "1", "true", "1.0", 0, 0.0, False, None, "0", "false", "null", ""]


def _look_alikes(filters: dict[str, Any]) -> list[Any]:
    """The scalars ``filters`` name (in values, lists and bounds), their text, and values
    that look like one another in another JSON kind."""
    found: list[Any] = []
    for value in filters.values():
        parts = value.values() if isinstance(value, dict) else [value]
        for part in parts:
            found.extend(part if isinstance(part, list) else [part])
    return found + [str(v) for v in found] + _ALIKE


_FILTERS = (_SCALARS | st.lists(_SCALARS, min_size=1, max_size=3) | _range(_NUMBERS) | _range(_DATES)
            | st.builds(lambda v: {"eq": v}, _SCALARS) | st.builds(lambda v: {"in": v}, st.lists(_SCALARS, min_size=1,
                                                                                              max_size=3)))


def put_in(store: DocumentStore, collection: str, doc_id: str, text: str, **kwargs: Any) -> Stored:
    """``samples.put`` into ``collection``."""
    item = build(doc_id, text, **kwargs)
    doc = dataclasses.replace(item.doc, collection=collection)
    sentences = [dataclasses.replace(s, collection=collection) for s in item.sentences]
    store.put(doc, sentences, item.vectors)
    return Stored(doc, sentences, item.vectors)


def doc_ids(results: list[Scored]) -> set[str]:
    return {r.sentence.doc_id for r in results}


def every_search(store: Any, scope: Scope, query: str = "report", k: int = 1000) -> list[set[str]]:
    """The doc_ids dense, lexical and document search return in ``scope`` (k: all of them)."""
    return [doc_ids(store.dense_search(vector(query), k, scope)), doc_ids(store.lexical_search(query, k, scope)),
            {d for d, _ in store.lexical_document_search(query, k, scope)}]


def assert_bare(results: list[Scored], collection: str) -> None:
    for r in results:
        assert KEY_SEPARATOR not in r.sentence.doc_id
        assert r.sentence.collection == collection


class ScopeContract(BackendFixtures):
    # -- collections -------------------------------------------------------------------

    def test_default_is_always_listed_with_live_document_counts(self, store):
        assert [(c.name, c.documents) for c in store.collections()] == [(DEFAULT_COLLECTION, 0)]
        assert store.has_collection(DEFAULT_COLLECTION) and not store.has_collection(NEWS)
        put_in(store, DEFAULT_COLLECTION, "a", V1_TEXT)
        put_in(store, NEWS, "a", V1_TEXT)
        put_in(store, NEWS, "b", OTHER_TEXT)
        put_in(store, NEWS, "b", V2_TEXT)  # a second version is still one document
        assert [(c.name, c.documents) for c in store.collections()] == [(DEFAULT_COLLECTION, 1), (NEWS, 2)]
        assert store.delete("a", collection=NEWS)
        assert [(c.name, c.documents) for c in store.collections()] == [(DEFAULT_COLLECTION, 1), (NEWS, 1)]
        assert all(c.created_at > 0 for c in store.collections())

    def test_create_collection_and_put_creates_one(self, store):
        assert store.create_collection("empty") is True
        assert store.create_collection("empty") is False
        assert store.has_collection("empty")
        assert {c.name: c.documents for c in store.collections()} == {DEFAULT_COLLECTION: 0, "empty": 0}
        put_in(store, "made.by-put_1", "doc", V1_TEXT)
        assert store.has_collection("made.by-put_1")
        assert store.create_collection("made.by-put_1") is False
        with pytest.raises(InvalidScope):
            store.create_collection("no spaces")
        assert [c.name for c in store.collections()] == [DEFAULT_COLLECTION, "empty", "made.by-put_1"]

    def test_delete_collection_takes_its_documents_out_and_keeps_versions(self, store):
        with pytest.raises(KeyError):
            store.delete_collection("nowhere")
        kept = put_in(store, DEFAULT_COLLECTION, "doc", V1_TEXT)
        gone = put_in(store, NEWS, "doc", V1_TEXT)
        put_in(store, NEWS, "other", OTHER_TEXT)
        put_in(store, NEWS, "dead", V2_TEXT)
        store.delete("dead", collection=NEWS)
        assert store.delete_collection(NEWS) == 2  # live ones only
        assert not store.has_collection(NEWS)
        assert [c.name for c in store.collections()] == [DEFAULT_COLLECTION]
        assert store.document("doc", collection=NEWS) is None
        assert store.list_documents(10, 0, collection=NEWS).total == 0
        assert store.dense_search(vector(STORM), 50, Scope(NEWS)) == []
        assert store.lexical_search("storms croissants", 50, Scope(NEWS)) == []
        assert store.lexical_document_search("storms croissants", 50, Scope(NEWS)) == []
        # Versions stay readable by version; the default document is untouched.
        old = store.document("doc", gone.doc.version, collection=NEWS)
        assert old is not None and old.text == V1_TEXT and not old.current and old.collection == NEWS
        assert store.document("doc").version == kept.doc.version
        assert texts(store.dense_search(vector(STORM), 1)) == [STORM]
        assert store.sentence_count() == len(kept.sentences)
        with pytest.raises(KeyError):
            store.delete_collection(NEWS)
        # Writing to it again makes it anew.
        put_in(store, NEWS, "doc", V2_TEXT)
        assert {c.name: c.documents for c in store.collections()} == {DEFAULT_COLLECTION: 1, NEWS: 1}

    def test_deleting_default_empties_it_but_it_stays(self, store):
        put_in(store, DEFAULT_COLLECTION, "a", V1_TEXT)
        put_in(store, DEFAULT_COLLECTION, "b", OTHER_TEXT)
        put_in(store, NEWS, "a", V1_TEXT)
        assert store.delete_collection(DEFAULT_COLLECTION) == 2
        assert {c.name: c.documents for c in store.collections()} == {DEFAULT_COLLECTION: 0, NEWS: 1}
        assert store.document("a") is None and store.list_documents(10, 0).total == 0
        assert store.dense_search(vector(STORM), 10) == []
        assert doc_ids(store.dense_search(vector(STORM), 10, Scope(NEWS))) == {"a"}
        assert store.delete_collection(DEFAULT_COLLECTION) == 0

    # -- the same doc_id in two collections ----------------------------------------------

    def test_the_same_doc_id_in_two_collections_is_two_documents(self, store):
        home = put_in(store, DEFAULT_COLLECTION, "doc", V1_TEXT)
        news = put_in(store, NEWS, "doc", V2_TEXT, source=source_of(ORIGINAL), original=ORIGINAL)
        same = put_in(store, NEWS, "twin", OTHER_TEXT)
        elsewhere = [dataclasses.replace(x, collection="other") for x in same.sentences]
        # The same version of the same doc_id is stored again in another collection.
        assert store.put(dataclasses.replace(same.doc, collection="other"), elsewhere, same.vectors) is True
        found = store.document("doc")
        assert (found.text, found.collection, found.doc_id) == (V1_TEXT, DEFAULT_COLLECTION, "doc")
        found = store.document("doc", collection=NEWS)
        assert (found.text, found.collection, found.doc_id) == (V2_TEXT, NEWS, "doc")
        assert store.document("doc", home.doc.version, collection=NEWS) is None
        assert store.document("doc", news.doc.version) is None
        assert [s.text for s in store.sentences("doc", news.doc.version, collection=NEWS)] == \
            [s.text for s in news.sentences]
        assert {s.collection for s in store.sentences("doc", news.doc.version, collection=NEWS)} == {NEWS}
        assert store.sentences("doc", news.doc.version) == []
        assert store.original("doc", news.doc.version, collection=NEWS) == ORIGINAL
        assert store.original("doc", news.doc.version) is None
        listed = store.list_documents(10, 0, collection=NEWS)
        assert listed.total == 2
        assert [(d.doc_id, d.collection) for d in listed.documents] == [("doc", NEWS), ("twin", NEWS)]
        assert [(d.doc_id, d.collection) for d in store.list_documents(10, 0).documents] == \
            [("doc", DEFAULT_COLLECTION)]
        assert set(store.vectors_by_text("doc", "", collection=NEWS)) == {s.text for s in news.sentences}
        assert set(store.vectors_by_text("doc", "")) == {s.text for s in home.sentences}
        current = store.current_sentences(["doc", "twin"], collection=NEWS)
        assert [(s.doc_id, s.text, s.collection) for s in current] == \
            [("doc", s.text, NEWS) for s in news.sentences] + [("twin", s.text, NEWS) for s in same.sentences]
        assert [s.text for s in store.current_sentences(["doc", "twin"])] == [s.text for s in home.sentences]
        # delete and make_current name their collection.
        with pytest.raises(KeyError):
            store.make_current("doc", news.doc.version)
        assert store.delete("doc", collection=NEWS) is True
        assert store.delete("doc", collection=NEWS) is False
        assert store.document("doc", collection=NEWS) is None and store.document("doc").text == V1_TEXT
        store.make_current("doc", news.doc.version, collection=NEWS)
        assert store.document("doc", collection=NEWS).text == V2_TEXT
        assert store.document("doc").text == V1_TEXT

    def test_searches_keep_to_their_collection(self, store):
        home = put_in(store, DEFAULT_COLLECTION, "doc", V1_TEXT)
        put_in(store, NEWS, "doc", V1_TEXT)  # the same text, so the same vectors
        put_in(store, NEWS, "other", OTHER_TEXT)
        default = store.dense_search(vector(STORM), 50)
        assert len(default) == len(home.sentences) and doc_ids(default) == {"doc"}
        assert_bare(default, DEFAULT_COLLECTION)
        assert store.dense_search(vector(STORM), 50, Scope()) == default
        news = store.dense_search(vector(STORM), 50, Scope(NEWS))
        assert len(news) == len(home.sentences) + 2 and doc_ids(news) == {"doc", "other"}
        assert_bare(news, NEWS)
        assert news[0].sentence.text == STORM and news[0].score == pytest.approx(1.0, abs=1e-4)
        lexical = store.lexical_search("storms", 10, Scope(NEWS))
        assert texts(lexical) == [STORM]
        assert_bare(lexical, NEWS)
        assert_bare(store.lexical_search("storms", 10), DEFAULT_COLLECTION)
        assert store.lexical_search("croissants", 10) == []
        assert {d for d, _ in store.lexical_document_search("croissants storms", 10, Scope(NEWS))} == {"doc", "other"}
        assert [d for d, _ in store.lexical_document_search("croissants storms", 10)] == ["doc"]
        assert store.dense_search(vector(STORM), 50, Scope("unknown")) == []

    def test_dense_scores_find_each_sentence_in_its_own_collection(self, store):
        home = put_in(store, DEFAULT_COLLECTION, "doc", V1_TEXT)
        news = put_in(store, NEWS, "doc", V2_TEXT)
        query = vector(WHALES)
        ours = store.sentences("doc", news.doc.version, collection=NEWS)
        scores = store.dense_scores(query, ours)
        np.testing.assert_allclose(scores, news.vectors @ query, atol=1e-5)
        assert max(scores) == pytest.approx(1.0, abs=1e-4)
        # The same (doc_id, index) named in default: default's vectors.
        theirs = [dataclasses.replace(s, collection=DEFAULT_COLLECTION, key=-1) for s in ours]
        np.testing.assert_allclose(store.dense_scores(query, theirs), home.vectors[:len(theirs)] @ query, atol=1e-5)
        store.delete_collection(NEWS)
        assert store.dense_scores(query, [dataclasses.replace(s, key=-1) for s in ours]) == [0.0] * len(ours)

    # -- filters -------------------------------------------------------------------------

    def test_a_tiny_scope_still_gets_k_hits(self, store):
        """60 documents whose sentences are all nearer the query (and richer in its words)
        than the one document in scope: a filter applied after a fixed-size search would
        return nothing; the scope's own sentences must come back."""
        query = "storm warning issued for the northern coast"
        for n in range(60):
            put_in(store, DEFAULT_COLLECTION, f"near-{n}", " ".join(
                f"Storm warning {n} issued for the northern coast, section {i}." for i in range(5)),
                metadata={"team": "red"})
        target = "Bakers rise before dawn. Croissants need cold butter. A storm is rare here. Bread daily."
        far = put_in(store, DEFAULT_COLLECTION, "target", target, metadata={"team": "blue"})
        put_in(store, "tiny", "target", target)
        k = 3
        scopes = [Scope(doc_ids=frozenset({"target"})), scope_from_request(None, metadata={"team": "blue"}),
                  Scope("tiny"), scope_from_request("tiny", ["target", "near-1"])]
        for scope in scopes:
            dense = store.dense_search(vector(query), k, scope)
            assert len(dense) == k and doc_ids(dense) == {"target"}, scope
            scores = [h.score for h in dense]
            assert scores == sorted(scores, reverse=True)
            exact = sorted(far.vectors @ vector(query), reverse=True)[:k]
            np.testing.assert_allclose(scores, exact, atol=1e-4)
            lexical = store.lexical_search("storm warning northern coast", k, scope)
            assert texts(lexical) == ["A storm is rare here."], scope
            assert [d for d, _ in store.lexical_document_search(query, k, scope)] == ["target"]
        # Fewer than k only when the scope holds fewer (4 + 5 sentences).
        assert len(store.dense_search(vector(query), 10, Scope(doc_ids=frozenset({"target", "near-7"})))) == 9

    def test_doc_ids_filter(self, store):
        for name in "abc":
            put_in(store, DEFAULT_COLLECTION, name, f"Report {name}: {OTHER_TEXT}")
        put_in(store, NEWS, "d", f"Report d: {OTHER_TEXT}")
        assert every_search(store, Scope(doc_ids=frozenset({"a", "c"}))) == [{"a", "c"}] * 3
        assert every_search(store, Scope(doc_ids=frozenset({"a", "d", "zz"}))) == [{"a"}] * 3
        assert every_search(store, Scope(NEWS, frozenset({"a", "d"}))) == [{"d"}] * 3
        assert every_search(store, Scope(doc_ids=frozenset())) == [set()] * 3

    def test_metadata_conditions_mean_what_scope_admits_says(self, store):
        metadata = {
            "n1": {"year": 2020, "tag": "x", "flag": True, "date": "2024-05-01", "nothing": None, "one": 1},
            "n2": {"year": 2021.5, "tag": "y", "flag": False, "date": "2024-06-15T08:00:00", "one": True},
            "n3": {"year": "2020", "tag": ["x"], "flag": "true", "date": 20240701, "one": "1", "nothing": 0},
            "n4": {"other": {"year": 2020}},
        }
        for doc_id, found in metadata.items():
            put_in(store, DEFAULT_COLLECTION, doc_id, f"Report {doc_id} on the harbour.", metadata=found)
            put_in(store, NEWS, doc_id, f"Report {doc_id} on the harbour.", metadata={})  # never in a default scope
        cases: list[tuple[dict[str, Any], set[str]]] = [
            ({"year": 2020}, {"n1"}),
            ({"year": 2020.0}, {"n1"}),  # JSON: 1 equals 1.0
            ({"year": "2020"}, {"n3"}),
            ({"year": {"gte": 2020, "lt": 2021}}, {"n1"}),  # the string "2020" is no number
            ({"year": {"gt": 2020}}, {"n2"}),
            ({"year": {"gte": 2021.5, "lte": 2021.5}}, {"n2"}),
            ({"year": {"in": [2020, 2021.5]}}, {"n1", "n2"}),
            ({"date": {"gte": "2024-05-01", "lt": "2024-06-01"}}, {"n1"}),
            ({"date": {"gt": "2024-06-15"}}, {"n2"}),  # the number 20240701 is no date
            ({"one": 1}, {"n1"}),
            ({"one": True}, {"n2"}),
            ({"one": "1"}, {"n3"}),
            ({"flag": False}, {"n2"}),
            ({"flag": {"in": [True, False]}}, {"n1", "n2"}),
            ({"nothing": None}, {"n1"}),  # null matches null, not a missing key
            ({"nothing": {"eq": 0}}, {"n3"}),
            ({"tag": ["x", "y"]}, {"n1", "n2"}),  # a list value equals no scalar
            ({"tag": "x", "year": 2020}, {"n1"}),
            ({"tag": "x", "year": 2021.5}, set()),
            ({"missing": 1}, set()),
            ({"year": {"lt": 0}}, set()),
        ]
        for filters, expected in cases:
            scope = scope_from_request(None, metadata=filters)
            assert {d for d, found in metadata.items() if scope.admits(d, found)} == expected, filters
            assert every_search(store, scope) == [expected] * 3, filters
            assert every_search(store, scope_from_request(NEWS, metadata=filters)) == [set()] * 3, filters

    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors,
                                     HealthCheck.too_slow])
    @given(data=st.data())
    def test_a_scoped_search_returns_exactly_what_scope_admits(self, store, data):
        """Random metadata and filters: the documents a scoped search can return (k above
        every sentence) are exactly those ``Scope.admits`` accepts. The metadata is drawn
        mostly from the filter's own values and their look-alikes of other kinds (1, 1.0,
        true, "1"), so kinds meet often. Each example writes to a collection of its own,
        with the doc_ids the earlier ones used."""
        filters = data.draw(st.dictionaries(st.sampled_from(_KEYS), _FILTERS, min_size=1, max_size=2), "filters")
        values = st.sampled_from(_look_alikes(filters)) | _SCALARS
        documents = data.draw(st.lists(st.dictionaries(st.sampled_from(_KEYS), values | st.lists(values, max_size=2),
                                                       max_size=2), min_size=2, max_size=8), "metadata")
        doc_filter = data.draw(st.none() | st.lists(st.sampled_from(["d0", "d1", "d2", "d3", "zz"]), max_size=3))
        collection = f"h{next(_EXAMPLES)}"
        for n, found in enumerate(documents):
            put_in(store, collection, f"d{n}", f"Report number {n} of the harbour log.", metadata=found)
        scope = scope_from_request(collection, doc_filter, filters)
        expected = {f"d{n}" for n, found in enumerate(documents) if scope.admits(f"d{n}", found)}
        assert every_search(store, scope, "harbour report") == [expected] * 3

