"""Where files enter: the bytes of an HTML page, PDF, Markdown note, DOCX or text file
become a ``DocumentInput`` that remembers its source.

Extraction (index/extract) gives the text ingest stores, a title and metadata; this adds the
source record (media type, file name, size, SHA-256) and keeps the original bytes, which the
store saves beside the version so ``GET /v1/documents/{id}/original`` can return them.
What the caller says wins over what the file says: an explicit title or metadata key
overrides the extracted one; the title falls back to the file's name without extension.

Below, the files and folders ``citeqa ingest`` is given: which files they hold, the doc_id
each gets, and each file read on its own (.txt and JSONL exactly as ``read_inputs`` reads
them, everything else through ``document_from_file``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any, Iterable, Mapping

from citeqa.index.extract import Extractor, Limits, extract
from citeqa.index.ingest import DocumentInput, InvalidDocument, read_inputs, sidecar, validate
from citeqa.index.types import Source


def document_from_file(
    data: bytes,
    *,
    filename: str = "",
    declared_type: str | None = None,
    doc_id: str | None = None,
    title: str = "",
    metadata: Mapping[str, Any] | None = None,
    limits: Limits | None = None,
    extractors: Mapping[str, Extractor] | None = None,
) -> DocumentInput:
    """Extract ``data`` and describe where it came from. Raises
    ``citeqa.index.extract.ExtractionError`` (with the HTTP status to answer) when the bytes
    cannot become text; nothing is stored by this function."""
    extracted = extract(data, declared_type=declared_type, filename=filename or None, limits=limits,
                        extractors=extractors)
    name = PurePath(filename.replace("\\", "/")).name if filename else ""
    source = Source(media_type=extracted.media_type, filename=name, size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(), pages=extracted.pages)
    return DocumentInput(
        text=extracted.text, doc_id=doc_id, title=title or extracted.title or PurePath(name).stem,
        metadata={**extracted.metadata, **(metadata or {})}, source=source, original=data,
    )


# -- files and folders on disk (citeqa ingest) -----------------------------------------------

# Read as they always were (index/ingest.py read_inputs): the .txt bytes stored as they are,
# so offsets match the file on disk, and JSONL rows of {doc_id, title, text, metadata}.
TEXT_SUFFIXES = (".txt",)
JSONL_SUFFIXES = (".jsonl",)
# Extracted (document_from_file). Markdown is among them: its quotes must not carry markup.
EXTRACTED_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".xhtml", ".pdf", ".docx")
FOLDER_SUFFIXES = TEXT_SUFFIXES + JSONL_SUFFIXES + EXTRACTED_SUFFIXES


@dataclass(frozen=True)
class InputFile:
    """One file ``citeqa ingest`` reads. ``extracted``: through extraction (its type found in
    its bytes), else through ``read_inputs`` (.txt, .jsonl). ``doc_id`` is None for JSONL,
    whose rows name their own; ``problem`` is what is already known to be wrong with it."""

    path: Path
    extracted: bool
    doc_id: str | None = None
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


@dataclass(frozen=True)
class Folder:
    files: list[InputFile]
    # Files of other types in the folders walked (not read; named so the user knows).
    skipped: list[Path] = field(default_factory=list)


def input_files(paths: Iterable[Path]) -> Folder:
    """The files to ingest from ``paths``. A file named is read whatever its name (one that
    is not .txt or .jsonl is extracted, its type found in its bytes); a folder is walked
    recursively, in path order, for the types above, skipping hidden files and folders
    (".git", ".DS_Store") and following no links to folders. A file's doc_id is its name
    without extension; under a folder named, its path from there (``2024/report``), so
    files of one name in different folders stay different documents. ``NAME.json`` beside
    ``NAME.ext`` may give doc_id, title and metadata (as beside ``NAME.txt``). Two files
    that would get one doc_id: the later one has a problem (it would replace the first)."""
    found: list[tuple[Path, str]] = []
    skipped: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside: list[Path] = []
            for folder, dirs, names in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                inside.extend(Path(folder, name) for name in names if not name.startswith("."))
            for file in sorted(inside, key=lambda f: f.relative_to(path).as_posix()):
                if file.suffix.lower() not in FOLDER_SUFFIXES:
                    if not (file.suffix.lower() == ".json" and _is_sidecar(file)):
                        skipped.append(file)
                    continue
                found.append((file, file.relative_to(path).with_suffix("").as_posix()))
        else:
            found.append((path, path.stem))
    files: list[InputFile] = []
    owners: dict[str, Path] = {}
    read: set[Path] = set()
    for file, derived in found:
        if file.resolve() in read:
            continue  # named twice (or inside a folder also named): read once
        read.add(file.resolve())
        entry = _input_file(file, derived)
        doc_id = entry.doc_id
        if doc_id is not None and entry.problem is None:
            if doc_id in owners:
                entry = replace(entry, problem=(
                    f"doc_id {doc_id!r} is also {owners[doc_id]}'s (it would replace that one); "
                    f"give one of them a {file.with_suffix('.json').name} with its own doc_id"))
            else:
                owners[doc_id] = file
        files.append(entry)
    return Folder(files, skipped)


def _is_sidecar(path: Path) -> bool:
    return any(path.with_suffix(suffix).exists() for suffix in FOLDER_SUFFIXES if suffix not in JSONL_SUFFIXES)


def _input_file(path: Path, derived_id: str) -> InputFile:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return InputFile(path, extracted=False)
    extracted = suffix not in TEXT_SUFFIXES
    try:
        info = sidecar(path)
    except (OSError, InvalidDocument) as exc:
        return InputFile(path, extracted, doc_id=derived_id, problem=str(exc))
    return InputFile(path, extracted, doc_id=info.get("doc_id") or derived_id, title=info.get("title") or "",
                     metadata={"source_file": path.name, **(info.get("metadata") or {})})


def read_input_file(entry: InputFile, limits: Limits | None = None) -> list[DocumentInput]:
    """The documents of one file, each valid (``validate``), or an exception saying why the
    file cannot be ingested: ``ExtractionError`` (with its status), ``InvalidDocument``,
    ``OSError`` or ``UnicodeDecodeError``. All or nothing: a JSONL file with one bad row
    gives none."""
    if entry.problem is not None:
        raise InvalidDocument(entry.problem)
    if entry.extracted:
        data = entry.path.read_bytes()
        items = [document_from_file(data, filename=entry.path.name, declared_type=None, doc_id=entry.doc_id,
                                    title=entry.title, metadata=entry.metadata, limits=limits)]
    else:
        items = read_inputs([entry.path])
        if entry.doc_id is not None:  # a .txt: its id as read_inputs gives it, or its path under the folder
            items = [replace(item, doc_id=entry.doc_id) for item in items]
    return [validate(item) for item in items]


__all__ = ["EXTRACTED_SUFFIXES", "FOLDER_SUFFIXES", "Folder", "InputFile", "document_from_file", "input_files",
           "read_input_file", "sidecar"]
