"""Where data enters: a document becomes a version with sentences and vectors in the store.

The stored text is exactly the text received, so offsets a client computes on its own
copy agree with ours. The version is a hash of (title, text, metadata): posting the same
content again is a no-op, and a changed document re-embeds only sentences it has not
embedded before. With an analyzer (index/language.py), each new version's sentences get
their entities and noun chunks once, and the store keeps them beside the sentence: here,
beside the encode (``analysis="inline"``), or after the ingest (``"background"``: stored
without them, and a listener, the service's backfill (index/mention_backfill.py), is told).
"""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Protocol, Sequence

import numpy as np

from citeqa.index.encode_pool import SharesCores, cores, on_every_core
from citeqa.index.language import Analyzer
from citeqa.index.scope import DEFAULT_COLLECTION, InvalidScope, check_collection
from citeqa.index.sentences import split_sentences
from citeqa.index.types import Document, DocumentStore, Embedder, Sentence, Source


class InvalidDocument(ValueError):
    """The input cannot become a document; the message says why."""


@dataclass(frozen=True)
class DocumentInput:
    text: str
    doc_id: str | None = None
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # Set when the text was extracted from a file (index/file_input.py): the version
    # records the file and the store keeps its bytes.
    source: Source | None = None
    original: bytes | None = field(default=None, repr=False)
    collection: str = DEFAULT_COLLECTION  # created on first use (index/scope.py)


@dataclass(frozen=True)
class IngestResult:
    doc_id: str
    doc_version: str
    sentence_count: int
    # False: this exact version was already stored, before this call (then nothing was
    # embedded) or by a concurrent one that stored it first.
    created: bool
    embedded: int = 0  # sentences that needed the model (the rest were reused)
    collection: str = DEFAULT_COLLECTION


def content_version(title: str, text: str, metadata: dict[str, Any], source: Source | None = None) -> str:
    """The version id. A version extracted from a file also hashes the file's SHA-256 and
    media type (the same text from another file is another version, with its own original
    and pages); without a source the hash is what it always was."""
    content: dict[str, Any] = {"title": title, "text": text, "metadata": metadata}
    if source is not None:
        content["source"] = {"sha256": source.sha256, "media_type": source.media_type}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def embedding_text(title: str, sentence: str) -> str:
    """What the model embeds for a sentence: prefixed with its document's title, which
    names the subject a sentence often leaves implicit ("It opened in 1911."). Measured
    on SQuAD dev (first 1,000 questions, open corpus): hit@5 0.889 -> 0.907."""
    return f"{title}: {sentence}" if title.strip() else sentence


MAX_METADATA_DEPTH = 32


def _has_surrogates(text: str) -> bool:
    # Lone surrogates (from "\ud800" escapes in JSON) are not Unicode: they cannot be
    # encoded as UTF-8, so such a document could be stored but never sent back. (The codec
    # finds them at C speed: a 5 MB text takes milliseconds, not a Python loop.)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _metadata_problem(metadata: Any) -> str | None:
    """Why ``metadata`` cannot be stored and served back as JSON, or None. Iterative, so
    that no depth of nesting can exhaust the stack here."""
    if not isinstance(metadata, dict):
        return "metadata must be a JSON object"
    stack: list[tuple[Any, int]] = [(metadata, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            return f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep"
        if isinstance(value, dict):
            for key, inner in value.items():
                if not isinstance(key, str):
                    return "metadata keys must be strings"
                if _has_surrogates(key):
                    return "metadata contains unpaired UTF-16 surrogates (not valid Unicode)"
                stack.append((inner, depth + 1))
        elif isinstance(value, list):
            stack.extend((inner, depth + 1) for inner in value)
        elif isinstance(value, str):
            if _has_surrogates(value):
                return "metadata contains unpaired UTF-16 surrogates (not valid Unicode)"
        elif isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                return "metadata numbers must be finite (NaN and Infinity are not JSON)"
        elif value is not None and not isinstance(value, (bool, int)):
            return f"metadata values must be JSON (not {type(value).__name__})"
    return None


def validate(item: DocumentInput) -> DocumentInput:
    if not item.text.strip():
        raise InvalidDocument("text is empty or only white space")
    if "\x00" in item.text or "\x00" in item.title:
        raise InvalidDocument("text and title must not contain NUL characters")
    if _has_surrogates(item.text):
        raise InvalidDocument("text contains unpaired UTF-16 surrogates (not valid Unicode)")
    if _has_surrogates(item.title):
        raise InvalidDocument("title contains unpaired UTF-16 surrogates (not valid Unicode)")
    problem = _metadata_problem(item.metadata)
    if problem:
        raise InvalidDocument(problem)
    doc_id = item.doc_id
    if doc_id is not None:
        if not doc_id.strip() or doc_id != doc_id.strip():
            raise InvalidDocument("doc_id must be non-empty and have no leading or trailing white space")
        if any(ch.isspace() and ch != " " or ord(ch) < 32 for ch in doc_id):
            raise InvalidDocument("doc_id must not contain control characters or line breaks")
        if _has_surrogates(doc_id):
            raise InvalidDocument("doc_id contains unpaired UTF-16 surrogates (not valid Unicode)")
    try:
        check_collection(item.collection)
    except InvalidScope as e:
        raise InvalidDocument(str(e)) from None
    return item


Analysis = Literal["background", "inline"]


class IngestListener(Protocol):
    """Told when ingests start and end (the service's mention backfill: it keeps off the
    cores while ingest encodes, and analyses what was stored without mentions after)."""

    def ingest_started(self) -> None: ...

    def ingest_finished(self, unanalysed: int) -> None:
        """``unanalysed``: sentences this ingest stored without mentions."""
        ...


class Ingestor:
    """Splits, analyses, embeds and stores documents. One writer at a time; readers are
    never blocked. ``analyzer`` None: sentences are stored without mentions (tests, tools).
    ``analysis="background"``: stored without mentions too, for ``listener`` to analyse
    after (the ingest then encodes on every core: ~0.97 of the raw encode rate instead of
    ~0.8 beside the analysis)."""

    def __init__(self, store: DocumentStore, embedder: Embedder, analyzer: Analyzer | None = None,
                 share_cores: bool = True, analysis: Analysis = "inline", listener: IngestListener | None = None):
        self.store = store
        self.embedder = embedder
        self.analyzer = analyzer
        # False: the encode keeps all of torch's threads beside the analysis (how ingest ran
        # before; kept to compare the two).
        self.share_cores = share_cores
        self.analysis = analysis
        self.listener = listener
        self._lock = threading.Lock()

    def ingest(self, item: DocumentInput) -> IngestResult:
        return self.ingest_many([item])[0]

    def ingest_many(
        self, items: Sequence[DocumentInput], progress: Callable[[int], None] | None = None
    ) -> list[IngestResult]:
        """Ingest a batch, embedding all of its new sentences together (the model is
        fastest on full batches), in one transaction. InvalidDocument, before anything is
        stored, if any item is invalid. ``progress`` is told how many documents are done."""
        return self._ingest_valid([validate(item) for item in items], progress)

    def ingest_each(self, items: Sequence[DocumentInput]) -> list[IngestResult | InvalidDocument]:
        """``ingest_many`` for items checked one by one: an invalid item gets its
        InvalidDocument in its place and the others are stored (in one transaction)."""
        checked: list[DocumentInput | InvalidDocument] = []
        for item in items:
            try:
                checked.append(validate(item))
            except InvalidDocument as exc:
                checked.append(exc)
        stored = iter(self._ingest_valid([c for c in checked if isinstance(c, DocumentInput)]))
        return [c if isinstance(c, InvalidDocument) else next(stored) for c in checked]

    def _ingest_valid(
        self, items: Sequence[DocumentInput], progress: Callable[[int], None] | None = None
    ) -> list[IngestResult]:
        if self.listener is None:
            return self._ingest_prepared(items, progress)[0]
        self.listener.ingest_started()
        unanalysed = 0
        try:
            results, unanalysed = self._ingest_prepared(items, progress)
            return results
        finally:
            self.listener.ingest_finished(unanalysed)

    def _ingest_prepared(
        self, items: Sequence[DocumentInput], progress: Callable[[int], None] | None = None
    ) -> tuple[list[IngestResult], int]:
        """The results, and how many sentences were stored without mentions."""
        prepared = [self._prepare(item) for item in items]
        pending = [p for p in prepared if p.result is None]
        texts = list(dict.fromkeys(
            embedding_text(p.doc.title, s.text) for p in pending for s in p.sentences if s.text not in p.known
        ))
        fresh = self._model_work(pending, texts)
        with self._lock:
            # One transaction for the batch: a commit (fsync) per document cost ~8% of ingest.
            # The store says which versions it stored: of identical documents ingested at
            # once, all of which found nothing stored when they were prepared, one created it.
            stored = self.store.put_many([(p.doc, p.sentences, self._vectors(p, fresh)) for p in pending])
        if progress:
            progress(len(prepared))
        created = iter(stored)  # one for each pending item, in order
        results = [p.result or self._result(p, next(created)) for p in prepared]
        unanalysed = sum(1 for p in pending for s in p.sentences if not s.analysed)
        return results, unanalysed

    def _model_work(self, pending: Sequence["_Prepared"], texts: list[str]) -> dict[str, np.ndarray]:
        """Embed ``texts`` and analyse the sentences of ``pending`` (in place, unless the
        analysis is left to the background); the vectors by text."""
        workers = cores()
        analyzer = self.analyzer if self.analysis == "inline" or self.listener is None else None
        if self.share_cores and workers > 1 and isinstance(self.embedder, SharesCores) and texts:
            beside = (lambda: self._analyse(pending, analyzer)) if analyzer is not None else None
            return dict(zip(texts, on_every_core(self.embedder, texts, workers, beside), strict=True))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="citeqa-analyse") as worker:
            # The analysis runs beside the encode, and until it is done the encode computes on
            # one thread, leaving the other core to spaCy: torch's two threads contend with it
            # otherwise (and wait for each other at every operation). Measured on SQuAD dev
            # (2 shared cores, load ~8), ingest vs raw encode: ~0.97 without analysis, so the
            # analysis (~7 ms of CPU per sentence, over half of it spaCy's NER) is what ingest
            # adds; with it, 0.726 on all threads, 0.818 sharing the cores (the 2,067
            # documents, batches alternating between the two in one run).
            analysed = worker.submit(self._analyse, pending, analyzer) if analyzer else None
            fresh = dict(zip(texts, self._encode(texts, analysed), strict=True)) if texts else {}
            if analysed is not None:
                analysed.result()
        return fresh

    def _prepare(self, item: DocumentInput) -> "_Prepared":
        version = content_version(item.title, item.text, item.metadata, item.source)
        doc_id = item.doc_id or f"doc-{version}"
        collection = item.collection
        existing = self.store.document(doc_id, version, collection)
        if existing is not None:
            if not existing.current:
                self.store.make_current(doc_id, version, collection)
            count = len(self.store.sentences(doc_id, version, collection))
            return _Prepared(doc=existing, result=IngestResult(doc_id, version, count, created=False,
                                                                collection=collection))
        doc = Document(doc_id=doc_id, version=version, text=item.text, title=item.title, metadata=item.metadata,
                       source=item.source, original=item.original, collection=collection)
        sentences = [
            Sentence(doc_id, version, i, span.start, span.end, item.text[span.start:span.end], collection=collection)
            for i, span in enumerate(split_sentences(item.text))
        ]
        return _Prepared(doc=doc, sentences=sentences,
                         known=self.store.vectors_by_text(doc_id, item.title, collection))

    def _encode(self, texts: list[str], analysed: Future[None] | None) -> np.ndarray:
        if analysed is not None and self.share_cores and isinstance(self.embedder, SharesCores):
            return self.embedder.encode_beside(texts, lambda: not analysed.done())
        return self.embedder.encode(texts)

    @staticmethod
    def _analyse(pending: Sequence["_Prepared"], analyzer: Analyzer) -> None:
        """Give every sentence of these new versions its mentions (each distinct text once)."""
        texts = list(dict.fromkeys(s.text for p in pending for s in p.sentences))
        found = dict(zip(texts, analyzer.mentions(texts), strict=True))
        for p in pending:
            p.sentences = [replace(s, mentions=tuple(found[s.text]), analysed=True) for s in p.sentences]

    def _vectors(self, p: "_Prepared", fresh: dict[str, np.ndarray]) -> np.ndarray:
        if not p.sentences:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.stack([
            p.known[s.text] if s.text in p.known else fresh[embedding_text(p.doc.title, s.text)] for s in p.sentences
        ])

    def _result(self, p: "_Prepared", created: bool) -> IngestResult:
        embedded = sum(1 for s in p.sentences if s.text not in p.known)
        return IngestResult(p.doc.doc_id, p.doc.version, len(p.sentences), created=created, embedded=embedded,
                            collection=p.doc.collection)


@dataclass
class _Prepared:
    doc: Document
    sentences: list[Sentence] = field(default_factory=list)
    known: dict[str, np.ndarray] = field(default_factory=dict)
    result: IngestResult | None = None


# -- files ---------------------------------------------------------------------------------


def read_inputs(paths: Iterable[Path]) -> list[DocumentInput]:
    """Documents from text/markdown files (a ``NAME.json`` beside ``NAME.txt`` may give
    doc_id, title and metadata) and from JSONL files of {doc_id, title, text, metadata}."""
    items: list[DocumentInput] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            items.extend(read_inputs(sorted(p for p in path.iterdir() if p.suffix in {".txt", ".md", ".jsonl"})))
        elif path.suffix == ".jsonl":
            items.extend(_read_jsonl(path))
        else:
            items.append(_read_text(path))
    return items


def _read_jsonl(path: Path) -> list[DocumentInput]:
    items = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                _check_row_types(row)
                items.append(
                    DocumentInput(
                        text=row["text"], doc_id=row.get("doc_id"), title=row.get("title") or "",
                        metadata=row.get("metadata") or {},
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidDocument(f"{path}:{number}: not a document object ({exc})") from exc
    return items


def _check_row_types(row: Any) -> None:
    """A wrongly typed field must be a clear error here, not a crash deep in ingest."""
    if not isinstance(row, dict):
        raise TypeError("expected a JSON object")
    for key, kinds in (("text", (str,)), ("doc_id", (str, type(None))), ("title", (str, type(None))),
                       ("metadata", (dict, type(None)))):
        if key in row and not isinstance(row[key], kinds):
            raise TypeError(f"{key} must be {' or '.join('null' if k is type(None) else k.__name__ for k in kinds)}")


def _read_text(path: Path) -> DocumentInput:
    # Bytes as they are (no newline translation): offsets must match the file on disk.
    text = path.read_bytes().decode("utf-8")
    info = sidecar(path)
    title = info.get("title") or _title_from_text(text, path)
    metadata = {"source_file": path.name, **info.get("metadata", {})}
    return DocumentInput(text=text, doc_id=info.get("doc_id") or path.stem, title=title, metadata=metadata)


def sidecar(path: Path) -> dict[str, Any]:
    """What ``NAME.json`` beside ``path`` says ({} without one)."""
    side = path.with_suffix(".json")
    if side == path or not side.exists():
        return {}
    try:
        info = json.loads(side.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidDocument(f"{side.name} is not JSON ({exc})") from exc
    if not isinstance(info, dict):
        raise InvalidDocument(f"{side.name} must be a JSON object")
    for key, kinds in (("doc_id", str), ("title", str), ("metadata", dict)):
        if info.get(key) is not None and not isinstance(info[key], kinds):
            raise InvalidDocument(f"{side.name}: {key} must be a {'string' if kinds is str else 'JSON object'}")
    return info


def _title_from_text(text: str, path: Path) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip().lstrip("#").strip()[:200]
    return path.stem
