"""The LexicalIndex contract: BM25 over searchable sentences and live documents, and the
sentences a document hit stands for."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citeqa.index.types import Scored
from tests.contracts.backend import BackendFixtures
from tests.contracts.samples import OTHER_TEXT, STORM, V1_TEXT, V2_TEXT, WHALES, put, texts


class LexicalIndexContract(BackendFixtures):
    def test_lexical_search_ranks_and_scores(self, store):
        put(store, "doc", V1_TEXT)
        put(store, "other", OTHER_TEXT)
        results = store.lexical_search("Which storms battered the coast?", 10)
        assert results[0].sentence.text == STORM
        scores = [r.score for r in results]
        assert scores == sorted(scores, reverse=True)  # higher is better
        assert all(score > 0 for score in scores)
        assert len(store.lexical_search("the lighthouse keeper painted", 1)) == 1
        assert store.lexical_search("storms", 0) == []
        assert store.lexical_search("zeppelin", 5) == []

    def test_lexical_search_weighs_rare_words_over_common_ones(self, store):
        """BM25's IDF: a word in one sentence outweighs two found in nearly every sentence."""
        for n in range(12):
            put(store, f"log-{n}", f"The harbour boats sailed at dawn on day {n}.")
        put(store, "rare", "A narwhal was seen once near the pier.")
        results = store.lexical_search("harbour boats narwhal", 20)
        assert results[0].sentence.text == "A narwhal was seen once near the pier."
        assert len(results) == 13
        found = store.lexical_document_search("harbour boats narwhal", 5)
        assert [doc_id for doc_id, _ in found][0] == "rare"

    def test_only_the_current_version_of_a_live_document_is_searched(self, store):
        v1 = put(store, "doc", V1_TEXT)
        assert texts(store.lexical_search("storms battered", 5)) == [STORM]
        v2 = put(store, "doc", V2_TEXT)
        assert store.lexical_search("storms battered fishermen", 10) == []
        whales = store.lexical_search("whales", 10)
        assert texts(whales) == [WHALES] and whales[0].sentence.doc_version == v2.doc.version
        # The shared headline is found once, in the current version only.
        headline = store.lexical_search("lighthouse notes", 10)
        assert {(r.sentence.doc_version, r.sentence.text) for r in headline} >= {(v2.doc.version, "Lighthouse Notes")}
        assert all(r.sentence.doc_version == v2.doc.version for r in headline)
        store.make_current("doc", v1.doc.version)
        assert texts(store.lexical_search("storms", 5)) == [STORM]
        assert store.lexical_search("whales", 5) == []
        put(store, "other", OTHER_TEXT)
        store.delete("doc")
        assert store.lexical_search("storms lighthouse fishermen", 10) == []
        assert texts(store.lexical_search("croissants", 10)) == ["Croissants need very cold butter."]
        put(store, "doc", V2_TEXT)  # revived
        assert texts(store.lexical_search("whales", 5)) == [WHALES]

    def test_lexical_document_search_ranks_title_and_text(self, store):
        put(store, "doc", V1_TEXT, title="Coastal storms")
        put(store, "other", OTHER_TEXT, title="Bakeries")
        found = store.lexical_document_search("Which storms battered the coast?", 5)
        assert [d for d, _ in found] == ["doc"]
        assert found[0][1] > 0
        assert store.lexical_document_search("bakeries", 5)[0][0] == "other"
        store.delete("doc")
        assert store.lexical_document_search("storms", 5) == []
        assert store.lexical_document_search("", 5) == []
        assert store.lexical_document_search("bakeries", 0) == []

    @staticmethod
    def _updated_other_and_gone(store):
        """Store "doc" in two versions and "other" in one, and delete "gone": (doc's v2, other)."""
        put(store, "doc", V1_TEXT)
        v2 = put(store, "doc", V2_TEXT)
        other = put(store, "other", OTHER_TEXT)
        put(store, "gone", "A deleted note.")
        store.delete("gone")
        return v2, other

    def test_current_sentences(self, store):
        v2, other = self._updated_other_and_gone(store)
        got = store.current_sentences(["other", "gone", "missing", "doc"])
        # By doc_id, then index; only the searchable sentences of current versions.
        assert [(s.doc_id, s.doc_version, s.index) for s in got] == (
            [("doc", v2.doc.version, i) for i in range(len(v2.sentences))]
            + [("other", other.doc.version, i) for i in range(len(other.sentences))]
        )
        assert [s.text for s in got] == [s.text for s in v2.sentences + other.sentences]
        for s in got:
            assert store.document(s.doc_id).text[s.start:s.end] == s.text
        assert store.current_sentences([]) == []
        assert store.current_sentences(["gone"]) == []
        # What a document hit stands for: the sentences its lexical_document_search hit names.
        (hit, _), = store.lexical_document_search("croissants", 5)
        assert [s.text for s in store.current_sentences([hit])] == [s.text for s in other.sentences]

    def test_searchable_texts(self, store):
        v2, other = self._updated_other_and_gone(store)
        wanted = [("other", 1), ("doc", 0), ("gone", 0), ("missing", 0), ("doc", 99), ("doc", -1), ("doc", 1)]
        got = store.searchable_texts(wanted)
        # The current versions' searchable sentences the pairs name, as current_sentences reads them.
        current = {(s.doc_id, s.doc_version, s.index): s.text for s in store.current_sentences(["doc", "other"])}
        assert sorted(got) == sorted((*key, text) for key, text in current.items()
                                     if key[::2] in {("other", 1), ("doc", 0), ("doc", 1)})
        assert {(d, v) for d, v, _, _ in got} == {("doc", v2.doc.version), ("other", other.doc.version)}
        assert len(got) == 3
        assert store.searchable_texts([]) == []
        assert store.searchable_texts([("gone", 0)]) == []

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
    def test_lexical_search_with_query_syntax_characters(self, store, query, finds):
        """FTS5 and tsquery operators in user text are words or nothing, never syntax."""
        put(store, "doc", V1_TEXT)
        results = store.lexical_search(query, 5)
        assert isinstance(results, list)
        if finds is not None:
            assert texts(results)[0] == finds
        assert store.sentence_count() == 4  # nothing was harmed

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.differing_executors])
    @given(query=st.text(max_size=40))
    def test_lexical_search_never_raises_on_any_text(self, store, query):
        if store.sentence_count() == 0:
            put(store, "doc", V1_TEXT)
        results = store.lexical_search(query, 5)
        assert all(isinstance(r, Scored) for r in results)
        assert len(results) <= 5
        assert isinstance(store.lexical_document_search(query, 5), list)
