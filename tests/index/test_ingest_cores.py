"""Ingest leaves a core to the language analysis while it encodes (index/embedder.py
``encode_beside``): the vectors must be the ones ``encode`` gives, whatever the thread
count, and torch must get its threads back afterwards."""

from __future__ import annotations

from contextlib import closing

import numpy as np
import pytest
import torch

from citeqa.index.embedded_store import EmbeddedStore
from citeqa.index.ingest import DocumentInput, Ingestor, SharesCores, embedding_text
from citeqa.index.language import shared_analyzer
from tests.support.vectors import assert_same_vectors

# Lengths that differ, so the length order differs from the given order, and more texts
# than one model batch (64).
TEXTS = [f"Sentence {i} says{' more' * (i % 13)} about the Normans in Normandy." for i in range(150)]


def test_encode_beside_gives_encode_vectors_in_the_given_order(embedder):
    calls = 0

    def busy() -> bool:
        nonlocal calls
        calls += 1
        return calls == 1  # one thread for the first batch, all of them for the rest

    threads = torch.get_num_threads()
    beside = embedder.encode_beside(TEXTS, busy)
    assert torch.get_num_threads() == threads
    assert calls >= 2 or threads == 1
    plain = embedder.encode(TEXTS)
    assert_same_vectors(beside, plain, embedder)


def test_encode_beside_restores_threads_when_encoding_fails(embedder):
    threads = torch.get_num_threads()

    def broken() -> bool:
        raise RuntimeError("the busy check failed")

    try:
        embedder.encode_beside(TEXTS[:3], broken)
    except RuntimeError:
        pass
    assert torch.get_num_threads() == threads
    assert embedder.encode_beside([], broken).shape == (0, embedder.dimension)


def test_ingest_with_analysis_stores_the_model_vectors_and_mentions(embedder, tmp_path):
    assert isinstance(embedder, SharesCores)
    text = " ".join(TEXTS[:80])
    item = DocumentInput(text=text, doc_id="normans", title="Normans")
    with closing(EmbeddedStore(tmp_path, embedder.dimension)) as store:
        result = Ingestor(store, embedder, shared_analyzer()).ingest(item)
        sentences = store.sentences(result.doc_id, result.doc_version)
        stored = store.vectors_by_text(result.doc_id, item.title)
    assert result.embedded == len(sentences) > 64
    expected = embedder.encode([embedding_text(item.title, s.text) for s in sentences])
    assert_same_vectors(np.stack([stored[s.text] for s in sentences]), expected, embedder)
    assert all(s.analysed for s in sentences)
    assert any(m.label == "NORP" or m.label == "GPE" for s in sentences for m in s.mentions)


def test_on_every_core_gives_encode_vectors_in_order_and_runs_the_side_task(embedder):
    from citeqa.index.encode_pool import on_every_core

    threads = torch.get_num_threads()
    ran: list[bool] = []
    vectors = on_every_core(embedder, TEXTS, workers=2, beside=lambda: ran.append(True), chunk=40)
    assert ran == [True] and torch.get_num_threads() == threads
    assert vectors.shape == (len(TEXTS), embedder.dimension)
    assert_same_vectors(vectors, embedder.encode(TEXTS), embedder)


def test_on_every_core_raises_what_a_task_raised(embedder):
    from citeqa.index.encode_pool import on_every_core

    threads = torch.get_num_threads()

    def broken() -> None:
        raise RuntimeError("the analysis failed")

    with pytest.raises(RuntimeError, match="analysis failed"):
        on_every_core(embedder, TEXTS[:10], workers=2, beside=broken)
    assert torch.get_num_threads() == threads
