"""Stores written before mentions were stored: they open, read as not analysed, and a
running service analyses them in the background (index/mention_backfill.py)."""

from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from typing import Any, Iterator

import pytest

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.ingest import DocumentInput, Ingestor
from citeqa.index.mention_backfill import MentionBackfill
from tests.contracts.samples import DIMENSION, FAKE, OTHER_TEXT, STORM, V1_TEXT, vector

ARTICLE = "Marie Curie moved to Paris in 1891. She won the Nobel Prize in Physics in 1903."


def old_data_directory(path) -> None:
    """A data directory as citeqa wrote it before mentions: its sentences table has no
    mentions column (and no index on it)."""
    with closing(EmbeddedStore(path, DIMENSION)) as store:
        ingestor = Ingestor(store, FAKE)
        for doc_id, text in (("lighthouse", V1_TEXT), ("bakery", OTHER_TEXT), ("curie", ARTICLE)):
            ingestor.ingest(DocumentInput(text=text, doc_id=doc_id))
    with closing(sqlite3.connect(path / "citeqa.sqlite3")) as conn:
        conn.execute("DROP INDEX sentences_unanalysed")
        conn.execute("ALTER TABLE sentences DROP COLUMN mentions")
        conn.commit()
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sentences)")}
    assert "mentions" not in columns and {"text", "vector", "active"} <= columns


def test_an_old_data_directory_opens_and_reads_as_not_analysed(tmp_path):
    old_data_directory(tmp_path / "data")
    with closing(EmbeddedStore(tmp_path / "data", DIMENSION)) as store:
        assert store.sentence_count() == 8
        hits = store.dense_search(vector(STORM), 8)
        assert hits[0].sentence.text == STORM
        assert all(h.sentence.mentions == () and not h.sentence.analysed for h in hits)
        assert len(store.unanalysed_sentences(100)) == 8


def test_the_backfill_thread_analyses_an_old_directory(tmp_path, analyzer):
    old_data_directory(tmp_path / "data")
    with closing(EmbeddedStore(tmp_path / "data", DIMENSION)) as store:
        backfill = MentionBackfill(store, analyzer, batch=3)
        backfill.start()
        assert backfill.wait(timeout=120)
        assert backfill.done == 8
        assert store.unanalysed_sentences(100) == []
        curie = store.current_sentences(["curie"])
        assert all(s.analysed for s in curie)
        found = {(s.text[m.start:m.end], m.label) for s in curie for m in s.mentions}
        assert {("Marie Curie", "PERSON"), ("Paris", "GPE")} <= found
        # Only mentions were written: FAISS still holds exactly the searchable sentences.
        assert store.reconcile() == (0, 0)
        assert store.dense_search(vector(STORM), 1)[0].sentence.text == STORM


def test_services_analyse_an_old_directory_while_running(tmp_path, analyzer):
    from citeqa.api.services import Services
    from citeqa.api.settings import Settings

    old_data_directory(tmp_path / "data")
    services = Services.open(Settings(data_dir=tmp_path / "data", seeds_dir=None), embedder=FAKE, analyzer=analyzer)
    try:
        assert services.analyzer is analyzer and services.ingestor.analyzer is analyzer
        assert services.backfill is not None and services.backfill.wait(timeout=120)
        assert all(s.analysed for s in services.store.current_sentences(["lighthouse", "bakery", "curie"]))
        result = services.ingestor.ingest(DocumentInput(text="Ada Lovelace lived in London.", doc_id="ada"))
        # Analysed after the ingest (CITEQA_MENTION_ANALYSIS=background): the ingest woke the backfill.
        assert services.backfill.wait(timeout=120)
        ada = services.store.sentences("ada", result.doc_version)
        assert all(s.analysed for s in ada)
        assert {("Ada Lovelace", "PERSON"), ("London", "GPE")} <= {(s.text[m.start:m.end], m.label)
                                                                   for s in ada for m in s.mentions}
    finally:
        services.close()


def test_stopping_the_backfill_leaves_the_rest_for_the_next_start(tmp_path, analyzer):
    old_data_directory(tmp_path / "data")
    with closing(EmbeddedStore(tmp_path / "data", DIMENSION)) as store:
        backfill = MentionBackfill(store, analyzer, batch=1)
        backfill.stop()  # stopped before its first batch
        backfill.start()
        assert backfill.wait(timeout=60) and backfill.done == 0
        assert len(store.unanalysed_sentences(100)) == 8


@pytest.mark.parametrize("batch", [1, 5, 100])
def test_every_batch_size_reaches_every_sentence(tmp_path, analyzer, batch):
    old_data_directory(tmp_path / "data")
    with closing(EmbeddedStore(tmp_path / "data", DIMENSION)) as store:
        backfill = MentionBackfill(store, analyzer, batch=batch)
        backfill.start()
        assert backfill.wait(timeout=120) and backfill.done == 8
        assert store.unanalysed_sentences(100) == []


# -- analysis after ingest (CITEQA_MENTION_ANALYSIS=background) -----------------------------


@contextmanager
def running(backfill: MentionBackfill) -> Iterator[MentionBackfill]:
    backfill.start()
    try:
        yield backfill
    finally:
        backfill.stop()


def mentions_by_id(sentences) -> dict[str, tuple]:
    return {s.id: (s.analysed, tuple(s.mentions)) for s in sentences}


def test_the_backfill_analyses_what_a_background_ingest_stored_as_inline_ingest_would(tmp_path, analyzer):
    documents = [DocumentInput(text=text, doc_id=doc_id) for doc_id, text in
                 (("lighthouse", V1_TEXT), ("bakery", OTHER_TEXT), ("curie", ARTICLE))]
    with closing(EmbeddedStore(tmp_path / "inline", DIMENSION)) as store:
        Ingestor(store, FAKE, analyzer, analysis="inline").ingest_many(documents)
        inline = mentions_by_id(store.current_sentences(["lighthouse", "bakery", "curie"]))
    with closing(EmbeddedStore(tmp_path / "background", DIMENSION)) as store:
        with running(MentionBackfill(store, analyzer, quiet_s=0.0)) as backfill:
            ingestor = Ingestor(store, FAKE, analyzer, analysis="background", listener=backfill)
            with backfill.held():
                ingestor.ingest_many(documents)
                assert len(store.unanalysed_sentences(100)) == 8  # acknowledged before any analysis
            assert backfill.wait(timeout=120)
            assert store.unanalysed_sentences(100) == []
            assert mentions_by_id(store.current_sentences(["lighthouse", "bakery", "curie"])) == inline
            assert store.reconcile() == (0, 0)  # only mentions were written


def test_no_analysis_while_an_ingest_runs(tmp_path, analyzer):
    old_data_directory(tmp_path / "data")
    with closing(EmbeddedStore(tmp_path / "data", DIMENSION)) as store:
        backfill = MentionBackfill(store, analyzer, quiet_s=0.0)
        backfill.ingest_started()  # an ingest in progress (its encode has the cores)
        with running(backfill):
            assert not backfill.wait(timeout=1.0)
            assert len(store.unanalysed_sentences(100)) == 8
            backfill.ingest_finished(0)
            assert backfill.wait(timeout=120) and store.unanalysed_sentences(100) == []


@contextmanager
def opened_services(data_dir, analyzer, mention_analysis: str) -> Iterator[Any]:
    from citeqa.api.services import Services
    from citeqa.api.settings import Settings

    settings = Settings(data_dir=data_dir, seeds_dir=None, mention_analysis=mention_analysis)
    services = Services.open(settings, embedder=FAKE, analyzer=analyzer)
    try:
        assert services.backfill is not None
        yield services
    finally:
        services.close()


def test_a_restart_resumes_the_analysis_of_a_background_ingest(tmp_path, analyzer):
    with opened_services(tmp_path / "data", analyzer, "background") as services:
        assert services.backfill.wait(timeout=60)
        with services.backfill.held():
            services.ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="curie"))
            services.backfill.stop()  # stopped before it analysed anything (as if killed)
    with closing(EmbeddedStore(tmp_path / "data", DIMENSION)) as store:
        assert len(store.unanalysed_sentences(100)) == 2
    with opened_services(tmp_path / "data", analyzer, "background") as services:
        assert services.backfill.wait(timeout=120)
        curie = services.store.current_sentences(["curie"])
        assert all(s.analysed for s in curie)
        assert ("Marie Curie", "PERSON") in {(s.text[m.start:m.end], m.label) for s in curie for m in s.mentions}


def test_inline_setting_analyses_before_the_ingest_returns(tmp_path, analyzer):
    with opened_services(tmp_path / "data", analyzer, "inline") as services:
        with services.backfill.held():  # no backfill could have done it
            result = services.ingestor.ingest(DocumentInput(text=ARTICLE, doc_id="curie"))
            assert all(s.analysed for s in services.store.sentences("curie", result.doc_version))
