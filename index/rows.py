"""Rows of the SQL backends and the values they stand for, both ways.

Both backends select a sentence as ``(key, doc_id, version, idx, start_char, end_char,
text, mentions)``, a document as ``(doc_id, version, title, text, metadata, created_at, current)``
and a listed one as ``(doc_id, version, title, metadata, created_at)``, and insert a
version as ``(doc_id, version, title, text, metadata, created_at)``, so one reading (and
writing) of each serves both.
"""

from __future__ import annotations

import json
import re
import time
from functools import lru_cache
from typing import AbstractSet, Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from citeqa.index.types import Document, DocumentPage, Mention, Sentence


def sentence(row: Sequence[Any]) -> Sentence:
    """A ``(key, doc_id, version, idx, start_char, end_char, text, mentions)`` row."""
    if not _PLAIN_SENTENCE:
        return Sentence(doc_id=row[1], doc_version=row[2], index=row[3], start=row[4], end=row[5], text=row[6],
                        key=row[0], mentions=mentions(row[7]), analysed=row[7] is not None)
    # A question reads a few hundred sentences back (candidates, their documents for the
    # neighbours): filling the frozen dataclass's fields directly takes half the time of
    # its __init__ (one object.__setattr__ per field), and gives an equal object.
    made = _new(Sentence)
    made.__dict__.update(doc_id=row[1], doc_version=row[2], index=row[3], start=row[4], end=row[5], text=row[6],
                         key=row[0], mentions=mentions(row[7]), analysed=row[7] is not None)
    return made


_new = object.__new__
# Sentence's __init__ only sets these fields (no __post_init__, no __slots__): then it may
# be skipped. A change to Sentence turns this off rather than making incomplete objects.
_PLAIN_SENTENCE = (set(getattr(Sentence, "__dataclass_fields__", ())) == {
    "doc_id", "doc_version", "index", "start", "end", "text", "key", "mentions", "analysed"}
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
    """A ``(doc_id, version, title, text, metadata, created_at, current)`` row."""
    return Document(doc_id=row[0], version=row[1], title=row[2], text=row[3], metadata=metadata(row[4]),
                    created_at=row[5], current=bool(row[6]))


def metadata(value: str | dict[str, Any]) -> dict[str, Any]:
    """Stored metadata: SQLite holds it as JSON text, PostgreSQL as jsonb (which psycopg decodes)."""
    return json.loads(value) if isinstance(value, str) else value


def document_page(rows: Iterable[Sequence[Any]], total: int) -> DocumentPage:
    """A page of ``(doc_id, version, title, metadata, created_at)`` rows of live documents.
    Listings carry no text (it can be large); fetch a document for it."""
    documents = [
        Document(doc_id=r[0], version=r[1], text="", title=r[2], metadata=metadata(r[3]), created_at=r[4])
        for r in rows
    ]
    return DocumentPage(documents=documents, total=int(total))


def version_row(doc: Document) -> tuple[str, str, str, str, str, float]:
    """The values of a new version row; its ``created_at`` is now."""
    return (doc.doc_id, doc.version, doc.title, doc.text, json.dumps(doc.metadata), time.time())


def cosines(query: np.ndarray, sentences: Sequence[Sentence],
            stored: Mapping[tuple[str, int], np.ndarray]) -> list[float]:
    """Cosine of ``query`` with each sentence's vector in ``stored`` (keyed by (doc_id,
    index) among the searchable sentences), in order; 0.0 for one not there."""
    query = np.asarray(query, dtype=np.float32)
    return [
        float(stored[(s.doc_id, s.index)] @ query) if (s.doc_id, s.index) in stored else 0.0 for s in sentences
    ]
