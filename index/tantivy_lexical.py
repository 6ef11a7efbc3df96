"""The lexical half of the embedded store: Tantivy BM25 indexes, a cache of SQLite.

FTS5 scored every row sharing a word with the question (151 ms p95 at 1M sentences);
Tantivy's top-k search skips the documents that cannot reach the top k (block-max WAND).

SQLite stays the source of truth. Every write transaction appends the ids of the versions
it switched on or off to ``lexical_log`` (AUTOINCREMENT: a sequence never reused); the
indexes record in ``applied.json`` the last sequence they reflect. Applying a version
deletes its entries and, when it is the live current version, adds its active sentences
(and the document) again: replaying a change twice is harmless, so the mark is written
after the Tantivy commit and may only lag it. A missing, foreign (other database: its
``epoch`` differs) or unreadable index is rebuilt from SQLite on open, and whatever a
SIGKILL left unapplied is applied on the next open or commit.

Tantivy commits fsync every file of a segment (~160 ms on this disk), too slow to do in
each write transaction: a committer thread applies the log off the write path, and a
search first waits until the indexes hold every change committed before it (read your
writes). One process at a time owns the indexes (an flock on ``owner.lock``, dropped by
the kernel when it dies); it lets go when idle, so a server and `citeqa ingest` beside it
take turns, and a process that is not the owner reloads what the owner committed.

Tokenisation follows FTS5's ``porter unicode61 remove_diacritics 2``: runs of letters and
digits, lower-cased, diacritics folded to ASCII, English stems (Snowball's Porter2).
Queries are built as term queries, never parsed: user text cannot carry query syntax.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import tantivy

from citeqa.index.text import query_words

log = logging.getLogger(__name__)

ANALYZER = "citeqa_en"
FORMAT = 1  # bump when fields or tokenisation change: older indexes are then rebuilt
COMMIT_WAIT_S = 30.0  # longest a search waits for the changes before it to be indexed
POLL_S = 0.5  # the committer looks for changes of other processes this often
IDLE_RELEASE_S = 3.0  # an owner with nothing to apply for this long lets others own
_HEAP = 64_000_000  # per writer; Tantivy flushes a segment when it is full
_MARK_FILE = "applied.json"
_LOCK_FILE = "owner.lock"

# (sentence id, version id, storage key, text) and (version id, storage key, title, text).
SentenceRow = tuple[int, int, str, str]
DocumentRow = tuple[int, str, str, str]


@dataclass
class Changes:
    """What SQLite holds for the versions changed after a mark, read in one snapshot."""

    mark: int  # the last log sequence these rows reflect
    versions: list[int] | None  # the versions changed; None: all (a rebuild)
    sentences: list[SentenceRow]
    documents: list[DocumentRow]


class LexicalSource(Protocol):
    """What the index reads from the database (the embedded store)."""

    def lexical_mark(self) -> int:
        """The last sequence of ``lexical_log`` (0 if none)."""

    def lexical_pruned(self) -> int:
        """Log entries up to this sequence were deleted: an older index cannot catch up."""

    def lexical_changes(self, after: int | None) -> Changes:
        """The live current rows of the versions logged after ``after`` (all with None)."""


def _analyzer() -> tantivy.TextAnalyzer:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .filter(tantivy.Filter.stemmer("english"))
            .build())


_QUERY_ANALYZER = _analyzer()


def query_terms(text: str) -> list[str]:
    """The indexed terms of a question's words (index/text.py query_words), repeats kept:
    FTS5 scored '"storm" OR "storms"' as two phrases of one term, and so does this."""
    return [term for word in query_words(text) for term in _QUERY_ANALYZER.analyze(word)]


def _schema(text_fields: Sequence[str]) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for name in text_fields:  # no positions: queries are ORs of terms, never phrases
        builder.add_text_field(name, tokenizer_name=ANALYZER, index_option="freq")
    builder.add_unsigned_field("key", fast=True)  # what a hit names: a sentence or version id
    builder.add_unsigned_field("version", indexed=True)  # what a change deletes by
    builder.add_text_field("doc", tokenizer_name="raw", index_option="basic")  # storage key: filters
    builder.add_text_field("coll", tokenizer_name="raw", index_option="basic")
    return builder.build()


class _Index:
    """One Tantivy index: sentences (key: sentence id) or documents (title + text, key: version id)."""

    def __init__(self, path: Path, text_fields: Sequence[str]):
        self.path, self.text_fields = path, tuple(text_fields)
        self.schema = _schema(text_fields)
        self.index: tantivy.Index | None = None
        self.writer: tantivy.IndexWriter | None = None

    def open(self, create: bool) -> None:
        if create:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            index = tantivy.Index(self.schema, path=str(self.path), reuse=False)
        else:
            index = tantivy.Index.open(str(self.path))
        index.register_tokenizer(ANALYZER, _analyzer())
        index.config_reader(reload_policy="manual")  # we reload after a commit: no watcher thread
        self.index = index

    def add(self, key: int, version: int, storage_key: str, texts: Sequence[str]) -> None:
        assert self.writer is not None
        doc = tantivy.Document()
        for name, text in zip(self.text_fields, texts, strict=True):
            doc.add_text(name, text)
        doc.add_unsigned("key", key)
        doc.add_unsigned("version", version)
        doc.add_text("doc", storage_key)
        at = storage_key.find("\x1f")  # index/scope.py KEY_SEPARATOR
        doc.add_text("coll", "default" if at < 0 else storage_key[:at])
        self.writer.add_document(doc)

    def search(self, terms: Sequence[str], n: int, keys: Sequence[str] | None,
               collection: str | None) -> list[tuple[int, float]]:
        assert self.index is not None
        words = tantivy.Query.boolean_query([
            (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, field, term, "freq"))
            for term in terms for field in self.text_fields])
        filters = []
        if keys is not None:
            filters.append(tantivy.Query.term_set_query(self.schema, "doc", list(keys)))
        if collection is not None:
            filters.append(tantivy.Query.term_query(self.schema, "coll", collection, "basic"))
        # The words are one Must clause of their own: beside a Must, Should clauses would
        # become optional and every document in scope would match.
        query = words if not filters else tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, words)]
            + [(tantivy.Occur.Must, tantivy.Query.const_score_query(f, 0.0)) for f in filters])
        searcher = self.index.searcher()
        hits = searcher.search(query, n, count=False).hits
        if not hits:
            return []
        keys_found = searcher.fast_field_values("key", [address for _, address in hits])
        return [(int(k), float(score)) for (score, _), k in zip(hits, keys_found, strict=True) if k is not None]


class LexicalIndex:
    """Sentence and document BM25 search over ``directory``, kept in step with ``source``."""

    def __init__(self, directory: Path, epoch: str, source: LexicalSource, *, committer: bool = True):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.epoch = epoch
        self.source = source
        self.sentences = _Index(self.directory / "sentences", ["text"])
        self.documents = _Index(self.directory / "documents", ["title", "text"])
        self._lock_fd: int | None = None
        self._write_lock = threading.Lock()  # one applier at a time in this process
        self._applied = 0  # the last sequence the open readers reflect
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._closed = False
        self._idle_since = time.monotonic()
        self._open()
        self._thread: threading.Thread | None = None
        if committer:
            self._thread = threading.Thread(target=self._run, name="lexical-committer", daemon=True)
            self._thread.start()

    # -- open and rebuild ------------------------------------------------------------------

    def _read_mark(self) -> int | None:
        """The sequence ``applied.json`` records, or None if it does not belong to this database."""
        try:
            saved = json.loads((self.directory / _MARK_FILE).read_text(encoding="utf-8"))
            if saved.get("format") != FORMAT or saved.get("epoch") != self.epoch:
                return None
            return int(saved["applied"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _usable(self) -> int | None:
        """The mark of an index on disk that can catch up with the database, or None."""
        mark = self._read_mark()
        if mark is None or mark > self.source.lexical_mark() or mark < self.source.lexical_pruned():
            return None
        try:
            self.sentences.open(create=False)
            self.documents.open(create=False)
        except Exception as exc:  # a torn or foreign index must never stop the service
            log.warning("lexical index %s unreadable (%s); rebuilding from the database", self.directory, exc)
            return None
        return mark

    def _open(self) -> None:
        mark = self._usable()
        if mark is None:
            self._own(block=True)  # another process may be building it: wait, then look again
            try:
                with self._write_lock:
                    mark = self._usable()
                    if mark is None:
                        self._rebuild()
                        return
            finally:
                self._release()
        self._applied = mark

    def _rebuild(self) -> None:
        """Index every live sentence and document afresh (caller owns, holds _write_lock)."""
        started = time.monotonic()
        self._release_writers()
        (self.directory / _MARK_FILE).unlink(missing_ok=True)  # no mark: a crash below rebuilds again
        _sync_dir(self.directory)
        self.sentences.open(create=True)
        self.documents.open(create=True)
        changes = self.source.lexical_changes(None)
        self._apply(changes, heap=4 * _HEAP)
        log.info("lexical index rebuilt from %d sentences in %.1fs", len(changes.sentences),
                 time.monotonic() - started)

    # -- ownership (an flock: the kernel drops it with the process) ------------------------

    def _own(self, block: bool = False) -> bool:
        if self._lock_fd is not None:
            return True
        fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _release_writers(self) -> None:
        for index in (self.sentences, self.documents):
            if index.writer is not None:
                writer, index.writer = index.writer, None
                writer.wait_merging_threads()  # merges finish rather than being thrown away

    def _release(self) -> None:
        self._release_writers()
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)  # releases the flock

    # -- applying the log ------------------------------------------------------------------

    def _apply(self, changes: Changes, heap: int = _HEAP) -> None:
        """Write ``changes`` to both indexes, commit, record the mark (caller owns, holds _write_lock)."""
        for index in (self.sentences, self.documents):
            if index.writer is None:
                assert index.index is not None
                index.writer = index.index.writer(heap_size=heap, num_threads=1)
        assert self.sentences.writer is not None and self.documents.writer is not None
        if changes.versions:
            # By query: tantivy 0.27's delete_documents_by_term misses unsigned fields.
            for index in (self.sentences, self.documents):
                assert index.writer is not None
                index.writer.delete_documents_by_query(
                    tantivy.Query.term_set_query(index.schema, "version", changes.versions))
        for sentence_id, version, key, text in changes.sentences:
            self.sentences.add(sentence_id, version, key, [text])
        for version, key, title, text in changes.documents:
            self.documents.add(version, version, key, [title, text])
        self.sentences.writer.commit()
        self.documents.writer.commit()
        _write_atomically(self.directory / _MARK_FILE,
                          json.dumps({"format": FORMAT, "epoch": self.epoch, "applied": changes.mark}))
        self._reload(changes.mark)

    def _reload(self, mark: int) -> None:
        for index in (self.sentences, self.documents):
            assert index.index is not None
            index.index.reload()
        with self._changed:
            self._applied = max(self._applied, mark)
            self._changed.notify_all()

    def catch_up(self) -> bool:
        """Apply what the log holds beyond the indexes' mark, when this process can own
        them; else reload what the owner committed. True if the indexes are up to date."""
        target = self.source.lexical_mark()
        with self._write_lock:
            if self._own():
                done = self._read_mark()  # another owner may have applied more meanwhile
                if done is None or done < self.source.lexical_pruned():
                    self._rebuild()
                elif done < target:
                    self._apply(self.source.lexical_changes(done))
                elif done > self._applied:
                    self._reload(done)
            else:
                done = self._read_mark()  # read before reloading: the readers then hold at least this
                if done is not None and done > self._applied:
                    self._reload(done)
        return self._applied >= target

    # -- the committer ---------------------------------------------------------------------

    def changed(self) -> None:
        """A write was committed to the database: index it soon."""
        self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(POLL_S)
            self._wake.clear()
            if self._closed:
                break
            try:
                if self.source.lexical_mark() > self._applied:
                    self.catch_up()
                    self._idle_since = time.monotonic()
                elif self._lock_fd is not None and time.monotonic() - self._idle_since > IDLE_RELEASE_S:
                    with self._write_lock:
                        self._release()
            except Exception:  # the next round (or the next open) tries again
                log.exception("indexing the lexical log failed")
                time.sleep(POLL_S)

    def wait_for(self, mark: int, timeout: float = COMMIT_WAIT_S) -> bool:
        """Block until the readers reflect log sequence ``mark`` (True), or ``timeout``."""
        if self._applied >= mark:
            return True
        deadline = time.monotonic() + timeout
        while self._applied < mark:
            if self._thread is None:
                self.catch_up()
                return self._applied >= mark
            self._wake.set()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._changed:
                self._changed.wait(min(left, 0.05))
            if self._applied < mark and self._lock_fd is None:
                done = self._read_mark()  # another process may own the indexes and have applied it
                if done is not None and done > self._applied:
                    with self._write_lock:
                        self._reload(done)
        return True

    @property
    def applied(self) -> int:
        return self._applied

    # -- search ----------------------------------------------------------------------------

    def search_sentences(self, terms: Sequence[str], n: int, keys: Sequence[str] | None = None,
                         collection: str | None = None) -> list[tuple[int, float]]:
        """(sentence id, BM25) of the best ``n`` sentences, optionally among the documents
        filed under ``keys`` and in ``collection`` (a filter: it does not change scores)."""
        if not terms or n <= 0:
            return []
        return self.sentences.search(terms, n, keys, collection)

    def search_documents(self, terms: Sequence[str], n: int, keys: Sequence[str] | None = None,
                         collection: str | None = None) -> list[tuple[int, float]]:
        """(version id, BM25 over title and text) of the best ``n`` documents."""
        if not terms or n <= 0:
            return []
        return self.documents.search(terms, n, keys, collection)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.catch_up()  # a clean shutdown leaves nothing for the next open to apply
        except Exception:
            log.exception("indexing the lexical log on close failed; the next open applies it")
        with self._write_lock:
            self._release()


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def indexed_sentence_ids(directory: Path) -> set[int]:
    """The sentence ids the committed sentence index under ``directory`` holds (read-only,
    for checks: a server may be running on it)."""
    index = tantivy.Index.open(str(Path(directory) / "sentences"))
    index.register_tokenizer(ANALYZER, _analyzer())
    searcher = index.searcher()
    if searcher.num_docs == 0:
        return set()
    hits = searcher.search(tantivy.Query.all_query(), searcher.num_docs, count=False).hits
    return {int(k) for k in searcher.fast_field_values("key", [address for _, address in hits]) if k is not None}
