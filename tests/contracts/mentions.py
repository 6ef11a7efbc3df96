"""The mentions contract: a sentence's entities and noun chunks, stored with it at ingest,
come back with it from every read, and sentences stored without analysis are found and
filled in by the backfill (index/mention_backfill.py).

Mentions here are made up (any offsets and labels must round-trip), except where the
real pipeline (the ``analyzer`` fixture of tests/index/conftest.py) is the point.
"""

from __future__ import annotations

from dataclasses import replace

from citeqa.index.ingest import DocumentInput, Ingestor
from citeqa.index.mention_backfill import MentionStore, backfill_mentions
from citeqa.index.types import Mention, Sentence
from tests.contracts.backend import BackendFixtures
from tests.contracts.samples import FAKE, OTHER_TEXT, STORM, UNICODE_TEXT, V1_TEXT, build, vector


def made_up(sentence: Sentence) -> tuple[Mention, ...]:
    """Two mentions that depend on the sentence: its first word, and the rest of it."""
    first = len(sentence.text.split(" ", 1)[0])
    return (Mention(0, first, "FIRST_WORD"), Mention(min(first + 1, len(sentence.text)), len(sentence.text),
                                                      "NOUN_CHUNK"))


def analysed(sentences: list[Sentence]) -> list[Sentence]:
    return [replace(s, mentions=made_up(s), analysed=True) for s in sentences]


def by_id(sentences: list[Sentence]) -> dict[str, tuple[tuple[Mention, ...], bool]]:
    return {s.id: (s.mentions, s.analysed) for s in sentences}


class MentionContract(BackendFixtures):
    def test_mentions_come_back_from_every_read(self, store):
        item = build("doc", V1_TEXT)
        sentences = analysed(item.sentences)
        store.put(item.doc, sentences, item.vectors)
        expected = {s.id: (s.mentions, True) for s in sentences}
        assert all(m for m, _ in expected.values())
        assert by_id(store.sentences("doc", item.doc.version)) == expected
        assert by_id(store.current_sentences(["doc"])) == expected
        dense = [r.sentence for r in store.dense_search(vector(STORM), 10)]
        lexical = [r.sentence for r in store.lexical_search("storms lighthouse fishermen", 10)]
        assert len(dense) == len(lexical) == 4
        for found in (dense, lexical):
            assert by_id(found) == {s.id: expected[s.id] for s in found}

    def test_mentions_keep_code_point_offsets_and_survive_a_reopen(self, store, open_store):
        item = build("uni", UNICODE_TEXT)
        sentences = analysed(item.sentences)
        store.put(item.doc, sentences, item.vectors)
        store.close()
        again = open_store()
        stored = again.sentences("uni", item.doc.version)
        assert by_id(stored) == {s.id: (s.mentions, True) for s in sentences}
        text = again.document("uni").text
        for s in stored:
            for m in s.mentions:
                assert text[s.start + m.start:s.start + m.end] == s.text[m.start:m.end]

    def test_analysed_with_nothing_found_differs_from_never_analysed(self, store):
        plain = build("plain", V1_TEXT)
        empty = build("empty", OTHER_TEXT)
        store.put(plain.doc, plain.sentences, plain.vectors)
        store.put(empty.doc, [replace(s, analysed=True) for s in empty.sentences], empty.vectors)
        assert {s.analysed for s in store.sentences("plain", plain.doc.version)} == {False}
        assert {(s.mentions, s.analysed) for s in store.sentences("empty", empty.doc.version)} == {((), True)}
        assert isinstance(store, MentionStore)
        todo = store.unanalysed_sentences(100)
        assert [(s.doc_id, s.index) for s in todo] == [("plain", i) for i in range(len(plain.sentences))]
        assert [s.key for s in todo] == sorted(s.key for s in todo)
        assert store.unanalysed_sentences(2, after=todo[1].key) == todo[2:4]

    def test_stored_mentions_fill_only_sentences_without_them(self, store):
        plain = build("plain", V1_TEXT)
        store.put(plain.doc, plain.sentences, plain.vectors)
        todo = store.unanalysed_sentences(100)
        store.store_mentions([(s, made_up(s)) for s in todo])
        assert store.unanalysed_sentences(100) == []
        expected = {s.id: (made_up(s), True) for s in todo}
        assert by_id(store.sentences("plain", plain.doc.version)) == expected
        store.store_mentions([(s, ()) for s in todo])  # already analysed: left as they are
        assert by_id(store.current_sentences(["plain"])) == expected
        # Only mentions changed: search finds the same sentences as before.
        assert [r.sentence.text for r in store.dense_search(vector(STORM), 1)] == [STORM]

    def test_ingest_with_the_real_pipeline_stores_entities_at_their_offsets(self, store, analyzer):
        text = "Marie Curie moved to Paris in 1891. She won the Nobel Prize in Physics in 1903."
        Ingestor(store, FAKE, analyzer).ingest(DocumentInput(text=text, doc_id="curie"))
        sentences = store.current_sentences(["curie"])
        assert len(sentences) == 2 and all(s.analysed for s in sentences)
        found = {(s.text[m.start:m.end], m.label) for s in sentences for m in s.mentions}
        assert {("Marie Curie", "PERSON"), ("Paris", "GPE"), ("1891", "DATE"), ("1903", "DATE")} <= found
        assert any(label == "NOUN_CHUNK" for _, label in found)
        assert store.unanalysed_sentences(10) == []

    def test_backfill_analyses_what_was_stored_without_analysis(self, store, analyzer):
        Ingestor(store, FAKE).ingest(DocumentInput(text=V1_TEXT, doc_id="old"))
        Ingestor(store, FAKE, analyzer).ingest(DocumentInput(text=OTHER_TEXT, doc_id="new"))
        before = by_id(store.current_sentences(["new"]))
        assert backfill_mentions(store, analyzer, batch=3) == 4  # the old document's sentences, in two batches
        assert store.unanalysed_sentences(10) == []
        old = store.current_sentences(["old"])
        assert all(s.analysed for s in old)
        fresh = analyzer.mentions([s.text for s in old])
        assert by_id(old) == {s.id: (tuple(m), True) for s, m in zip(old, fresh, strict=True)}
        assert by_id(store.current_sentences(["new"])) == before
        assert backfill_mentions(store, analyzer) == 0
