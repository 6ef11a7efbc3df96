"""Ingestion: versions, re-embedding only what changed, validation, input files.

The model is the deterministic fake embedder behind a counter: what is tested is what
ingest asks it to embed, not what the vectors mean.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pytest

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.ingest import (
    DocumentInput,
    Ingestor,
    InvalidDocument,
    content_version,
    embedding_text,
    read_inputs,
    validate,
)
from citeqa.index.types import Embedder
from tests.support.corpus import SEEDS_DIR
from tests.support.fake_embedder import FakeEmbedder

TROOPS_FACT = "11,000 to 12,000"


class CountingEmbedder:
    """A thin wrapper around an embedder that records what it is asked to embed."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts)

    @property
    def embedded(self) -> list[str]:
        return [t for call in self.calls for t in call]


@pytest.fixture
def counting():
    return CountingEmbedder(FakeEmbedder())


@pytest.fixture
def store(tmp_path, counting):
    s = EmbeddedStore(tmp_path / "data", counting.dimension)
    yield s
    s.close()


@pytest.fixture
def ingestor(store, counting):
    return Ingestor(store, counting)


ARTICLE = (
    "Harbour Report\n"
    "The ferry left at nine. Gulls followed it out of the bay. "
    "The captain reported calm seas."
)


# -- ingest ----------------------------------------------------------------------------------


def test_first_ingest_creates_and_embeds_every_sentence(ingestor, counting, store):
    result = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour", title="Harbour"))
    assert result.created is True
    assert result.doc_id == "harbour"
    assert result.doc_version == content_version("Harbour", ARTICLE, {})
    assert result.sentence_count == 4 == result.embedded
    # The model sees each sentence prefixed with its document's title.
    expected = [embedding_text("Harbour", s.text) for s in store.sentences("harbour", result.doc_version)]
    assert sorted(counting.embedded) == sorted(expected)
    assert all(text.startswith("Harbour: ") for text in counting.embedded)
    assert store.document("harbour").text == ARTICLE


def test_same_content_twice_is_a_no_op(ingestor, counting, store):
    first = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour"))
    calls = len(counting.calls)
    second = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour"))
    assert second.created is False
    assert second.embedded == 0
    assert len(counting.calls) == calls  # the model was not called at all
    assert (second.doc_id, second.doc_version, second.sentence_count) == (
        first.doc_id, first.doc_version, first.sentence_count,
    )
    assert store.sentence_count() == 4


def test_document_without_id_gets_a_content_derived_id(ingestor):
    a = ingestor.ingest(DocumentInput(text=ARTICLE))
    b = ingestor.ingest(DocumentInput(text=ARTICLE))
    assert a.doc_id == b.doc_id == f"doc-{a.doc_version}"
    assert b.created is False


def test_changed_document_re_embeds_only_changed_sentences(ingestor, counting, store):
    first = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour"))
    changed = ARTICLE.replace("Gulls followed it out of the bay.", "Dolphins raced beside the hull.")
    counting.calls.clear()
    second = ingestor.ingest(DocumentInput(text=changed, doc_id="harbour"))
    assert second.created is True
    assert second.doc_version != first.doc_version
    assert second.embedded == 1
    assert counting.embedded == ["Dolphins raced beside the hull."]
    assert store.document("harbour").version == second.doc_version
    assert store.document("harbour", first.doc_version).text == ARTICLE
    # Reused vectors are the real ones: the unchanged sentence is still found exactly.
    hit = store.dense_search(counting.inner.encode(["The captain reported calm seas."])[0], 1)[0]
    assert hit.sentence.doc_version == second.doc_version
    assert hit.score == pytest.approx(1.0, abs=1e-4)


def test_title_change_re_embeds_every_sentence(ingestor, counting):
    ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour", title="Harbour"))
    counting.calls.clear()
    second = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour", title="Port"))
    assert second.embedded == second.sentence_count
    assert all(text.startswith("Port: ") for text in counting.embedded)


def test_metadata_change_is_a_new_version_with_nothing_embedded(ingestor, counting):
    first = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour", metadata={"a": 1}))
    counting.calls.clear()
    second = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour", metadata={"a": 2}))
    assert second.created is True and second.doc_version != first.doc_version
    assert second.embedded == 0
    assert counting.calls == []


def test_re_posting_an_old_version_makes_it_current_again(ingestor, counting, store):
    first = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour"))
    ingestor.ingest(DocumentInput(text="Something else entirely happened today.", doc_id="harbour"))
    counting.calls.clear()
    again = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour"))
    assert again.created is False and again.doc_version == first.doc_version
    assert counting.calls == []
    assert store.document("harbour").version == first.doc_version
    assert [h.sentence.text for h in store.lexical_search("gulls", 5)] == ["Gulls followed it out of the bay."]
    assert store.lexical_search("entirely", 5) == []


def test_ingest_many_embeds_shared_sentences_once_in_one_batch(ingestor, counting):
    results = ingestor.ingest_many([
        DocumentInput(text="Shared opening line. First body.", doc_id="a"),
        DocumentInput(text="Shared opening line. Second body.", doc_id="b"),
    ])
    assert [r.created for r in results] == [True, True]
    assert len(counting.calls) == 1
    assert sorted(counting.embedded) == ["First body.", "Second body.", "Shared opening line."]


@pytest.mark.parametrize(
    "item",
    [
        DocumentInput(text=""),
        DocumentInput(text="   \n\t  "),
        DocumentInput(text="\u3000\u00a0"),
        DocumentInput(text="Bad\x00byte."),
        DocumentInput(text="Fine text.", title="Bad\x00title"),
        DocumentInput(text="Lone \ud800 surrogate."),
        DocumentInput(text="Fine text.", doc_id=""),
        DocumentInput(text="Fine text.", doc_id="   "),
        DocumentInput(text="Fine text.", doc_id=" padded"),
        DocumentInput(text="Fine text.", doc_id="padded "),
        DocumentInput(text="Fine text.", doc_id="two\nlines"),
        DocumentInput(text="Fine text.", doc_id="tab\there"),
        DocumentInput(text="Fine text.", doc_id="bell\x07"),
    ],
)
def test_invalid_documents_are_rejected_before_anything_is_stored(ingestor, counting, store, item):
    with pytest.raises(InvalidDocument):
        ingestor.ingest(item)
    assert counting.calls == []
    assert store.list_documents(10, 0).total == 0


def test_an_invalid_document_in_a_batch_stores_none_of_it(ingestor, store):
    with pytest.raises(InvalidDocument):
        ingestor.ingest_many([DocumentInput(text=ARTICLE, doc_id="ok"), DocumentInput(text=" ", doc_id="bad")])
    assert store.document("ok") is None


def test_valid_doc_ids_pass(ingestor):
    for doc_id in ("with space inside", "ünïcode-id", "a/b:c"):
        assert validate(DocumentInput(text="Text.", doc_id=doc_id)).doc_id == doc_id
    assert ingestor.ingest(DocumentInput(text="Text here.", doc_id="with space inside")).created


# -- input files -------------------------------------------------------------------------------


def test_read_txt_with_json_sidecar(tmp_path):
    (tmp_path / "story.txt").write_text("Headline Here\nBody sentence one. Body two.\n", encoding="utf-8")
    (tmp_path / "story.json").write_text(
        json.dumps({"doc_id": "story-1", "title": "Given Title", "metadata": {"source": "wire"}}), encoding="utf-8"
    )
    [item] = read_inputs([tmp_path / "story.txt"])
    assert item.doc_id == "story-1"
    assert item.title == "Given Title"
    assert item.metadata == {"source_file": "story.txt", "source": "wire"}
    assert item.text == "Headline Here\nBody sentence one. Body two.\n"


def test_read_txt_without_sidecar_uses_stem_and_first_line(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_bytes("\n\n  First Line Title  \r\nBody.\r\n".encode("utf-8"))
    [item] = read_inputs([path])
    assert item.doc_id == "plain"
    assert item.title == "First Line Title"
    assert item.metadata == {"source_file": "plain.txt"}


def test_read_markdown(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# The Markdown Title\n\nSome *emphasis* here. Another sentence.\n", encoding="utf-8")
    [item] = read_inputs([path])
    assert item.doc_id == "notes"
    assert item.title == "The Markdown Title"
    assert item.text.startswith("# The Markdown Title\n")


def test_read_jsonl(tmp_path):
    path = tmp_path / "batch.jsonl"
    rows = [
        {"doc_id": "j1", "title": "One", "text": "First document.", "metadata": {"k": "v"}},
        {"text": "Second document, no id."},
    ]
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n", encoding="utf-8")
    items = read_inputs([path])
    assert [(i.doc_id, i.title, i.text, i.metadata) for i in items] == [
        ("j1", "One", "First document.", {"k": "v"}),
        (None, "", "Second document, no id.", {}),
    ]


@pytest.mark.parametrize(
    "bad_line",
    [
        "{not json",
        json.dumps({"title": "no text"}),
        json.dumps(["a", "list"]),
        json.dumps("a string"),
        json.dumps({"text": None}),
        json.dumps({"text": 42}),
        json.dumps({"text": "ok", "doc_id": 7}),
    ],
)
def test_bad_jsonl_line_names_its_line_number(tmp_path, bad_line):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"text": "Good one."}) + "\n" + json.dumps({"text": "Good two."}) + "\n" + bad_line + "\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidDocument, match=r"bad\.jsonl:3:"):
        read_inputs([path])


def test_read_directory_takes_txt_md_jsonl_only(tmp_path):
    (tmp_path / "a.txt").write_text("A text.", encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps({"title": "A"}), encoding="utf-8")
    (tmp_path / "b.md").write_text("B text.", encoding="utf-8")
    (tmp_path / "c.jsonl").write_text(json.dumps({"doc_id": "c", "text": "C text."}) + "\n", encoding="utf-8")
    (tmp_path / "ignored.csv").write_text("x,y\n", encoding="utf-8")
    items = read_inputs([tmp_path])
    assert [(i.doc_id, i.title) for i in items] == [("a", "A"), ("b", "B text."), ("c", "")]


def test_seed_folder_reads_as_the_seed_article():
    items = read_inputs([SEEDS_DIR])
    assert len(items) == 1
    assert items[0].doc_id == "seed-russia-north-korea"
    assert TROOPS_FACT in items[0].text


def test_ingest_each_reports_invalid_items_in_place_and_stores_the_rest_at_once(ingestor, store, monkeypatch):
    writes: list[int] = []
    put_many = store.put_many
    monkeypatch.setattr(store, "put_many", lambda items: writes.append(len(items)) or put_many(items))
    items = [DocumentInput(text=ARTICLE, doc_id="harbour"), DocumentInput(text="  ", doc_id="blank"),
             DocumentInput(text="Bakers rise early.", doc_id="bad\nid"), DocumentInput(text="Bakers rise early.")]
    first = ingestor.ingest_each(items)
    assert isinstance(first[1], InvalidDocument) and "empty" in str(first[1])
    assert isinstance(first[2], InvalidDocument) and "line breaks" in str(first[2])
    stored = [first[0], first[3]]
    assert all(not isinstance(r, InvalidDocument) and r.created for r in stored)
    assert writes == [2]  # one transaction for the valid ones
    assert store.document("harbour") is not None and store.document("blank") is None
    again = ingestor.ingest_each(items)
    assert [getattr(r, "created", None) for r in again] == [False, None, None, False]
    with pytest.raises(InvalidDocument):  # ingest_many refuses the whole batch instead
        ingestor.ingest_many(items)


# -- when the analysis runs ---------------------------------------------------------------------


class RecordingListener:
    """An IngestListener that records what ingest tells it (the service's backfill in production)."""

    def __init__(self):
        self.events: list[tuple[str, int]] = []

    def ingest_started(self) -> None:
        self.events.append(("started", 0))

    def ingest_finished(self, unanalysed: int) -> None:
        self.events.append(("finished", unanalysed))


def test_background_analysis_stores_sentences_unanalysed_and_tells_the_listener(store, counting, analyzer):
    listener = RecordingListener()
    ingestor = Ingestor(store, counting, analyzer, analysis="background", listener=listener)
    result = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour"))
    stored = store.sentences("harbour", result.doc_version)
    assert [s.analysed for s in stored] == [False] * 4 and all(s.mentions == () for s in stored)
    assert listener.events == [("started", 0), ("finished", 4)]
    assert [s.id for s in store.unanalysed_sentences(100)] == [s.id for s in stored]
    # The same content again stores nothing: nothing new to analyse.
    ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour"))
    assert listener.events[2:] == [("started", 0), ("finished", 0)]


def test_inline_analysis_stores_mentions_before_acknowledging(store, counting, analyzer):
    listener = RecordingListener()
    ingestor = Ingestor(store, counting, analyzer, analysis="inline", listener=listener)
    result = ingestor.ingest(DocumentInput(text="Marie Curie moved to Paris in 1891.", doc_id="curie"))
    [sentence] = store.sentences("curie", result.doc_version)
    assert sentence.analysed
    assert {("Marie Curie", "PERSON"), ("Paris", "GPE")} <= {(sentence.text[m.start:m.end], m.label)
                                                             for m in sentence.mentions}
    assert listener.events == [("started", 0), ("finished", 0)]


def test_background_analysis_without_a_listener_analyses_inline(store, counting, analyzer):
    # Nothing would analyse the sentences later: ingest does it, rather than leave them bare.
    ingestor = Ingestor(store, counting, analyzer, analysis="background")
    result = ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour"))
    assert all(s.analysed for s in store.sentences("harbour", result.doc_version))


def test_a_failed_ingest_still_tells_the_listener_it_ended(store, counting, analyzer, monkeypatch):
    listener = RecordingListener()
    ingestor = Ingestor(store, counting, analyzer, analysis="background", listener=listener)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "put_many", broken)
    with pytest.raises(RuntimeError):
        ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="harbour"))
    # Else the backfill would wait for the end of an ingest forever.
    assert listener.events == [("started", 0), ("finished", 0)]
