"""Rows of the SQL backends and the values they stand for, both ways.

Both backends select a sentence as ``(key, doc_id, version, idx, start_char, end_char,
text, mentions)``, a document as ``(doc_id, version, title, text, metadata, created_at, current,
source)`` and a listed one as ``(doc_id, version, title, metadata, created_at)``, and insert a
version as ``(doc_id, version, title, text, metadata, created_at, source)``, so one reading
(and writing) of each serves both.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from functools import lru_cache
from typing import AbstractSet, Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from citeqa.index.scope import split_key, storage_key
from citeqa.index.types import Document, DocumentPage, Mention, Sentence, Source


def sentence(row: Sequence[Any]) -> Sentence:
    """A ``(key, doc_id, version, idx, start_char, end_char, text, mentions)`` row; its
    doc_id column holds the storage key (index/scope.py)."""
    collection, doc_id = split_key(row[1])
    if not _PLAIN_SENTENCE:
        return Sentence(doc_id=doc_id, doc_version=row[2], index=row[3], start=row[4], end=row[5], text=row[6],
                        key=row[0], mentions=mentions(row[7]), analysed=row[7] is not None, collection=collection)
    # A question reads a few hundred sentences back (candidates, their documents for the
    # neighbours): filling the frozen dataclass's fields directly takes half the time of
    # its __init__ (one object.__setattr__ per field), and gives an equal object.
    made = _new(Sentence)
    made.__dict__.update(doc_id=doc_id, doc_version=row[2], index=row[3], start=row[4], end=row[5], text=row[6],
                         key=row[0], mentions=mentions(row[7]), analysed=row[7] is not None, collection=collection)
    return made


_new = object.__new__
# Sentence's __init__ only sets these fields (no __post_init__, no __slots__): then it may
# be skipped. A change to Sentence turns this off rather than making incomplete objects.
_PLAIN_SENTENCE = (set(getattr(Sentence, "__dataclass_fields__", ())) == {
    "doc_id", "doc_version", "index", "start", "end", "text", "key", "mentions", "analysed", "collection"}
    and not hasattr(Sentence, "__post_init__") and not hasattr(Sentence, "__slots__"))


def mentions(stored: str | list[Any] | None) -> Sequence[Mention]:
    """Stored mentions: JSON ``[[start, end, label], ...]`` as SQLite's text or PostgreSQL's
    jsonb (which psycopg decodes); NULL (not analysed yet) reads as none. Decoded when first
    read: a question reads a few hundred sentences (candidates and their neighbours) and
    looks at the mentions of a few (measured: decoding them all was ~15% of ranking)."""
    if not stored:
        return ()
    return StoredMentions(stored)


def labelled(found: Sequence[Mention], labels: AbstractSet[str]) -> Sequence[Mention]:
    """``found``'s mentions labelled with one of ``labels``, in order (stored ones without
    decoding the rest, see :meth:`StoredMentions.labelled`)."""
    if isinstance(found, StoredMentions):
        return found.labelled(labels)
    return [m for m in found if m.label in labels]


# A label that JSON writes as itself between quotes (spaCy's are: "PERSON", "syn:subj").
_PLAIN_LABEL = re.compile(r"[A-Za-z0-9_:]+")


@lru_cache(maxsize=256)
def _quoted(labels: frozenset[str]) -> tuple[str, ...] | None:
    """The labels as they appear in stored JSON text; None if one might be escaped there."""
    return tuple(f'"{label}"' for label in labels) if all(_PLAIN_LABEL.fullmatch(x) for x in labels) else None


class StoredMentions(Sequence[Mention]):
    """Mentions as stored, turned into :class:`Mention` objects on first use."""

    __slots__ = ("_stored", "_decoded")

    def __init__(self, stored: str | list[Any]):
        self._stored: str | list[Any] | None = stored
        self._decoded: tuple[Mention, ...] | None = None

    def _all(self) -> tuple[Mention, ...]:
        if self._decoded is None:
            stored = self._stored
            found = json.loads(stored) if isinstance(stored, str) else stored or []
            self._decoded = tuple(map(Mention._make, found))
            self._stored = None
        return self._decoded

    def labelled(self, labels: AbstractSet[str]) -> list[Mention]:
        """The mentions whose label is in ``labels``, in order, found without making the
        others: a ranker asks this of every candidate, most of which hold none (an answer
        type's labels are quoted in the stored JSON text, so a plain text search rules those
        out without parsing it)."""
        stored = self._stored
        if stored is None:
            return [m for m in self._all() if m.label in labels]
        if isinstance(stored, str):
            quoted = _quoted(frozenset(labels))
            if quoted is not None and not any(q in stored for q in quoted):
                return []
            stored = json.loads(stored)
        return [Mention(start, end, label) for start, end, label in stored if label in labels]

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[Mention]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"StoredMentions({self._all()!r})"


def mentions_value(found: Sequence[Mention]) -> str:
    """How mentions are stored: compact JSON ``[[start, end, label], ...]``."""
    return json.dumps([[m.start, m.end, m.label] for m in found], separators=(",", ":"))


def stored_mentions(sentence: Sentence) -> str | None:
    """A sentence's mentions column: NULL when it was not analysed, so a backfill finds it."""
    return mentions_value(sentence.mentions) if sentence.analysed else None


def sentences(found: Iterable[Sequence[Any]]) -> list[Sentence]:
    return [sentence(row) for row in found]


def document(row: Sequence[Any]) -> Document:
    """A ``(doc_id, version, title, text, metadata, created_at, current, source)`` row (doc_id: the storage key)."""
    collection, doc_id = split_key(row[0])
    return Document(doc_id=doc_id, version=row[1], title=row[2], text=row[3], metadata=metadata(row[4]),
                    created_at=row[5], current=bool(row[6]), source=source(row[7]), collection=collection)


def metadata(value: str | dict[str, Any]) -> dict[str, Any]:
    """Stored metadata: SQLite holds it as JSON text, PostgreSQL as jsonb (which psycopg decodes)."""
    return json.loads(value) if isinstance(value, str) else value


def document_page(rows: Iterable[Sequence[Any]], total: int) -> DocumentPage:
    """A page of ``(doc_id, version, title, metadata, created_at)`` rows of live documents.
    Listings carry no text (it can be large); fetch a document for it."""
    documents = [
        Document(doc_id=split_key(r[0])[1], version=r[1], text="", title=r[2], metadata=metadata(r[3]),
                 created_at=r[4], collection=split_key(r[0])[0])
        for r in rows
    ]
    return DocumentPage(documents=documents, total=int(total))


def version_row(doc: Document) -> tuple[str, str, str, str, str, float, str | None]:
    """The values of a new version row (doc_id: the storage key); its ``created_at`` is now."""
    return (storage_key(doc.collection, doc.doc_id), doc.version, doc.title, doc.text, json.dumps(doc.metadata),
            time.time(), source_value(doc.source))


def source_value(found: Source | None) -> str | None:
    """How a version's source is stored: compact JSON (pages as ``[[start, end], ...]``),
    NULL for a version without one (and every version stored before sources were)."""
    if found is None:
        return None
    return json.dumps({"media_type": found.media_type, "filename": found.filename, "size": found.size,
                       "sha256": found.sha256, "pages": [[start, end] for start, end in found.pages]},
                      separators=(",", ":"), ensure_ascii=False)


def source(stored: str | None) -> Source | None:
    """A stored source: JSON text (both backends select it as text), or None."""
    return None if stored is None else _source(stored)


@lru_cache(maxsize=64)
def _source(stored: str) -> Source:
    """document() is on the ask path (the verifier reads each cited document), and a PDF's
    page list makes the JSON long: decoding 300 pages took ~100 us, twice the rest of the
    read. A Source is immutable, so the documents a question keeps citing share one."""
    value = json.loads(stored)
    # map(tuple): a quarter of the time a generator of int pairs takes.
    return Source(media_type=value["media_type"], filename=value["filename"], size=value["size"],
                  sha256=value["sha256"], pages=tuple(map(tuple, value["pages"])))


def originals(items: Iterable[tuple[Document, Any, Any]]) -> dict[str, bytes]:
    """The original bytes a batch brings, by SHA-256 (each once), in SHA-256 order: writers
    that insert them in one order cannot deadlock on each other's rows. ValueError, before
    anything is written, for a document whose bytes are not the file its source describes
    (another SHA-256 or size), or that has one of the two without the other: a version
    with a source promises its original back (``DocumentStore.original``)."""
    found: dict[str, bytes] = {}
    for doc, _, _ in items:
        if doc.source is None and doc.original is None:
            continue
        if doc.source is None:
            raise ValueError(f"{doc.doc_id}: original bytes without a source describing them")
        if doc.original is None:
            raise ValueError(f"{doc.doc_id}: a source ({doc.source.filename!r}) without its original bytes")
        digest = hashlib.sha256(doc.original).hexdigest()
        if digest != doc.source.sha256:  # lower-case hex, as the originals are keyed
            raise ValueError(f"{doc.doc_id}: the original's SHA-256 is {digest}, its source says {doc.source.sha256}")
        if len(doc.original) != doc.source.size:
            raise ValueError(f"{doc.doc_id}: the original is {len(doc.original)} bytes, its source says "
                             f"{doc.source.size}")
        found[digest] = doc.original
    return dict(sorted(found.items()))


def cosines(query: np.ndarray, sentences: Sequence[Sentence],
            stored: Mapping[tuple[str, int], np.ndarray]) -> list[float]:
    """Cosine of ``query`` with each sentence's vector in ``stored`` (keyed by (storage key,
    index) among the searchable sentences), in order; 0.0 for one not there."""
    query = np.asarray(query, dtype=np.float32)
    keys = [(storage_key(s.collection, s.doc_id), s.index) for s in sentences]
    return [float(stored[key] @ query) if key in stored else 0.0 for key in keys]
