"""The sources contract: a version extracted from a file keeps that file's description
(``Document.source``, pages included) and its exact bytes (``DocumentStore.original``),
stored once per SHA-256 in the same transaction as the version; a version without a file
has neither; bytes that are not the file the source describes are refused before anything
is written.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from citeqa.index.ingest import DocumentInput, Ingestor
from citeqa.index.types import Document
from tests.contracts.backend import BackendFixtures
from tests.contracts.concurrency import run_at_once
from tests.contracts.samples import FAKE, ORIGINAL, OTHER_TEXT, V1_TEXT, V2_TEXT, build, put, source_of

# Where each page's text lies in V1_TEXT: the heading page, then the rest.
V1_PAGES = ((0, 17), (17, len(V1_TEXT)))
OTHER_BYTES = b"\x00" * 7 + "Bäckerei\r\n".encode("latin-1") + b"\x00\xff"


def with_file(doc_id: str, text: str, original: bytes = ORIGINAL, **kwargs):
    """A version extracted from ``original`` (a PDF of two pages unless told otherwise)."""
    kwargs.setdefault("pages", V1_PAGES if text == V1_TEXT else ())
    source = source_of(original, **kwargs)
    return build(doc_id, text, source=source, original=original)


class SourceContract(BackendFixtures):
    def test_source_and_original_round_trip(self, store):
        item = with_file("doc", V1_TEXT)
        store.put(item.doc, item.sentences, item.vectors)
        got = store.document("doc")
        assert got is not None and got.source == item.doc.source
        assert got.source.pages == V1_PAGES and all(type(page) is tuple for page in got.source.pages)
        assert got.original is None  # reads never carry the bytes
        assert store.document("doc", item.doc.version) == got
        # The whole version comes back, but for when it was stored (and equality ignores original).
        assert got == replace(item.doc, created_at=got.created_at)
        original = store.original("doc", item.doc.version)
        assert type(original) is bytes and original == ORIGINAL  # exact: NULs and high bytes kept

    def test_a_source_without_pages_and_another_media_type(self, store):
        item = with_file("web", OTHER_TEXT, OTHER_BYTES, filename="bäckerei ☃.html", media_type="text/html")
        store.put(item.doc, item.sentences, item.vectors)
        assert store.document("web").source == source_of(OTHER_BYTES, "bäckerei ☃.html", "text/html")
        assert store.document("web").source.pages == ()
        assert store.original("web", item.doc.version) == OTHER_BYTES

    def test_a_version_without_a_file_has_no_source_nor_original(self, store):
        item = put(store, "plain", OTHER_TEXT)
        assert store.document("plain").source is None
        assert store.document("plain", item.doc.version).source is None
        assert store.original("plain", item.doc.version) is None
        assert store.original("plain", "0123456789abcdef") is None
        assert store.original("unknown", item.doc.version) is None

    def test_the_same_bytes_are_stored_once_and_read_by_every_version(self, store, stored_originals):
        first, second = with_file("a", V1_TEXT), with_file("b", V1_TEXT)
        update = with_file("a", V2_TEXT)  # same file, another extraction: another version
        store.put_many([(x.doc, x.sentences, x.vectors) for x in (first, second)])
        store.put(update.doc, update.sentences, update.vectors)
        assert stored_originals() == 1
        for item in (first, second, update):
            assert store.original(item.doc.doc_id, item.doc.version) == ORIGINAL
        other = with_file("c", OTHER_TEXT, OTHER_BYTES)
        store.put(other.doc, other.sentences, other.vectors)
        assert stored_originals() == 2
        assert store.original("c", other.doc.version) == OTHER_BYTES

    def test_putting_a_version_again_stores_its_file_once(self, store, stored_originals):
        item = with_file("doc", V1_TEXT)
        assert store.put(item.doc, item.sentences, item.vectors) is True
        assert store.put(item.doc, item.sentences, item.vectors) is False
        assert stored_originals() == 1 and store.original("doc", item.doc.version) == ORIGINAL

    @pytest.mark.parametrize("spoil", [
        pytest.param(lambda d: replace(d, original=d.original + b"\x00"), id="sha256-and-size-differ"),
        pytest.param(lambda d: replace(d, source=replace(d.source, sha256="0" * 64)), id="sha256-differs"),
        pytest.param(lambda d: replace(d, source=replace(d.source, sha256=d.source.sha256.upper())),
                     id="sha256-upper-case"),
        pytest.param(lambda d: replace(d, source=replace(d.source, size=d.source.size + 1)), id="size-differs"),
        pytest.param(lambda d: replace(d, original=None), id="source-without-original"),
        pytest.param(lambda d: replace(d, source=None), id="original-without-source"),
    ])
    def test_a_batch_with_one_file_that_does_not_match_stores_nothing(self, store, stored_originals, spoil):
        good, bad = with_file("good", V1_TEXT), with_file("bad", OTHER_TEXT, OTHER_BYTES)
        plain = build("plain", V2_TEXT)
        spoilt: Document = spoil(bad.doc)
        with pytest.raises(ValueError, match="bad"):
            store.put_many([(good.doc, good.sentences, good.vectors), (plain.doc, plain.sentences, plain.vectors),
                            (spoilt, bad.sentences, bad.vectors)])
        assert store.document("good") is None and store.document("plain") is None and store.document("bad") is None
        assert store.original("good", good.doc.version) is None
        assert stored_originals() == 0 and store.sentence_count() == 0
        assert store.list_documents(10, 0).total == 0

    def test_versions_keep_their_files_after_an_update_and_a_delete(self, store, open_store):
        v1 = with_file("doc", V1_TEXT)
        v2 = with_file("doc", V2_TEXT, OTHER_BYTES, filename="notes.docx",
                       media_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        plain = build("doc", OTHER_TEXT)  # a third version, typed in
        for item in (v1, v2, plain):
            store.put(item.doc, item.sentences, item.vectors)
        assert store.document("doc").source is None
        assert store.document("doc", v2.doc.version).source == v2.doc.source
        assert store.delete("doc") is True
        store.close()
        again = open_store()
        for item, original in ((v1, ORIGINAL), (v2, OTHER_BYTES), (plain, None)):
            found = again.document("doc", item.doc.version)
            assert found is not None and not found.current and found.source == item.doc.source
            assert again.original("doc", item.doc.version) == original
        again.make_current("doc", v1.doc.version)
        assert again.document("doc").source.pages == V1_PAGES

    def test_concurrent_batches_bringing_the_same_files_all_land(self, store, stored_originals):
        """Batches that bring the same two files in opposite orders, at once: none fails
        (no deadlock, no duplicate key), each file is stored once and every version reads it."""
        files = [ORIGINAL, OTHER_BYTES]
        batches = [
            [with_file(f"doc-{n}-{i}", f"Copy {n}.{i} of the report.", original)
             for i, original in enumerate(files if n % 2 else files[::-1])]
            for n in range(8)
        ]
        run_at_once([lambda batch=batch: store.put_many([(x.doc, x.sentences, x.vectors) for x in batch])
                     for batch in batches])
        assert stored_originals() == 2
        for batch in batches:
            for item in batch:
                assert store.original(item.doc.doc_id, item.doc.version) == item.doc.original

    def test_ingest_keeps_the_file_it_was_given(self, store):
        source = source_of(ORIGINAL, pages=V1_PAGES)
        ingestor = Ingestor(store, FAKE)
        result = ingestor.ingest(DocumentInput(text=V1_TEXT, doc_id="doc", source=source, original=ORIGINAL))
        assert result.created
        assert store.document("doc").source == source
        assert store.original("doc", result.doc_version) == ORIGINAL
        # The same text typed in is another version, without a file.
        typed = ingestor.ingest(DocumentInput(text=V1_TEXT, doc_id="doc"))
        assert typed.doc_version != result.doc_version
        assert store.original("doc", typed.doc_version) is None
        assert store.original("doc", result.doc_version) == ORIGINAL
