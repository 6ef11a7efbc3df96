"""The data that moves through indexing and retrieval, and the roles that hold it.

Offsets everywhere are Python code points, end-exclusive, into a document version's
stored ``text``: ``document.text[sentence.start:sentence.end] == sentence.text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, Sequence

import numpy as np

from citeqa.index.scope import DEFAULT_COLLECTION, DEFAULT_SCOPE, Scope


@dataclass(frozen=True)
class Span:
    """A half-open range of code points inside a text."""

    start: int
    end: int


class Mention(NamedTuple):
    """A named entity or noun chunk inside one sentence, found by the language pipeline at
    ingest (index/language.py). Offsets are relative to the sentence:
    ``sentence.text[start:end]`` is the mention. ``label`` is spaCy's entity label
    (``PERSON``, ``GPE``, ``CARDINAL``, ``DATE`` …), ``NOUN_CHUNK``, or a syntactic role
    ``syn:<role>:<head offset>`` (the subject, object, prepositional phrase … of the word at
    that offset; index/language.py ``SYNTAX_PREFIX``), which never equals an entity label."""

    start: int
    end: int
    label: str


# (start, end) of each page's text in a document's text, in page order (index/extract).
PageSpans = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Source:
    """The file a version's text was extracted from (index/extract): its media type, name
    as uploaded, size and SHA-256 of its bytes, and, for paged formats (PDF), where each
    page's text lies in the stored text. A version ingested as plain text has none."""

    media_type: str
    filename: str
    size: int
    sha256: str
    pages: PageSpans = ()


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
    source: Source | None = None
    # The collection the document lives in (index/scope.py): the same doc_id in two
    # collections is two documents.
    collection: str = DEFAULT_COLLECTION
    # The original file's bytes, on the way in only: ``put`` stores them (once per
    # SHA-256) and reads leave this None; ``DocumentStore.original`` reads them back.
    original: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Sentence:
    """One sentence of a document version: ``text`` is ``document.text[start:end]``."""

    doc_id: str
    doc_version: str
    index: int
    start: int
    end: int
    text: str
    # The backend's own row key (the embedded store's FAISS id), -1 when unknown; lets a
    # backend find the sentence's vector without a lookup by (doc_id, index).
    key: int = field(default=-1, compare=False, repr=False)
    # Entities and noun chunks (offsets into ``text``), found once at ingest
    # (index/language.py) and read back with the sentence by every store read.
    mentions: Sequence[Mention] = field(default=(), compare=False, repr=False)
    # False: never analysed (ingested without an analyzer, or before mentions were stored),
    # so () says nothing; a running service fills those in (index/mention_backfill.py).
    analysed: bool = field(default=False, compare=False, repr=False)
    collection: str = DEFAULT_COLLECTION

    @property
    def id(self) -> str:
        """Stable sentence id of the citation contract."""
        return f"{self.doc_id}:{self.index}"


@dataclass(frozen=True)
class Scored:
    """A sentence with one retriever's score: cosine similarity (dense) or BM25 (lexical);
    higher is better either way."""

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
class Collection:
    """A named set of documents (index/scope.py): ``documents`` counts its live ones."""

    name: str
    documents: int
    created_at: float


@dataclass(frozen=True)
class DocumentPage:
    documents: list[Document]
    total: int


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (cosine = inner product)."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class DocumentStore(Protocol):
    """Documents, their versions and sentences (with the vectors they were stored with),
    flags, and the store's lifecycle.

    ``put`` is atomic and durable when it returns: an acknowledged document survives a
    crash, and its sentences are searchable (by every search role of the same backend)
    from then on. Only the current version of a live document is searched; every version
    stays readable. Vectors of the wrong count or dimension are refused with ValueError
    before anything is written.
    """

    def put(self, doc: Document, sentences: Sequence[Sentence], vectors: np.ndarray) -> bool:
        """True if this call stored the version; False if it was stored already (by an
        earlier call, or a concurrent one that got there first): it is made current either way."""
        ...

    def put_many(self, items: Sequence[tuple[Document, Sequence[Sentence], np.ndarray]]) -> list[bool]:
        """``put`` for several documents, atomically; the last version of a document wins.
        Says, item by item, whether this call stored the version."""
        ...

    def make_current(self, doc_id: str, version: str, collection: str = DEFAULT_COLLECTION) -> None:
        """Make a stored version the live one (reviving a deleted document); KeyError if unknown."""
        ...

    def delete(self, doc_id: str, collection: str = DEFAULT_COLLECTION) -> bool:
        """Take a document out of search and listings (its versions stay readable); False if
        it was not live."""
        ...

    def document(self, doc_id: str, version: str | None = None,
                 collection: str = DEFAULT_COLLECTION) -> Document | None:
        """A version (any, by ``version``), or the live current one; None if there is none."""
        ...

    def document_info(self, doc_id: str, version: str, collection: str = DEFAULT_COLLECTION) -> Document | None:
        """``document(doc_id, version)`` without its text (``text`` is ""): the title,
        metadata and source that anchors and passage titles read, without moving a long
        page's text (or a PDF's) for them. None if there is no such version."""
        ...

    def sentences(self, doc_id: str, version: str, collection: str = DEFAULT_COLLECTION) -> list[Sentence]: ...

    def original(self, doc_id: str, version: str, collection: str = DEFAULT_COLLECTION) -> bytes | None:
        """The bytes of the file this version was extracted from (``Document.source``), or
        None when it has no source file (or the version is unknown)."""
        ...

    def list_documents(self, limit: int, offset: int, collection: str = DEFAULT_COLLECTION) -> DocumentPage:
        """Live documents of a collection by doc_id, without their text."""
        ...

    def vectors_by_text(self, doc_id: str, title: str,
                        collection: str = DEFAULT_COLLECTION) -> dict[str, np.ndarray]:
        """Stored vectors of this document's sentences in versions with this title (the
        title is part of what was embedded), keyed by sentence text: reused on update."""
        ...

    def sentence_count(self) -> int:
        """How many sentences are searchable (one real query: readiness checks run it)."""
        ...

    def collections(self) -> list[Collection]:
        """Every collection by name, ``default`` always among them."""
        ...

    def create_collection(self, name: str) -> bool:
        """False if it exists already. ``put`` creates a document's collection too."""
        ...

    def delete_collection(self, name: str) -> int:
        """Delete a collection and take its live documents out of search and listings
        (as ``delete`` does; their versions stay readable), in one transaction; returns how
        many were live. KeyError if there is no such collection. ``default`` is emptied but
        stays."""
        ...

    def has_collection(self, name: str) -> bool: ...

    def get_flag(self, key: str) -> str | None: ...

    def set_flag(self, key: str, value: str) -> None: ...

    def close(self) -> None:
        """Release connections and files; the store refuses work afterwards. Everything
        acknowledged is found again by the next store opened on the same place."""
        ...


class DenseIndex(Protocol):
    """Cosine search over the vectors of the searchable sentences."""

    def dense_search(self, vector: np.ndarray, k: int, scope: Scope = DEFAULT_SCOPE) -> list[Scored]:
        """The ``k`` sentences in ``scope`` nearest ``vector``, best first (score: cosine);
        ``k`` of them whenever the scope holds ``k`` (a filter never starves the result)."""
        ...

    def dense_scores(self, vector: np.ndarray, sentences: Sequence[Sentence]) -> list[float]:
        """Cosine of ``vector`` with each sentence, in order: the searchable sentence its
        (collection, doc_id, index) names (the current version's), or 0.0 if there is none."""
        ...


class LexicalIndex(Protocol):
    """BM25 over the searchable sentences and over whole live documents (title + text).
    A query is an OR of its content words (:func:`citeqa.index.text.query_words`)."""

    def lexical_search(self, query: str, k: int, scope: Scope = DEFAULT_SCOPE) -> list[Scored]:
        """The ``k`` best-matching sentences in ``scope``, best first (score: BM25, higher is better)."""
        ...

    def lexical_document_search(self, query: str, k: int, scope: Scope = DEFAULT_SCOPE) -> list[tuple[str, float]]:
        """(doc_id, BM25 over title and text) of the best-matching live documents in ``scope``."""
        ...

    def current_sentences(self, doc_ids: Sequence[str], collection: str = DEFAULT_COLLECTION) -> list[Sentence]:
        """The searchable sentences of these documents' current versions, by doc_id then
        index: what a document found by ``lexical_document_search`` contributes."""
        ...

    def searchable_texts(self, wanted: Sequence[tuple[str, int]],
                         collection: str = DEFAULT_COLLECTION) -> list[tuple[str, str, int, str]]:
        """(doc_id, version, index, text) of the searchable sentences among the ``wanted``
        (doc_id, index) pairs (the current versions'), in no particular order; pairs that
        name none are left out. What a ranker reads of its candidates' neighbours: the
        texts alone, not whole sentence rows."""
        ...


class HybridIndex(DenseIndex, LexicalIndex, Protocol):
    """Dense and lexical search over the same sentences: what retrieval reads."""


class Store(DocumentStore, DenseIndex, LexicalIndex, Protocol):
    """Every role at once, as a backend implements them: one class, so that a write (a
    document, its sentences, their vectors and lexical entries) stays one transaction."""


class Corpus(Protocol):
    """What answering reads (the retriever, the ranker's neighbours, citation checks): the
    searches and document reads of one scope, with no collection to name.
    index/scoped_view.py binds a request's scope to a store; a Store itself reads as its
    ``default`` collection, unfiltered."""

    def dense_search(self, vector: np.ndarray, k: int) -> list[Scored]: ...

    def dense_scores(self, vector: np.ndarray, sentences: Sequence[Sentence]) -> list[float]: ...

    def lexical_search(self, query: str, k: int) -> list[Scored]: ...

    def lexical_document_search(self, query: str, k: int) -> list[tuple[str, float]]: ...

    def current_sentences(self, doc_ids: Sequence[str]) -> list[Sentence]: ...

    def searchable_texts(self, wanted: Sequence[tuple[str, int]]) -> list[tuple[str, str, int, str]]: ...

    def document(self, doc_id: str, version: str | None = None) -> Document | None: ...

    def document_info(self, doc_id: str, version: str) -> Document | None: ...

    def sentences(self, doc_id: str, version: str) -> list[Sentence]: ...

    def original(self, doc_id: str, version: str) -> bytes | None: ...
