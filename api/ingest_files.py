"""``citeqa ingest`` of files and folders: each file on its own, in process or through a
running server.

A file that cannot be read (a damaged PDF, a type citeqa does not read, a bad JSONL row, a
file it may not open) is named with what is wrong and stores nothing of itself; the other
files are stored. In process, documents are embedded in batches across files (the model is
fastest on full batches); over HTTP, a .txt or JSONL document goes as today's JSON body and
any other file is uploaded as it is (multipart), so the server extracts and keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

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
                    collection: str | None = None) -> Tally:
    """Send each file to the server at ``client``'s base URL, into ``collection`` (the
    ``collection`` field of the JSON body or the upload's form; None: the server's choice,
    ``default`` or the API key's only collection). A JSONL file is checked whole before its
    first document is sent; the server may still refuse one of its documents, and then the
    ones before it are stored."""
    import httpx

    from citeqa.api.client import ApiError

    tally = Tally()
    task = progress.add_task("sending", total=len(files))
    for entry in files:
        try:
            _send(client, entry, tally, collection)
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
    return tally


def _send(client: httpx.Client, entry: InputFile, tally: Tally, collection: str | None) -> None:
    from citeqa.api.client import collection_field, document_payload, post_json, upload_file

    if entry.extracted and entry.problem is None:
        body = upload_file(client, entry.path.read_bytes(), entry.path.name, doc_id=entry.doc_id,
                           title=entry.title, metadata=entry.metadata, collection=collection)
        tally.add(body["created"], body["sentence_count"])
        return
    for item in read_input_file(entry):
        body = post_json(client, "/v1/documents", {**document_payload(item), **collection_field(collection)})
        tally.add(body["created"], body["sentence_count"])
