"""The reads both SQL backends make alike: one statement each, in their own dialect.

``document``, ``document_info``, ``original``, ``sentences``, ``list_documents``, ``vectors_by_text``,
``sentence_count``, ``get_flag``, ``current_sentences``, ``searchable_texts``, ``unanalysed_sentences`` and
``dense_scores`` (from the stored vectors) each
run one parameterised statement and read its rows with :mod:`citeqa.index.rows`. Only
the SQL differs between SQLite and PostgreSQL (tables, ``:name`` or ``%(name)s``
placeholders, how a list is bound), so a backend gives its statements and how to run
one, and the rest is written once, here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping, Sequence

import numpy as np

from citeqa.index import rows
from citeqa.index.scope import DEFAULT_COLLECTION, key_prefix, split_key, storage_key
from citeqa.index.types import Collection, Document, DocumentPage, Sentence


@dataclass(frozen=True)
class ReadStatements:
    """A backend's SQL for the reads, with named parameters."""

    document: str  # doc_id -> the current version of the live document (a document row)
    document_version: str  # doc_id, version -> that version, current or not (a document row)
    # doc_id, version -> that version's document row with '' in place of its text
    document_info: str
    original: str  # doc_id, version -> (the bytes of its source's original,) if it has a source
    sentences: str  # doc_id, version -> that version's sentence rows, by index
    # Every doc_id parameter and column is a storage key (index/scope.py). ``prefix``: the
    # key_prefix of a collection ("" for default: keys without a separator).
    live_count: str  # prefix -> (number of live documents in the collection,)
    # prefix, limit (NULL: no limit), offset -> listed-document rows of the collection's live documents, by doc_id
    listing: str
    vectors_by_text: str  # doc_id, title -> (sentence text, stored vector) of every such version
    sentence_count: str  # -> (number of searchable sentences,)
    flag: str  # key -> (value,)
    # doc_ids (a list) -> sentence rows of the searchable sentences of their current versions, by doc_id, idx
    current_sentences: str
    # doc_ids, indexes (two lists, pairwise) -> (doc_id, idx, stored vector) of those of them that are searchable
    searchable_vectors: str
    # doc_ids, indexes (two lists, pairwise) -> (doc_id, version, idx, text) of those of them that are searchable
    searchable_texts: str
    # after (a row key), limit -> sentence rows stored without mentions (NULL), by key
    unanalysed: str
    collections: str  # -> (name, created_at) of every collection, by name
    has_collection: str  # name -> a row if the collection exists
    # -> (storage key,) of every live document: counted per collection in Python (a few
    # thousand rows: listing collections is rare and this needs no per-dialect parsing)
    live_keys: str


class SqlReads(ABC):
    """Those reads (of the DocumentStore, LexicalIndex and DenseIndex roles), for a
    backend that gives ``_reads`` and implements ``_fetch``, ``_vector`` and ``_list``."""

    _reads: ClassVar[ReadStatements]

    @abstractmethod
    def _fetch(self, sql: str, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        """The rows of one statement, on a connection borrowed for it (or the one this
        thread already holds, inside ``_snapshot``)."""

    @abstractmethod
    def _vector(self, stored: Any) -> np.ndarray:
        """A vector as the backend stores it, as float32 numpy."""

    @abstractmethod
    def _list(self, values: list[Any]) -> Any:
        """A list parameter as the backend binds it."""

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the database (where the backend can promise it)."""
        yield

    def document(self, doc_id: str, version: str | None = None,
                 collection: str = DEFAULT_COLLECTION) -> Document | None:
        key = storage_key(collection, doc_id)
        if version is None:
            found = self._fetch(self._reads.document, {"doc_id": key})
        else:
            found = self._fetch(self._reads.document_version, {"doc_id": key, "version": version})
        return rows.document(found[0]) if found else None

    def document_info(self, doc_id: str, version: str, collection: str = DEFAULT_COLLECTION) -> Document | None:
        found = self._fetch(self._reads.document_info, {"doc_id": storage_key(collection, doc_id), "version": version})
        return rows.document(found[0]) if found else None

    def original(self, doc_id: str, version: str, collection: str = DEFAULT_COLLECTION) -> bytes | None:
        # Its own statement: document() is on the question path and never reads the bytes.
        found = self._fetch(self._reads.original, {"doc_id": storage_key(collection, doc_id), "version": version})
        return bytes(found[0][0]) if found else None

    def sentences(self, doc_id: str, version: str, collection: str = DEFAULT_COLLECTION) -> list[Sentence]:
        return rows.sentences(self._fetch(self._reads.sentences,
                                          {"doc_id": storage_key(collection, doc_id), "version": version}))

    def list_documents(self, limit: int, offset: int, collection: str = DEFAULT_COLLECTION) -> DocumentPage:
        # A negative limit means no limit (SQLite's rule); a negative offset means none.
        prefix = key_prefix(collection)
        page = {"prefix": prefix, "limit": limit if limit >= 0 else None, "offset": max(0, offset)}
        with self._snapshot():  # the total and the page agree
            total = self._fetch(self._reads.live_count, {"prefix": prefix})[0][0]
            return rows.document_page(self._fetch(self._reads.listing, page), total)

    def vectors_by_text(self, doc_id: str, title: str, collection: str = DEFAULT_COLLECTION) -> dict[str, np.ndarray]:
        found = self._fetch(self._reads.vectors_by_text, {"doc_id": storage_key(collection, doc_id), "title": title})
        return {text: self._vector(stored) for text, stored in found}

    def collections(self) -> list[Collection]:
        with self._snapshot():
            named = self._fetch(self._reads.collections, {})
            keys = self._fetch(self._reads.live_keys, {})
        counts: dict[str, int] = {}
        for (key,) in keys:
            name = split_key(key)[0]
            counts[name] = counts.get(name, 0) + 1
        return [Collection(name, counts.get(name, 0), float(created)) for name, created in named]

    def has_collection(self, name: str) -> bool:
        return bool(self._fetch(self._reads.has_collection, {"name": name}))

    def sentence_count(self) -> int:
        return int(self._fetch(self._reads.sentence_count, {})[0][0])

    def get_flag(self, key: str) -> str | None:
        found = self._fetch(self._reads.flag, {"key": key})
        return found[0][0] if found else None

    def current_sentences(self, doc_ids: Sequence[str], collection: str = DEFAULT_COLLECTION) -> list[Sentence]:
        if not doc_ids:
            return []
        keys = [storage_key(collection, d) for d in doc_ids]
        return rows.sentences(self._fetch(self._reads.current_sentences, {"doc_ids": self._list(keys)}))

    def searchable_texts(self, wanted: Sequence[tuple[str, int]],
                         collection: str = DEFAULT_COLLECTION) -> list[tuple[str, str, int, str]]:
        if not wanted:
            return []
        found = self._fetch(self._reads.searchable_texts, self._pairs(
            [storage_key(collection, doc_id) for doc_id, _ in wanted], [index for _, index in wanted]))
        return [(split_key(key)[1], version, index, text) for key, version, index, text in found]

    def _pairs(self, keys: list[str], indexes: list[int]) -> dict[str, Any]:
        """The parameters of a statement that walks (storage key, index) pairs."""
        return {"doc_ids": self._list(keys), "indexes": self._list(indexes)}

    def unanalysed_sentences(self, limit: int, after: int = -1) -> list[Sentence]:
        """Up to ``limit`` sentences stored without language analysis, with row keys above
        ``after``, by key: what the mention backfill reads (index/mention_backfill.py)."""
        return rows.sentences(self._fetch(self._reads.unanalysed, {"after": after, "limit": limit}))

    def dense_scores(self, vector: np.ndarray, sentences: Sequence[Sentence]) -> list[float]:
        """Cosines with the stored vectors, each found by (collection, doc_id, index) among
        the searchable sentences; 0.0 for a sentence that is not searchable."""
        if not sentences:
            return []
        wanted = self._pairs([storage_key(s.collection, s.doc_id) for s in sentences], [s.index for s in sentences])
        found = self._fetch(self._reads.searchable_vectors, wanted)
        return rows.cosines(vector, sentences, {(d, i): self._vector(stored) for d, i, stored in found})
