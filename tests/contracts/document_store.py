"""The DocumentStore contract: documents, versions, sentences, listing, flags, lifecycle."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from citeqa.index.types import DocumentPage
from tests.contracts.backend import BackendFixtures
from tests.contracts.concurrency import run_at_once
from tests.contracts.samples import (
    DIMENSION,
    OTHER_TEXT,
    UNICODE_TEXT,
    V1_TEXT,
    V2_TEXT,
    build,
    put,
)


class DocumentStoreContract(BackendFixtures):
    # -- documents -----------------------------------------------------------------------

    def test_put_then_document_round_trips_exact_text(self, store):
        metadata = {"source": "unit", "n": 3, "nested": {"k": ["a", "é"]}}
        item = put(store, "doc-ü", UNICODE_TEXT, title="Tïtle ☃", metadata=metadata)
        got = store.document("doc-ü")
        assert got is not None
        assert got.text == UNICODE_TEXT  # byte-for-byte: CRLF, emoji, combining marks kept
        assert got.doc_id == "doc-ü"
        assert got.version == item.doc.version
        assert got.title == "Tïtle ☃"
        assert got.metadata == metadata
        assert got.current is True
        assert store.document("doc-ü", item.doc.version) == got

    def test_document_info_is_the_version_without_its_text(self, store):
        metadata = {"url": "https://example.org/a", "n": 3}
        v1 = put(store, "doc-ü", UNICODE_TEXT, title="Tïtle ☃", metadata=metadata)
        v2 = put(store, "doc-ü", OTHER_TEXT, title="Second")
        for item, current in ((v1, False), (v2, True)):
            info = store.document_info("doc-ü", item.doc.version)
            whole = store.document("doc-ü", item.doc.version)
            assert info is not None and whole is not None and whole.text
            assert info.text == ""
            assert info == replace(whole, text="")  # title, metadata, created_at, source, collection
            assert info.current is current
        store.delete("doc-ü")
        assert store.document_info("doc-ü", v2.doc.version).current is False  # still readable
        assert store.document_info("doc-ü", "no-such-version") is None
        assert store.document_info("unknown", v1.doc.version) is None

    def test_unknown_document_or_version_is_none(self, store):
        put(store, "known", OTHER_TEXT)
        assert store.document("unknown") is None
        assert store.document("unknown", "0123456789abcdef") is None
        assert store.document("known", "0123456789abcdef") is None

    def test_sentences_offsets_match_stored_text(self, store):
        item = put(store, "doc", V1_TEXT)
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

    def test_unicode_sentence_offsets_are_code_points(self, store):
        item = put(store, "uni", UNICODE_TEXT)
        sentences = store.sentences("uni", item.doc.version)
        assert sentences
        for s in sentences:
            assert UNICODE_TEXT[s.start:s.end] == s.text
        assert any("😀" in s.text for s in sentences)

    def test_a_document_without_sentences_is_stored(self, store):
        item = build("empty", "   ")
        assert item.sentences == []
        store.put(item.doc, [], np.zeros((0, DIMENSION), dtype=np.float32))
        assert store.document("empty").text == "   "
        assert store.sentences("empty", item.doc.version) == []

    # -- refused writes ------------------------------------------------------------------

    def test_put_many_is_all_or_nothing(self, store):
        good, bad = build("good", OTHER_TEXT), build("bad", V1_TEXT)
        with pytest.raises(ValueError):
            store.put_many([(good.doc, good.sentences, good.vectors), (bad.doc, bad.sentences, bad.vectors[:1])])
        assert store.document("good") is None and store.sentence_count() == 0

    @pytest.mark.parametrize(
        "mangle",
        [
            pytest.param(lambda v: v[:1], id="too-few-vectors"),
            pytest.param(lambda v: np.concatenate([v, v]), id="too-many-vectors"),
            pytest.param(lambda v: v[:, :-1], id="one-dimension-short"),
            pytest.param(lambda v: np.pad(v, ((0, 0), (0, 1))), id="one-dimension-over"),
            pytest.param(lambda v: v[:, :8], id="another-model"),
            pytest.param(lambda v: v.reshape(-1), id="flattened"),
            pytest.param(lambda v: v[:, None, :], id="three-dimensional"),
        ],
    )
    def test_vectors_the_store_cannot_hold_are_refused_before_writing(self, store, open_store, mangle):
        """Refused with ValueError; nothing written; the store (and the place, reopened) still works."""
        bad = build("bad", OTHER_TEXT)
        with pytest.raises(ValueError):
            store.put(bad.doc, bad.sentences, mangle(bad.vectors))
        assert store.document("bad") is None and store.sentence_count() == 0
        good = put(store, "good", V1_TEXT)
        assert store.sentence_count() == len(good.sentences)
        store.close()
        again = open_store()
        assert again.document("bad") is None
        assert again.document("good").version == good.doc.version
        assert again.sentence_count() == len(good.sentences)

    def test_a_batch_with_one_wrong_dimension_writes_none_of_it(self, store, open_store):
        good, bad = build("good", OTHER_TEXT), build("bad", V1_TEXT)
        with pytest.raises(ValueError, match=f"{DIMENSION}-d"):
            store.put_many([(good.doc, good.sentences, good.vectors), (bad.doc, bad.sentences, bad.vectors[:, :-1])])
        assert store.document("good") is None and store.document("bad") is None
        store.close()
        again = open_store()
        assert again.sentence_count() == 0 and again.list_documents(10, 0).total == 0
        put(again, "good", OTHER_TEXT)
        assert again.document("good") is not None

    # -- versions ------------------------------------------------------------------------

    def test_new_version_becomes_current_and_old_stays_readable(self, store):
        v1 = put(store, "doc", V1_TEXT)
        v2 = put(store, "doc", V2_TEXT)
        assert v1.doc.version != v2.doc.version
        current = store.document("doc")
        assert current.version == v2.doc.version and current.text == V2_TEXT and current.current
        old = store.document("doc", v1.doc.version)
        assert old is not None and old.text == V1_TEXT and old.current is False
        assert [s.text for s in store.sentences("doc", v1.doc.version)] == [s.text for s in v1.sentences]
        assert store.sentence_count() == len(v2.sentences)

    def test_make_current_back_to_an_old_version(self, store):
        v1 = put(store, "doc", V1_TEXT)
        v2 = put(store, "doc", V2_TEXT)
        store.make_current("doc", v1.doc.version)
        assert store.document("doc").version == v1.doc.version
        assert store.document("doc", v2.doc.version).current is False
        assert store.document("doc", v1.doc.version).current is True
        assert store.sentence_count() == len(v1.sentences)

    def test_make_current_unknown_version_fails_and_changes_nothing(self, store):
        v1 = put(store, "doc", V1_TEXT)
        with pytest.raises(LookupError):
            store.make_current("doc", "0123456789abcdef")
        assert store.document("doc").version == v1.doc.version
        assert store.sentence_count() == len(v1.sentences)

    # -- delete --------------------------------------------------------------------------

    def test_delete(self, store):
        v1 = put(store, "doc", V1_TEXT)
        other = put(store, "other", OTHER_TEXT)
        assert store.delete("doc") is True
        assert store.document("doc") is None
        old = store.document("doc", v1.doc.version)
        assert old is not None and old.text == V1_TEXT and old.current is False
        assert store.sentence_count() == len(other.sentences)
        page = store.list_documents(10, 0)
        assert [d.doc_id for d in page.documents] == ["other"] and page.total == 1
        assert store.delete("doc") is False  # already deleted
        assert store.delete("never-existed") is False

    def test_put_after_delete_revives_the_document(self, store):
        put(store, "doc", V1_TEXT)
        store.delete("doc")
        v2 = put(store, "doc", V2_TEXT)
        assert store.document("doc").version == v2.doc.version
        assert store.sentence_count() == len(v2.sentences)

    # -- listing -------------------------------------------------------------------------

    def test_list_documents_pagination_and_total(self, store):
        ids = [f"doc-{i:02d}" for i in range(5)]
        for i, doc_id in enumerate(ids):
            put(store, doc_id, f"Document number {i} talks about topic {i}.", title=f"T{i}", metadata={"i": i})
        pages = [store.list_documents(2, offset) for offset in (0, 2, 4, 6)]
        assert all(isinstance(p, DocumentPage) for p in pages)
        assert [p.total for p in pages] == [5, 5, 5, 5]
        assert [[d.doc_id for d in p.documents] for p in pages] == [ids[0:2], ids[2:4], ids[4:], []]
        by_id = {d.doc_id: d for p in pages for d in p.documents}
        assert by_id["doc-03"].title == "T3" and by_id["doc-03"].metadata == {"i": 3}
        assert by_id["doc-03"].version == store.document("doc-03").version
        assert by_id["doc-03"].text == ""  # listings carry no text
        # A new version does not add a listing entry; a negative limit means all of them.
        put(store, "doc-00", "A replacement text for document zero.")
        page = store.list_documents(-1, 0)
        assert page.total == 5 and len(page.documents) == 5

    # -- vectors -------------------------------------------------------------------------

    def test_vectors_by_text(self, store):
        v1 = put(store, "doc", V1_TEXT)
        v2 = put(store, "doc", V2_TEXT)
        put(store, "other", OTHER_TEXT)
        got = store.vectors_by_text("doc", "")
        # Every version's sentences, keyed by their text.
        assert set(got) == {s.text for s in v1.sentences} | {s.text for s in v2.sentences}
        for item in (v1, v2):
            for sentence, vector in zip(item.sentences, item.vectors, strict=True):
                assert got[sentence.text].shape == (DIMENSION,)
                np.testing.assert_allclose(got[sentence.text], vector, rtol=0, atol=1e-6)
        assert store.vectors_by_text("missing", "") == {}
        assert store.vectors_by_text("doc", "another title") == {}

    # -- flags ---------------------------------------------------------------------------

    def test_flags(self, store):
        assert store.get_flag("seeded") is None
        store.set_flag("seeded", "1")
        assert store.get_flag("seeded") == "1"
        store.set_flag("seeded", "two")
        assert store.get_flag("seeded") == "two"
        store.set_flag("other", "")
        assert store.get_flag("other") == ""
        assert store.get_flag("seeded") == "two"

    # -- lifecycle -----------------------------------------------------------------------

    def test_reopen_keeps_everything(self, store, open_store):
        put(store, "doc", V1_TEXT, title="Notes")
        v2 = put(store, "doc", V2_TEXT, title="Notes")
        other = put(store, "other", OTHER_TEXT, metadata={"k": "v"})
        put(store, "uni", UNICODE_TEXT)
        store.delete("other")
        store.set_flag("seeded", "yes")
        listing = store.list_documents(10, 0)
        count = store.sentence_count()
        known = store.vectors_by_text("doc", "Notes")
        store.close()

        again = open_store()
        assert again.list_documents(10, 0) == listing
        assert again.get_flag("seeded") == "yes"
        assert again.document("doc").version == v2.doc.version
        assert again.document("doc", v2.doc.version).text == V2_TEXT
        assert again.document("uni").text == UNICODE_TEXT
        assert again.document("other") is None
        assert again.document("other", other.doc.version).metadata == {"k": "v"}
        assert again.sentence_count() == count
        assert [s.text for s in again.sentences("doc", v2.doc.version)] == [s.text for s in v2.sentences]
        reopened = again.vectors_by_text("doc", "Notes")
        assert set(reopened) == set(known)
        for text, vector in known.items():
            np.testing.assert_array_equal(reopened[text], vector)

    def test_opening_with_another_dimension_is_refused(self, store, open_store):
        put(store, "doc", OTHER_TEXT)
        store.close()
        with pytest.raises(ValueError, match=f"{DIMENSION}-d vectors"):
            open_store(dimension=DIMENSION + 1)
        assert open_store().document("doc") is not None  # refusing changed nothing

    def test_closed_store_refuses_reads(self, store):
        put(store, "doc", OTHER_TEXT)
        store.close()
        with pytest.raises(RuntimeError):
            store.sentence_count()
        with pytest.raises(RuntimeError):
            store.document("doc")

    def test_concurrent_writers_of_one_document_leave_one_live_version(self, store):
        items = [build("doc", f"{V2_TEXT} Revision {i}.") for i in range(6)]
        run_at_once([lambda item=item: store.put(item.doc, item.sentences, item.vectors) for item in items])
        current = store.document("doc")
        assert current.version in {i.doc.version for i in items}
        assert store.sentence_count() == len(store.sentences("doc", current.version))
        for item in items:
            assert store.document("doc", item.doc.version).current == (item.doc.version == current.version)

    def test_put_says_whether_it_stored_the_version(self, store):
        item, other = build("doc", V1_TEXT), build("other", OTHER_TEXT)
        assert store.put(item.doc, item.sentences, item.vectors) is True
        assert store.put(item.doc, item.sentences, item.vectors) is False  # there already: made current
        batch = [(x.doc, x.sentences, x.vectors) for x in (other, item, other)]
        assert store.put_many(batch) == [True, False, False]
        assert store.put_many([]) == []
        assert store.sentence_count() == len(item.sentences) + len(other.sentences)

    def test_concurrent_puts_of_one_version_store_it_once(self, store):
        item = build("doc", V1_TEXT)
        created = run_at_once([lambda: store.put(item.doc, item.sentences, item.vectors)] * 16)
        assert sorted(created) == [False] * 15 + [True]
        assert store.document("doc").version == item.doc.version
        assert store.sentence_count() == len(store.sentences("doc", item.doc.version)) == len(item.sentences)
