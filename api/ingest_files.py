"""``citeqa ingest`` of files and folders: each file on its own, in process or through a
running server.

A file that cannot be read (a damaged PDF, a type citeqa does not read, a bad JSONL row, a
file it may not open) is named with what is wrong and stores nothing of itself; the other
files are stored. In process, documents are embedded in batches across files (the model is
fastest on full batches); over HTTP, .txt and JSONL documents go as JSON, many per request
(``POST /v1/documents:batch``), and any other file is uploaded as it is (multipart), so
the server extracts and keeps it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from citeqa.index.extract import ExtractionError, Limits
from citeqa.index.file_input import InputFile, read_input_file
from citeqa.index.ingest import DocumentInput, InvalidDocument
from citeqa.index.scope import DEFAULT_COLLECTION

if TYPE_CHECKING:
    import httpx
    from rich.progress import Progress

    from citeqa.index.ingest import Ingestor

# Errors that belong to one file: it is reported and the run goes on.
FILE_PROBLEMS = (ExtractionError, InvalidDocument, OSError, UnicodeDecodeError, ValueError)
# Answers of the server that are about the document sent; any other (401, 429, 5xx, ...)
# would come back for every file, so the run stops there.
FILE_STATUSES = frozenset({400, 413, 415, 422})
# Extracted files keep their original bytes until stored: a batch is also cut at this size.
MAX_PENDING_BYTES = 64_000_000
# Over HTTP: documents per POST /v1/documents:batch (the server's default limit,
# CITEQA_MAX_BATCH_DOCUMENTS), and JSON bytes per batch, below its default body limit (5 MB).
BATCH_DOCUMENTS = 100
MAX_BATCH_BYTES = 4_000_000


@dataclass
class Tally:
    created: int = 0
    unchanged: int = 0
    sentences: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped before the last file (over HTTP)

    def add(self, created: bool, sentence_count: int) -> None:
        self.created += created
        self.unchanged += not created
        self.sentences += sentence_count

    def summary(self) -> str:
        return (f"{self.created} stored, {self.unchanged} unchanged, {self.sentences} sentences, "
                f"{len(self.failed)} failed")


def describe(exc: BaseException) -> str:
    """What is wrong with a file, in one line."""
    if isinstance(exc, ExtractionError):
        return f"{exc.status} {exc.message}"
    if isinstance(exc, InvalidDocument):
        return f"invalid document: {exc}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return f"cannot extract ({type(exc).__name__}: {exc})"  # an extractor's own failure: name it


Report = Callable[[Path, str], None]


def ingest_locally(files: list[InputFile], ingestor: Ingestor, progress: Progress, report: Report, *,
                   limits: Limits | None = None, batch: int = 256, collection: str = DEFAULT_COLLECTION) -> Tally:
    """Read and extract each file, then store its documents into ``collection`` (created on
    first use), ``batch`` at a time."""
    tally = Tally()
    reading = progress.add_task("reading", total=len(files))
    storing = progress.add_task("storing", total=0)
    pending: list[DocumentInput] = []
    pending_bytes = 0
    known = 0

    def store(items: list[DocumentInput]) -> None:
        for result in ingestor.ingest_many(items, progress=lambda n: progress.advance(storing, n)):
            tally.add(result.created, result.sentence_count)

    for entry in files:
        try:
            items = [replace(item, collection=collection) for item in read_input_file(entry, limits)]
        except FILE_PROBLEMS as exc:
            tally.failed.append((entry.path, describe(exc)))
            report(entry.path, describe(exc))
        else:
            pending.extend(items)
            pending_bytes += sum(len(item.original or b"") + len(item.text) for item in items)
            known += len(items)
            progress.update(storing, total=known)
            while len(pending) >= batch:
                store(pending[:batch])
                del pending[:batch]
                pending_bytes = sum(len(item.original or b"") + len(item.text) for item in pending)
            if pending and pending_bytes >= MAX_PENDING_BYTES:
                store(pending)
                pending, pending_bytes = [], 0
        progress.advance(reading)
    if pending:
        store(pending)
    return tally


def ingest_remotely(files: list[InputFile], client: httpx.Client, progress: Progress, report: Report, *,
                    collection: str | None = None, batch: int = BATCH_DOCUMENTS) -> Tally:
    """Send each file to the server at ``client``'s base URL, into ``collection`` (the
    ``collection`` field of the JSON bodies or the upload's form; None: the server's choice,
    ``default`` or the API key's only collection). Text and JSONL documents go in batches of
    up to ``batch`` (``POST /v1/documents:batch``, each document answered on its own; one
    document per request to a server older than that route); any other file is uploaded as
    it is. A JSONL file is checked whole before its first document is sent; the server may
    still refuse one of its documents, which is then reported and the others stored."""
    import httpx

    from citeqa.api.client import ApiError

    tally = Tally()
    sender = _Batches(client, tally, report, collection, batch)
    task = progress.add_task("sending", total=len(files))
    for entry in files:
        try:
            if entry.extracted and entry.problem is None:
                _upload(client, entry, tally, collection)
            else:
                sender.add(entry.path, read_input_file(entry))
        except ApiError as exc:
            if exc.status not in FILE_STATUSES:
                tally.stopped = f"{exc.status} {exc.message}"
                break
            tally.failed.append((entry.path, f"{exc.status} {exc.message}"))
            report(entry.path, tally.failed[-1][1])
        except httpx.HTTPError as exc:
            tally.stopped = f"cannot reach the server: {exc}"
            break
        except FILE_PROBLEMS as exc:
            tally.failed.append((entry.path, describe(exc)))
            report(entry.path, describe(exc))
        progress.advance(task)
    else:
        try:
            sender.flush()
        except ApiError as exc:
            tally.stopped = f"{exc.status} {exc.message}"
        except httpx.HTTPError as exc:
            tally.stopped = f"cannot reach the server: {exc}"
    return tally


def _upload(client: httpx.Client, entry: InputFile, tally: Tally, collection: str | None) -> None:
    from citeqa.api.client import upload_file

    body = upload_file(client, entry.path.read_bytes(), entry.path.name, doc_id=entry.doc_id,
                       title=entry.title, metadata=entry.metadata, collection=collection)
    tally.add(body["created"], body["sentence_count"])


class _Batches:
    """JSON documents waiting to be sent, with the file each came from; sent ``size`` at a
    time, or sooner when their bodies near MAX_BATCH_BYTES (the server's default body limit
    is 5 MB). A batch the server finds too large (413) is sent again in halves, and later
    batches are no larger; a server without the batch route (404, 405) gets one document
    per request from then on. Raises ApiError for an answer that any request would get."""

    def __init__(self, client: httpx.Client, tally: Tally, report: Report, collection: str | None, size: int):
        self.client, self.tally, self.report, self.collection = client, tally, report, collection
        self.size = max(1, size)
        self.batched = True  # False: the server has no batch route
        self.pending: list[tuple[Path, dict[str, Any]]] = []
        self.pending_bytes = 0

    def add(self, path: Path, items: list[DocumentInput]) -> None:
        from citeqa.api.client import document_payload

        for item in items:
            payload = document_payload(item)
            size = len(json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass"))
            if self.pending and self.pending_bytes + size > MAX_BATCH_BYTES:
                self.flush()
            self.pending.append((path, payload))
            self.pending_bytes += size
            if len(self.pending) >= self.size:
                self.flush()

    def flush(self) -> None:
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        while pending:
            chunk, pending = pending[:self.size], pending[self.size:]
            self._send(chunk)

    def _send(self, chunk: list[tuple[Path, dict[str, Any]]]) -> None:
        from citeqa.api.client import ApiError, collection_field, post_batch, post_json

        if not self.batched:
            for path, payload in chunk:
                try:
                    body = post_json(self.client, "/v1/documents", {**payload, **collection_field(self.collection)})
                except ApiError as exc:
                    if exc.status not in FILE_STATUSES:
                        raise
                    self._failed(path, f"{exc.status} {exc.message}")
                else:
                    self.tally.add(body["created"], body["sentence_count"])
            return
        try:
            answers = post_batch(self.client, [payload for _, payload in chunk], self.collection)
        except ApiError as exc:
            if exc.status in (404, 405):  # a server from before the batch route
                self.batched = False
                self._send(chunk)
            elif exc.status not in FILE_STATUSES:
                raise
            elif len(chunk) == 1:
                self._failed(chunk[0][0], f"{exc.status} {exc.message}")
            elif exc.status == 413:  # too many documents or bytes at once
                half = len(chunk) // 2
                self.size = min(self.size, half)  # and no larger from now on
                self._send(chunk[:half])
                self._send(chunk[half:])
            else:  # the body as a whole was refused (not JSON the server reads): find which document
                for one in chunk:
                    self._send([one])
            return
        for (path, _), answer in zip(chunk, answers, strict=True):
            if answer.get("status") == "error":
                error = answer.get("error") or {}
                self._failed(path, f"{answer.get('http_status')} {error.get('message', 'refused')}")
            else:
                self.tally.add(answer["status"] == "created", int(answer.get("sentence_count") or 0))

    def _failed(self, path: Path, problem: str) -> None:
        self.tally.failed.append((path, problem))
        self.report(path, problem)
