"""What the store contracts write and how: sample documents, and building their rows.

Two versions of one document that share a first sentence index but say different
things, and an unrelated document, so dense and lexical search can tell them apart.
Vectors come from the deterministic :class:`FakeEmbedder` unless a test passes the real
model; both are :data:`DIMENSION`-d, so a store opened for one takes either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from citeqa.index.ingest import content_version
from citeqa.index.sentences import split_sentences
from citeqa.index.types import Document, DocumentStore, Embedder, Scored, Sentence
from tests.support.fake_embedder import DIMENSION, FakeEmbedder

__all__ = ["DIMENSION", "FAKE", "OTHER_TEXT", "STORM", "UNICODE_TEXT", "V1_TEXT", "V2_TEXT", "WHALES", "Stored",
           "build", "keys", "put", "texts", "vector"]

FAKE = FakeEmbedder()

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


def build(doc_id: str, text: str, embedder: Embedder = FAKE, title: str = "",
          metadata: dict[str, Any] | None = None) -> Stored:
    """A document version as ingest makes it: content-hash version, split sentences, vectors."""
    metadata = metadata or {}
    version = content_version(title, text, metadata)
    doc = Document(doc_id=doc_id, version=version, text=text, title=title, metadata=metadata)
    sentences = [
        Sentence(doc_id, version, i, span.start, span.end, text[span.start:span.end])
        for i, span in enumerate(split_sentences(text))
    ]
    return Stored(doc, sentences, embedder.encode([s.text for s in sentences]))


def put(store: DocumentStore, doc_id: str, text: str, embedder: Embedder = FAKE, **kwargs: Any) -> Stored:
    item = build(doc_id, text, embedder, **kwargs)
    store.put(item.doc, item.sentences, item.vectors)
    return item


def vector(text: str, embedder: Embedder = FAKE) -> np.ndarray:
    return embedder.encode([text])[0]


def keys(results: list[Scored]) -> set[tuple[str, str, int]]:
    return {(r.sentence.doc_id, r.sentence.doc_version, r.sentence.index) for r in results}


def texts(results: list[Scored]) -> list[str]:
    return [r.sentence.text for r in results]
