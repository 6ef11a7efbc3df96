"""The data that moves through indexing and retrieval, and the roles that hold it.

Offsets everywhere are Python code points, end-exclusive, into a document version's
stored ``text``: ``document.text[sentence.start:sentence.end] == sentence.text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class Span:
    """A half-open range of code points inside a text."""

    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """One immutable version of a document. ``version`` is a content hash."""

    doc_id: str
    version: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    # True for the document's newest version while the document is live (not deleted).
    current: bool = True


@dataclass(frozen=True)
class Sentence:
    doc_id: str
    doc_version: str
    index: int
    start: int
    end: int
    text: str
    # The backend's own row key (the embedded store's FAISS id), -1 when unknown; lets a
    # backend find the sentence's vector without a lookup by (doc_id, index).
    key: int = field(default=-1, compare=False, repr=False)

    @property
    def id(self) -> str:
        """Stable sentence id of the citation contract."""
        return f"{self.doc_id}:{self.index}"


@dataclass(frozen=True)
class Scored:
    """A sentence with one retriever's score (cosine similarity or BM25)."""

    sentence: Sentence
    score: float


@dataclass(frozen=True)
class Hit:
    """A retrieved sentence after fusion: ``score`` is the fused score used for ranking;
    ``dense_score`` (cosine, -1..1) is the absolute support signal used for abstention."""

    sentence: Sentence
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None


@dataclass(frozen=True)
class DocumentPage:
    documents: list[Document]
    total: int


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (cosine = inner product)."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class Store(Protocol):
    """Documents, their sentences, sentence vectors and a lexical index, kept in step.

    ``put`` is atomic and durable when it returns: an acknowledged document survives a
    crash, and its sentences are searchable (dense and lexical) from then on.
    Only the current version of a live document is searched; every version stays readable.
    """

    def put(self, doc: Document, sentences: Sequence[Sentence], vectors: np.ndarray) -> None: ...

    def put_many(self, items: Sequence[tuple[Document, Sequence[Sentence], np.ndarray]]) -> None:
        """``put`` for several documents, atomically."""
        ...

    def make_current(self, doc_id: str, version: str) -> None: ...

    def document(self, doc_id: str, version: str | None = None) -> Document | None: ...

    def sentences(self, doc_id: str, version: str) -> list[Sentence]: ...

    def list_documents(self, limit: int, offset: int) -> DocumentPage: ...

    def delete(self, doc_id: str) -> bool: ...

    def vectors_by_text(self, doc_id: str, title: str) -> dict[str, np.ndarray]:
        """Stored vectors of this document's sentences in versions with this title (the
        title is part of what was embedded), keyed by sentence text: reused on update."""
        ...

    def lexical_document_search(self, query: str, k: int) -> list[tuple[str, float]]:
        """(doc_id, BM25 over title and text) of the best-matching live documents."""
        ...

    def current_sentences(self, doc_ids: Sequence[str]) -> list[Sentence]:
        """The searchable sentences of these documents' current versions."""
        ...

    def dense_search(self, vector: np.ndarray, k: int) -> list[Scored]: ...

    def dense_scores(self, vector: np.ndarray, sentences: Sequence[Sentence]) -> list[float]:
        """Cosine of ``vector`` with each (searchable) sentence, in order."""
        ...

    def lexical_search(self, query: str, k: int) -> list[Scored]: ...

    def sentence_count(self) -> int: ...

    def get_flag(self, key: str) -> str | None: ...

    def set_flag(self, key: str, value: str) -> None: ...

    def close(self) -> None: ...
