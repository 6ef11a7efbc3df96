"""What the store contracts write and how: sample documents, and building their rows.

Two versions of one document that share a first sentence index but say different
things, and an unrelated document, so dense and lexical search can tell them apart.
Vectors come from the deterministic :class:`FakeEmbedder` unless a test passes the real
model; both are :data:`DIMENSION`-d, so a store opened for one takes either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from citeqa.index.ingest import content_version
from citeqa.index.sentences import split_sentences
from citeqa.index.types import Document, DocumentStore, Embedder, PageSpans, Scored, Sentence, Source
from tests.support.fake_embedder import DIMENSION, FakeEmbedder

__all__ = ["DIMENSION", "FAKE", "ORIGINAL", "OTHER_TEXT", "STORM", "UNICODE_TEXT", "V1_TEXT", "V2_TEXT", "WHALES",
           "Stored", "build", "keys", "put", "source_of", "texts", "vector"]

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

# Bytes of a "file" a version was extracted from: NULs, every byte value, no valid UTF-8,
# so a store that passes them through text anywhere garbles them.
ORIGINAL = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n\x00\x00binary\x00" + bytes(range(256)) + b"\xff\xfe\x80\n%%EOF\n"

STORM = "Storms battered the northern coast all winter."
WHALES = "Migrating whales passed the harbour in spring."


@dataclass(frozen=True)
class Stored:
    doc: Document
    sentences: list[Sentence]
    vectors: np.ndarray


def source_of(original: bytes, filename: str = "report.pdf", media_type: str = "application/pdf",
              pages: PageSpans = ()) -> Source:
    """The source a file's bytes make (size and SHA-256 computed from them)."""
    return Source(media_type=media_type, filename=filename, size=len(original),
                  sha256=hashlib.sha256(original).hexdigest(), pages=pages)


def build(doc_id: str, text: str, embedder: Embedder = FAKE, title: str = "",
          metadata: dict[str, Any] | None = None, source: Source | None = None,
          original: bytes | None = None) -> Stored:
    """A document version as ingest makes it: content-hash version, split sentences, vectors
    (with ``source`` and ``original``: as extracted from that file)."""
    metadata = metadata or {}
    version = content_version(title, text, metadata, source)
    doc = Document(doc_id=doc_id, version=version, text=text, title=title, metadata=metadata, source=source,
                   original=original)
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
