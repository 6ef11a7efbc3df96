"""The contract every :class:`index.types.Store` backend passes (Haystack-style).

A backend's test module subclasses :class:`StoreContract` and provides the ``store``
fixture; every test here then runs against it. The tests use the real embedding model
(the session ``embedder`` fixture) so dense search is exercised with real vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citeqa.index.ingest import content_version
from citeqa.index.sentences import split_sentences
from citeqa.index.types import Document, DocumentPage, Scored, Sentence, Store

# Two versions of one document that share a first sentence index but say different
# things, and an unrelated document, so dense and lexical search can tell them apart.
V1_TEXT = (
    "Lighthouse Notes\n"
    "The lighthouse keeper painted the tower red. Storms battered the northern coast all winter.\r\n"
    "  Fishermen stayed in port for weeks.  "
)
V2_TEXT = (
    "Lighthouse Notes\n"
    "The lighthouse keeper painted the tower blue. Migrating whales passed the harbour in spring."
)
OTHER_TEXT = "Bakers in Lyon rise before dawn to make bread. Croissants need very cold butter."
UNICODE_TEXT = "Café crème — 東京の天気は晴れ。 Emoji 😀 stay put!\r\nRTL: שלום עולם. e\u0301nd."

STORM = "Storms battered the northern coast all winter."
WHALES = "Migrating whales passed the harbour in spring."


@dataclass(frozen=True)
class Stored:
    doc: Document
    sentences: list[Sentence]
    vectors: np.ndarray


def build(doc_id: str, text: str, embedder, title: str = "", metadata: dict[str, Any] | None = None) -> Stored:
    metadata = metadata or {}
    version = content_version(title, text, metadata)
    doc = Document(doc_id=doc_id, version=version, text=text, title=title, metadata=metadata)
    sentences = [
        Sentence(doc_id, version, i, span.start, span.end, text[span.start:span.end])
        for i, span in enumerate(split_sentences(text))
    ]
    vectors = embedder.encode([s.text for s in sentences])
    return Stored(doc, sentences, vectors)


def put(store: Store, embedder, doc_id: str, text: str, **kwargs: Any) -> Stored:
    item = build(doc_id, text, embedder, **kwargs)
    store.put(item.doc, item.sentences, item.vectors)
    return item


def keys(results: list[Scored]) -> set[tuple[str, str, int]]:
    return {(r.sentence.doc_id, r.sentence.doc_version, r.sentence.index) for r in results}


def texts(results: list[Scored]) -> list[str]:
    return [r.sentence.text for r in results]


class StoreContract:
    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError("a backend's test class provides the store fixture")

    # -- documents -------------------------------------------------------------------------

    def test_put_then_document_round_trips_exact_text(self, store, embedder):
        metadata = {"source": "unit", "n": 3, "nested": {"k": ["a", "é"]}}
        item = put(store, embedder, "doc-ü", UNICODE_TEXT, title="Tïtle ☃", metadata=metadata)
        got = store.document("doc-ü")
        assert got is not None
        assert got.text == UNICODE_TEXT  # byte-for-byte: CRLF, emoji, combining marks kept
        assert got.doc_id == "doc-ü"
        assert got.version == item.doc.version
        assert got.title == "Tïtle ☃"
        assert got.metadata == metadata
        assert got.current is True
        assert store.document("doc-ü", item.doc.version) == got

    def test_unknown_document_or_version_is_none(self, store, embedder):
        put(store, embedder, "known", OTHER_TEXT)
        assert store.document("unknown") is None
        assert store.document("unknown", "0123456789abcdef") is None
        assert store.document("known", "0123456789abcdef") is None

    def test_sentences_offsets_match_stored_text(self, store, embedder):
        item = put(store, embedder, "doc", V1_TEXT)
        stored = store.document("doc").text
        sentences = store.sentences("doc", item.doc.version)
        assert len(sentences) == len(item.sentences) == 4
        assert [s.index for s in sentences] == list(range(len(sentences)))
        for s in sentences:
            assert stored[s.start:s.end] == s.text
            assert s.doc_id == "doc" and s.doc_version == item.doc.version
            assert s.id == f"doc:{s.index}"
        assert sentences[0].text == "Lighthouse Notes"
        assert sentences[-1].text == "Fishermen stayed in port for weeks."
        assert store.sentences("doc", "0123456789abcdef") == []

    def test_unicode_sentence_offsets_are_code_points(self, store, embedder):
        item = put(store, embedder, "uni", UNICODE_TEXT)
        sentences = store.sentences("uni", item.doc.version)
        assert sentences
        for s in sentences:
            assert UNICODE_TEXT[s.start:s.end] == s.text
        assert any("😀" in s.text for s in sentences)

    def test_put_many_is_one_batch_and_the_last_version_of_a_doc_wins(self, store, embedder):
        v1, v2, other = build("doc", V1_TEXT, embedder), build("doc", V2_TEXT, embedder), build("other", OTHER_TEXT, embedder)
        store.put_many([(x.doc, x.sentences, x.vectors) for x in (v1, other, v2)])
        assert store.document("doc").version == v2.doc.version
        assert store.document("doc", v1.doc.version).text == V1_TEXT
        assert store.document("other").text == OTHER_TEXT
        found = store.dense_search(embedder.encode([STORM])[0], 20)
        assert all(r.sentence.doc_version != v1.doc.version for r in found)
        assert {r.sentence.doc_id for r in found} == {"doc", "other"}
        assert store.lexical_search("storms battered", 10) == []
        assert store.sentence_count() == len(v2.sentences) + len(other.sentences)

    def test_put_many_is_all_or_nothing(self, store, embedder):
        good, bad = build("good", OTHER_TEXT, embedder), build("bad", V1_TEXT, embedder)
        with pytest.raises(ValueError):
            store.put_many([(good.doc, good.sentences, good.vectors), (bad.doc, bad.sentences, bad.vectors[:1])])
        assert store.document("good") is None and store.sentence_count() == 0

    def test_put_rejects_vector_count_mismatch(self, store, embedder):
        item = build("doc", OTHER_TEXT, embedder)
        with pytest.raises(ValueError):
            store.put(item.doc, item.sentences, item.vectors[:1])
        assert store.document("doc") is None
        assert store.sentence_count() == 0

    def test_putting_the_same_version_twice_is_idempotent(self, store, embedder):
        item = put(store, embedder, "doc", OTHER_TEXT)
        count = store.sentence_count()
        store.put(item.doc, item.sentences, item.vectors)
        assert store.sentence_count() == count == 2
        hits = store.dense_search(item.vectors[0], 10)
        assert len(hits) == len(keys(hits)) == 2  # no duplicates
        assert len(store.lexical_search("croissants butter", 10)) == 1

    # -- versions --------------------------------------------------------------------------

    def test_new_version_becomes_current_old_stays_readable_but_unsearched(self, store, embedder):
        v1 = put(store, embedder, "doc", V1_TEXT)
        storm_vector = embedder.encode([STORM])[0]
        assert STORM in texts(store.dense_search(storm_vector, 3))
        assert texts(store.lexical_search("storms battered", 5)) == [STORM]

        v2 = put(store, embedder, "doc", V2_TEXT)
        assert v1.doc.version != v2.doc.version
        current = store.document("doc")
        assert current.version == v2.doc.version and current.text == V2_TEXT and current.current
        old = store.document("doc", v1.doc.version)
        assert old is not None and old.text == V1_TEXT and old.current is False
        assert [s.text for s in store.sentences("doc", v1.doc.version)] == [s.text for s in v1.sentences]

        dense = store.dense_search(storm_vector, 50)
        assert dense, "the new version is searchable"
        assert {r.sentence.doc_version for r in dense} == {v2.doc.version}
        assert STORM not in texts(dense)
        assert store.sentence_count() == len(v2.sentences)

        assert store.lexical_search("storms battered fishermen", 10) == []
        whales = store.lexical_search("whales", 10)
        assert texts(whales) == [WHALES]
        assert whales[0].sentence.doc_version == v2.doc.version
        # The shared headline is found once, in the current version only.
        headline = store.lexical_search("lighthouse notes", 10)
        assert {(r.sentence.doc_version, r.sentence.text) for r in headline} >= {(v2.doc.version, "Lighthouse Notes")}
        assert all(r.sentence.doc_version == v2.doc.version for r in headline)

    def test_make_current_back_to_an_old_version(self, store, embedder):
        v1 = put(store, embedder, "doc", V1_TEXT)
        v2 = put(store, embedder, "doc", V2_TEXT)
        store.make_current("doc", v1.doc.version)

        assert store.document("doc").version == v1.doc.version
        assert store.document("doc", v2.doc.version).current is False
        assert store.document("doc", v1.doc.version).current is True
        assert store.sentence_count() == len(v1.sentences)
        storm_vector = embedder.encode([STORM])[0]
        dense = store.dense_search(storm_vector, 50)
        assert dense[0].sentence.text == STORM
        assert {r.sentence.doc_version for r in dense} == {v1.doc.version}
        assert texts(store.lexical_search("storms", 5)) == [STORM]
        assert store.lexical_search("whales", 5) == []

    def test_make_current_unknown_version_fails_and_changes_nothing(self, store, embedder):
        v1 = put(store, embedder, "doc", V1_TEXT)
        with pytest.raises(LookupError):
            store.make_current("doc", "0123456789abcdef")
        assert store.document("doc").version == v1.doc.version
        assert store.sentence_count() == len(v1.sentences)
        assert texts(store.lexical_search("storms", 5)) == [STORM]
        assert STORM in texts(store.dense_search(embedder.encode([STORM])[0], 3))

    # -- delete ----------------------------------------------------------------------------

    def test_delete(self, store, embedder):
        v1 = put(store, embedder, "doc", V1_TEXT)
        other = put(store, embedder, "other", OTHER_TEXT)
        assert store.delete("doc") is True

        assert store.document("doc") is None
        old = store.document("doc", v1.doc.version)
        assert old is not None and old.text == V1_TEXT and old.current is False
        assert store.sentence_count() == len(other.sentences)
        dense = store.dense_search(embedder.encode([STORM])[0], 50)
        assert {r.sentence.doc_id for r in dense} == {"other"}
        assert store.lexical_search("storms lighthouse fishermen", 10) == []
        assert texts(store.lexical_search("croissants", 10)) == ["Croissants need very cold butter."]
        page = store.list_documents(10, 0)
        assert [d.doc_id for d in page.documents] == ["other"] and page.total == 1

        assert store.delete("doc") is False  # already deleted
        assert store.delete("never-existed") is False

    def test_put_after_delete_revives_the_document(self, store, embedder):
        put(store, embedder, "doc", V1_TEXT)
        store.delete("doc")
        v2 = put(store, embedder, "doc", V2_TEXT)
        assert store.document("doc").version == v2.doc.version
        assert texts(store.lexical_search("whales", 5)) == [WHALES]
        assert store.lexical_search("storms", 5) == []

    # -- listing ---------------------------------------------------------------------------

    def test_list_documents_pagination_and_total(self, store, embedder):
        ids = [f"doc-{i:02d}" for i in range(5)]
        for i, doc_id in enumerate(ids):
            put(store, embedder, doc_id, f"Document number {i} talks about topic {i}.", title=f"T{i}")
        pages = [store.list_documents(2, offset) for offset in (0, 2, 4, 6)]
        assert all(isinstance(p, DocumentPage) for p in pages)
        assert [p.total for p in pages] == [5, 5, 5, 5]
        assert [len(p.documents) for p in pages] == [2, 2, 1, 0]
        listed = [d.doc_id for p in pages for d in p.documents]
        assert sorted(listed) == ids and len(set(listed)) == 5
        by_id = {d.doc_id: d for p in pages for d in p.documents}
        assert by_id["doc-03"].title == "T3"
        assert by_id["doc-03"].version == store.document("doc-03").version
        # A new version does not add a listing entry.
        put(store, embedder, "doc-00", "A replacement text for document zero.")
        page = store.list_documents(10, 0)
        assert page.total == 5 and len(page.documents) == 5

    # -- vectors ---------------------------------------------------------------------------

    def test_vectors_by_text(self, store, embedder):
        v1 = put(store, embedder, "doc", V1_TEXT)
        v2 = put(store, embedder, "doc", V2_TEXT)
        put(store, embedder, "other", OTHER_TEXT)
        got = store.vectors_by_text("doc", "")
        # Every version's sentences, keyed by their text.
        assert set(got) == {s.text for s in v1.sentences} | {s.text for s in v2.sentences}
        for item in (v1, v2):
            for sentence, vector in zip(item.sentences, item.vectors):
                assert got[sentence.text].shape == (embedder.dimension,)
                np.testing.assert_allclose(got[sentence.text], vector, rtol=0, atol=1e-6)
        assert store.vectors_by_text("missing", "") == {}
        assert store.vectors_by_text("doc", "another title") == {}

    def test_dense_search_finds_exact_sentence_first_with_sorted_scores(self, store, embedder):
        put(store, embedder, "doc", V1_TEXT)
        put(store, embedder, "other", OTHER_TEXT)
        results = store.dense_search(embedder.encode([STORM])[0], 4)
        assert len(results) == 4
        assert results[0].sentence.text == STORM
        assert results[0].score == pytest.approx(1.0, abs=1e-4)
        scores = [r.score for r in results]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0001 <= s <= 1.0001 for s in scores)
        assert len(store.dense_search(embedder.encode([STORM])[0], 100)) == store.sentence_count() == 6

    def test_dense_search_on_empty_store(self, store, embedder):
        assert store.dense_search(embedder.encode(["anything"])[0], 5) == []

    def test_dense_scores_are_cosines_in_order(self, store, embedder):
        item = put(store, embedder, "doc", V1_TEXT)
        other = put(store, embedder, "other", OTHER_TEXT)
        query = embedder.encode(["Bad weather hit the coast."])[0]
        sentences = [other.sentences[1], item.sentences[2], item.sentences[0]]
        expected = [
            float(other.vectors[1] @ query),
            float(item.vectors[2] @ query),
            float(item.vectors[0] @ query),
        ]
        got = store.dense_scores(query, sentences)
        assert got == pytest.approx(expected, abs=1e-5)
        assert got[1] > got[0]  # the storm sentence is closer than the croissants
        assert store.dense_scores(query, []) == []

    # -- flags -----------------------------------------------------------------------------

    def test_flags(self, store):
        assert store.get_flag("seeded") is None
        store.set_flag("seeded", "1")
        assert store.get_flag("seeded") == "1"
        store.set_flag("seeded", "two")
        assert store.get_flag("seeded") == "two"
        store.set_flag("other", "")
        assert store.get_flag("other") == ""
        assert store.get_flag("seeded") == "two"

    # -- lexical ---------------------------------------------------------------------------

    def test_lexical_search_ranks_and_scores(self, store, embedder):
        put(store, embedder, "doc", V1_TEXT)
        put(store, embedder, "other", OTHER_TEXT)
        results = store.lexical_search("Which storms battered the coast?", 10)
        assert results[0].sentence.text == STORM
        scores = [r.score for r in results]
        assert scores == sorted(scores, reverse=True)  # higher is better
        assert len(store.lexical_search("the lighthouse keeper painted", 1)) == 1
        assert store.lexical_search("storms", 0) == []
        assert store.lexical_search("zeppelin", 5) == []

    def test_lexical_search_weighs_rare_words_over_common_ones(self, store, embedder):
        """BM25's IDF: a word in one sentence outweighs two found in nearly every sentence."""
        for n in range(12):
            put(store, embedder, f"log-{n}", f"The harbour boats sailed at dawn on day {n}.")
        put(store, embedder, "rare", "A narwhal was seen once near the pier.")
        results = store.lexical_search("harbour boats narwhal", 20)
        assert results[0].sentence.text == "A narwhal was seen once near the pier."
        assert len(results) == 13
        found = store.lexical_document_search("harbour boats narwhal", 5)
        assert [doc_id for doc_id, _ in found][0] == "rare"

    @pytest.mark.parametrize(
        "query, finds",
        [
            ('"storms', STORM),
            ('storms"', STORM),
            ('"storms" "', STORM),
            ("storms*", STORM),
            ("*", None),
            ("NEAR(storms coast)", STORM),
            ("storms NEAR coast", STORM),
            ("(storms", STORM),
            ("storms)", STORM),
            ("()", None),
            ("-storms", STORM),
            ("storms -coast", STORM),
            ("storms AND", STORM),
            ("OR", None),
            ("NOT storms", STORM),
            ("text:storms", STORM),
            ("^storms", STORM),
            ("storms + coast", STORM),
            ("{storms}", STORM),
            ("'; DROP TABLE sentences; --", None),
            ("", None),
            ("   \n\t", None),
            ("?!.,", None),
        ],
    )
    def test_lexical_search_with_fts5_special_characters(self, store, embedder, query, finds):
        put(store, embedder, "doc", V1_TEXT)
        results = store.lexical_search(query, 5)
        assert isinstance(results, list)
        if finds is not None:
            assert texts(results)[0] == finds
        assert store.sentence_count() == 4  # nothing was harmed

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors])
    @given(query=st.text(max_size=40))
    def test_lexical_search_never_raises_on_any_text(self, store, embedder, query):
        if store.sentence_count() == 0:
            put(store, embedder, "doc", V1_TEXT)
        results = store.lexical_search(query, 5)
        assert all(isinstance(r, Scored) for r in results)
        assert len(results) <= 5
