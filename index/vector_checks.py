"""Refusing vectors a store cannot hold, before anything is written.

A vector of the wrong dimension must never reach a store: SQLite would keep its bytes
and FAISS would fail only after the commit (and on every later open), pgvector would
fail mid-transaction. So every backend writes through :class:`CheckedWrites`, which
checks a batch whole first, and checks on open that its data was made by a model of the
embedder's dimension.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from citeqa.index.types import Document, Sentence

Batch = Sequence[tuple[Document, Sequence[Sentence], np.ndarray]]


def check_batch(items: Batch, dimension: int) -> None:
    """ValueError unless every document comes with one ``dimension``-d vector per sentence."""
    for doc, sentences, vectors in items:
        shape = np.shape(vectors)
        count = shape[0] if shape else 0
        if count != len(sentences):
            raise ValueError(f"{doc.doc_id}: {count} vectors for {len(sentences)} sentences; one vector per sentence")
        if count and (len(shape) != 2 or shape[1] != dimension):
            raise ValueError(f"{doc.doc_id}: expected {dimension}-d vectors, shape ({count}, {dimension}); "
                             f"got shape {shape}")


def check_stored_dimension(stored: str | None, dimension: int, holder: str, instead: str) -> None:
    """ValueError if ``holder`` records vectors of another dimension than ``dimension``
    (another model made them). ``stored`` is what it records, None when nothing yet."""
    if stored is not None and int(stored) != dimension:
        raise ValueError(
            f"{holder} holds {stored}-d vectors but the embedder makes {dimension}-d ones; "
            f"use another {instead} for another model"
        )


class CheckedWrites(ABC):
    """``put`` and ``put_many`` of :class:`citeqa.index.types.DocumentStore`, checked: a
    backend writes a batch in ``_write`` (one transaction) only once all of it passed."""

    dimension: int

    def put(self, doc: Document, sentences: Sequence[Sentence], vectors: np.ndarray) -> bool:
        return self.put_many([(doc, sentences, vectors)])[0]

    def put_many(self, items: Batch) -> list[bool]:
        """Store several documents in one transaction: all or none."""
        check_batch(items, self.dimension)
        return self._write(items) if items else []

    @abstractmethod
    def _write(self, items: Batch) -> list[bool]:
        """Store a checked, non-empty batch in one transaction; the last version of a document
        wins. Says, item by item, whether this write stored the version (False: it was there)."""
