"""A store seen through one :class:`citeqa.index.scope.Scope`: what a request may read.

The answerer, the retriever and the citation checker read a store through the roles of
index/types.py without knowing about collections. A request's scope (its collection, its
filter, what its API key may see) is bound here once, and every read the answering code
makes goes through it: searches return only sentences in scope, document reads only
documents of the scope's collection. So nothing outside the scope can be retrieved, cited
or quoted, whichever path an answer takes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from citeqa.index.scope import Scope
from citeqa.index.types import Document, Scored, Sentence, Store


class ScopedView:
    """The search and read roles (HybridIndex, and DocumentStore's reads) of ``store``,
    limited to ``scope``. Writes are not offered: ingest names its collection itself."""

    def __init__(self, store: Store, scope: Scope):
        self.store = store
        self.scope = scope

    @property
    def collection(self) -> str:
        return self.scope.collection

    # -- searches: the whole scope, filter included --------------------------------------

    def dense_search(self, vector: np.ndarray, k: int) -> list[Scored]:
        return self.store.dense_search(vector, k, self.scope)

    def lexical_search(self, query: str, k: int) -> list[Scored]:
        return self.store.lexical_search(query, k, self.scope)

    def lexical_document_search(self, query: str, k: int) -> list[tuple[str, float]]:
        return self.store.lexical_document_search(query, k, self.scope)

    def dense_scores(self, vector: np.ndarray, sentences: Sequence[Sentence]) -> list[float]:
        # Sentences of another collection score 0.0, as sentences that are not searchable do.
        own = [s for s in sentences if s.collection == self.collection]
        scores = dict(zip((id(s) for s in own), self.store.dense_scores(vector, own), strict=True))
        return [scores.get(id(s), 0.0) for s in sentences]

    def current_sentences(self, doc_ids: Sequence[str]) -> list[Sentence]:
        """Neighbours of candidates: the collection's, filtered to the scope's doc_ids."""
        if self.scope.doc_ids is not None:
            doc_ids = [d for d in doc_ids if d in self.scope.doc_ids]
        return self.store.current_sentences(doc_ids, self.collection)

    def searchable_texts(self, wanted: Sequence[tuple[str, int]]) -> list[tuple[str, str, int, str]]:
        """Neighbours' texts, as current_sentences: the collection's, in the scope's doc_ids."""
        if self.scope.doc_ids is not None:
            wanted = [w for w in wanted if w[0] in self.scope.doc_ids]
        return self.store.searchable_texts(wanted, self.collection)

    # -- reads of the scope's collection -------------------------------------------------

    def document(self, doc_id: str, version: str | None = None) -> Document | None:
        return self.store.document(doc_id, version, self.collection)

    def document_info(self, doc_id: str, version: str) -> Document | None:
        return self.store.document_info(doc_id, version, self.collection)

    def sentences(self, doc_id: str, version: str) -> list[Sentence]:
        return self.store.sentences(doc_id, version, self.collection)

    def original(self, doc_id: str, version: str) -> bytes | None:
        return self.store.original(doc_id, version, self.collection)
