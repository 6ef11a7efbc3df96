"""``/v1/documents``: store (a JSON text or an uploaded file), list, read (any version, any
span, the original file) and delete documents.

``POST /v1/documents`` takes two bodies on one path: JSON (``DocumentIn``), and a file as
``multipart/form-data``, which a route of its own serves (``_UploadRoute`` matches only
that content type; api/middleware.py gives it its own size limit). Doc ids may hold ``/``
(``{doc_id:path}``), so ``GET .../{doc_id}/original`` is told from a document whose id ends
in ``/original`` by the raw path: only a literal, unencoded ``/original`` at the end is the
original route. A client that quotes the id with every ``/`` as ``%2F`` (api/client.py,
the playground, ``original_url``) reaches either, whatever the id.

Every route works in one collection: ``collection`` in the body or form of an ingest, the
``?collection=`` query parameter elsewhere (api/access.py resolves it, and answers 404 for
a collection the API key may not use, as for one that does not exist).
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import Scope

from citeqa.api.access import collection_for
from citeqa.api.deps import MetricsDep, ServicesDep, SettingsDep
from citeqa.api.errors import ApiError
from citeqa.api.middleware import is_upload, json_body_problem
from citeqa.api.observability import Metrics
from citeqa.api.routes import documents_batch
from citeqa.api.schemas import (
    DocumentIn,
    DocumentList,
    DocumentOut,
    DocumentSummary,
    DocumentWritten,
    SentenceOut,
    SourceOut,
    SpanOut,
    check_metadata_size,
)
from citeqa.api.services import Services, extraction_limits
from citeqa.api.settings import Settings
from citeqa.index.extract import ExtractionError
from citeqa.index.file_input import document_from_file
from citeqa.index.ingest import DocumentInput
from citeqa.index.scope import DEFAULT_COLLECTION
from citeqa.index.types import Document
from citeqa.qa.anchors import anchor

PREFIX = "/v1/documents"
UPLOAD_PATHS = (PREFIX,)  # where api/middleware.py lets multipart/form-data through
UPLOAD_FIELDS = ("file", "doc_id", "title", "metadata", "collection")
# An ExtractionError carries its status; the code goes with it.
EXTRACTION_CODES = {413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_document"}


def original_path(doc_id: str, version: str, collection: str = DEFAULT_COLLECTION) -> str:
    """The path of a version's original bytes (the id quoted: it may hold ``/``, ``?``, spaces)."""
    where = "" if collection == DEFAULT_COLLECTION else f"&collection={quote(collection, safe='')}"
    return f"{PREFIX}/{quote(doc_id, safe='')}/original?version={quote(version, safe='')}{where}"


# The ``?collection=`` of the routes that read or delete a document.
CollectionQuery = Annotated[str | None, Query(description=(
    "The collection (default: `default`, or the API key's only collection). One the key may not use answers "
    "404, as one that does not exist does."))]


class _UploadRoute(APIRoute):
    """Serves only multipart/form-data: the JSON route on the same path and method takes the rest."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not is_upload([v for k, v in scope["headers"] if k == b"content-type"]):
            return Match.NONE, {}
        return super().matches(scope)


class _OriginalRoute(APIRoute):
    """Only a literal ``/original`` ends the path: ``a%2Foriginal`` is the document ``a/original``."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw = scope.get("raw_path")
        if isinstance(raw, bytes) and not raw.split(b"?", 1)[0].endswith(b"/original"):
            return Match.NONE, {}
        return super().matches(scope)


router = APIRouter(prefix=PREFIX, tags=["documents"])

_UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": (
            "HTML, PDF, Markdown, DOCX or plain text; the type is detected from the content (and the part's "
            "Content-Type), never from the file name alone. At most CITEQA_MAX_UPLOAD_BYTES (25 MB).")},
        "doc_id": {"type": "string", "minLength": 1, "maxLength": 256,
                   "description": "Defaults to a content hash (of the text and the file's SHA-256)."},
        "title": {"type": "string", "maxLength": 1000,
                  "description": "Defaults to the file's own title (HTML, PDF, DOCX), else its name."},
        "metadata": {"type": "string", "description": (
            "A JSON object as text; its keys override those extracted from the file (author, date, url...).")},
        "collection": {"type": "string", "description": (
            "The collection to store it in (default: `default`, or the API key's only collection); created "
            "if missing.")},
    },
}


async def upload_document(
    request: Request, services: ServicesDep, settings: SettingsDep, metrics: MetricsDep, response: Response,
    file: Annotated[UploadFile, File(description="The document's file.")],
    doc_id: Annotated[str | None, Form(min_length=1, max_length=256)] = None,
    title: Annotated[str, Form(max_length=1000)] = "",
    metadata: Annotated[str | None, Form()] = None,
    collection: Annotated[str | None, Form()] = None,
) -> DocumentWritten:
    """A file as multipart/form-data (documented on the JSON route: one operation, two bodies).
    Empty form fields count as absent, as browsers send every field of a form."""
    form = await request.form()  # the form FastAPI already parsed for the parameters
    unknown = sorted(set(form.keys()) - set(UPLOAD_FIELDS))
    if unknown:
        raise RequestValidationError([{"type": "extra_forbidden", "loc": ("body", name),
                                       "msg": f"unknown field (fields: {', '.join(UPLOAD_FIELDS)})"}
                                      for name in unknown])
    extra = _metadata_field(metadata, settings)
    # Extraction and ingest are CPU and disk work: in the thread pool, off the event loop.
    return await run_in_threadpool(_store_file, request, file, doc_id, title, extra, collection or None, services,
                                   settings, metrics, response)


def _store_file(request: Request, file: UploadFile, doc_id: str | None, title: str, metadata: dict[str, Any],
                collection: str | None, services: Services, settings: Settings, metrics: Metrics,
                response: Response) -> DocumentWritten:
    where = collection_for(request, collection, services.store, must_exist=False)  # before any extraction work
    data = file.file.read()  # at most max_upload_bytes: the middleware counted the body
    try:
        document = document_from_file(data, filename=file.filename or "", declared_type=file.content_type,
                                      doc_id=doc_id, title=title, metadata=metadata,
                                      limits=extraction_limits(settings))
    except ExtractionError as exc:
        raise ApiError(exc.status, EXTRACTION_CODES.get(exc.status, "invalid_document"), exc.message) from exc
    return _ingest(replace(document, collection=where), services, metrics, response)


def _metadata_field(text: str | None, settings: Settings) -> dict[str, Any]:
    """The ``metadata`` form field: a JSON object as text, with the JSON route's checks."""
    if not text:
        return {}
    problem = json_body_problem(text.encode("utf-8", "surrogatepass"), what="metadata")
    try:
        value = None if problem else json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer of too many digits
        problem = f"metadata is not valid JSON ({exc})"
    if problem is None and not isinstance(value, dict):
        problem = f"metadata must be a JSON object, not {type(value).__name__}"
    if problem is not None:
        raise RequestValidationError([{"type": "value_error", "loc": ("body", "metadata"),
                                       "msg": problem.removeprefix("metadata ")}])
    assert isinstance(value, dict)
    check_metadata_size(value, settings)
    return value


def _ingest(document: DocumentInput, services: Services, metrics: Metrics, response: Response) -> DocumentWritten:
    result = services.ingestor.ingest(document)
    if result.created:
        metrics.observe_ingest(1, result.sentence_count)
    else:
        response.status_code = status.HTTP_200_OK
    source = None
    collection = result.collection
    if document.source is not None:  # what is stored (a second upload under another name keeps the first's)
        stored = services.store.document(result.doc_id, result.doc_version, collection)
        kept = stored.source if stored is not None and stored.source is not None else document.source
        source = SourceOut.of(kept, original_path(result.doc_id, result.doc_version, collection))
    return DocumentWritten(collection=collection, doc_id=result.doc_id, doc_version=result.doc_version,
                           sentence_count=result.sentence_count, created=result.created, source=source)


# Registered before the JSON route: a route that does not match passes the request on.
router.add_api_route("", upload_document, methods=["POST"], route_class_override=_UploadRoute,
                     include_in_schema=False, status_code=201, response_model=DocumentWritten)


@router.post("", status_code=201, response_model=DocumentWritten,
             responses={200: {"model": DocumentWritten, "description": "This exact version was already stored."}},
             openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": _UPLOAD_SCHEMA}}}})
def add_document(body: DocumentIn, request: Request, services: ServicesDep, settings: SettingsDep,
                 metrics: MetricsDep, response: Response) -> DocumentWritten:
    """Store a document (or a new version of one) and index its sentences. 201 when
    created; 200 when the same content was already stored (nothing is re-embedded).

    Two bodies: JSON (the text itself), or a file as ``multipart/form-data`` (field ``file``;
    optional ``doc_id``, ``title``, ``metadata`` as JSON text): HTML (its main text), PDF
    (text per page), Markdown (without markup), DOCX or plain text, told apart by content.
    The stored text is what was extracted; the version keeps the original bytes
    (``GET /v1/documents/{doc_id}/original``), and the response's ``source`` says what
    was detected: media type, page count, size, SHA-256. A file that cannot be read gets
    413 (over a limit), 415 (a type not read; the message lists those that are) or 422
    (``invalid_document``: encrypted, corrupt, no text layer, no main text...), and nothing
    is stored.

    ``collection`` (a JSON field, or a form field of an upload) names the collection to
    store it in, created if missing; an API key limited to collections stores only in
    those (404 for any other, as for a collection that does not exist)."""
    body.check_limits(settings)
    collection = collection_for(request, body.collection, services.store, must_exist=False)
    return _ingest(DocumentInput(text=body.text, doc_id=body.doc_id, title=body.title, metadata=body.metadata,
                                 collection=collection), services, metrics, response)


@router.get("", response_model=DocumentList)
def list_documents(
    request: Request,
    services: ServicesDep,
    collection: CollectionQuery = None,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**63 - 1),
    metadata: bool = Query(False, description="Also each document's metadata (null without it)."),
) -> DocumentList:
    """Live documents (their current versions) of a collection, ordered by doc_id: ids,
    versions and titles. Metadata can be large, so a listing carries it only when asked
    (``?metadata=true``)."""
    where = collection_for(request, collection, services.store)
    page = services.store.list_documents(limit, offset, where)
    next_offset = offset + limit if offset + limit < page.total else None
    return DocumentList(collection=where,
                        documents=[DocumentSummary.of(d, with_metadata=metadata) for d in page.documents],
                        total=page.total, limit=limit, offset=offset, next_offset=next_offset)


def _document_or_404(services: Services, doc_id: str, version: str | None, collection: str) -> Document:
    doc = services.store.document(doc_id, version, collection)
    if doc is None:
        what = f"document {doc_id!r}" + (f" has no version {version!r}" if version else " not found")
        raise ApiError(404, "not_found", what)
    return doc


def get_original(doc_id: str, request: Request, services: ServicesDep,
                 version: str | None = Query(None, description="Default: the current version."),
                 collection: CollectionQuery = None) -> Response:
    """The bytes of the file a version was extracted from, as uploaded: its media type, an
    attachment with its file name, and its SHA-256 as the ETag. 404 for a version sent as
    text (it has no file). The id is everything before a literal ``/original``: a document
    whose id itself ends in ``/original`` is read at ``/v1/documents/{id with / as %2F}``."""
    where = collection_for(request, collection, services.store, must_exist=version is None)
    doc = _document_or_404(services, doc_id, version, where)
    if doc.source is None:
        raise ApiError(404, "not_found", f"version {doc.version} of document {doc.doc_id!r} has no original file: "
                       "it was sent as text")
    data = services.store.original(doc.doc_id, doc.version, where)
    if data is None:
        raise ApiError(404, "not_found", f"the original file of version {doc.version} of document {doc.doc_id!r} "
                       "is not stored")
    etag = f'"{doc.source.sha256}"'
    headers = {
        "ETag": etag,
        "Content-Disposition": content_disposition(doc.source.filename or _fallback_name(doc)),
        # The bytes are the uploader's, served from this origin: never sniffed, never run.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    # The header is set, not media_type: Starlette would add "; charset=utf-8" to text/*.
    return Response(content=data, headers={**headers, "Content-Type": doc.source.media_type})


def _fallback_name(doc: Document) -> str:
    base = doc.doc_id.rsplit("/", 1)[-1] or "original"
    extension = mimetypes.guess_extension(doc.source.media_type if doc.source else "") or ""
    return base if base.endswith(extension) else base + extension


def content_disposition(filename: str) -> str:
    """``attachment`` with the name twice: an ASCII fallback, and the exact name as RFC 5987
    ``filename*`` (any character, percent-encoded), so no name can break the header."""
    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"\\;' else "_" for ch in filename) or "original"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# Registered before GET /{doc_id:path}, which would take ".../original" as part of an id.
router.add_api_route(
    "/{doc_id:path}/original", get_original, methods=["GET"], route_class_override=_OriginalRoute,
    response_class=Response,
    responses={200: {"description": "The original file's bytes, with its media type.",
                     "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
               304: {"description": "Not modified (If-None-Match held the ETag)."}},
)


@router.get("/{doc_id:path}", response_model=DocumentOut)
def get_document(doc_id: str, request: Request, services: ServicesDep, version: str | None = None,
                 start: int | None = Query(None, ge=0, description="With end: also return this span (a citation's)."),
                 end: int | None = Query(None, ge=0), collection: CollectionQuery = None) -> DocumentOut:
    """A document's current version, or any stored version with ``?version=``: every
    version a citation ever named stays readable, even after an update or a delete.
    ``start`` and ``end`` (code points) add ``span``: what a citation URL points at, with
    the PDF page(s) it is on (``page``, ``end_page``). ``source`` describes the file the
    version was extracted from (null for text sent as text). ``?collection=`` names the
    collection the document is in (a citation's URL carries it); a version stays readable
    after its collection is deleted."""
    where = collection_for(request, collection, services.store, must_exist=version is None)
    doc = _document_or_404(services, doc_id, version, where)
    span = None
    if start is not None or end is not None:
        if start is None or end is None or not start <= end <= len(doc.text):
            raise ApiError(422, "invalid_request", f"start and end must satisfy 0 <= start <= end <= {len(doc.text)}")
        at = anchor(doc, start, end)  # the same page rule as citations'
        span = SpanOut(start=start, end=end, text=doc.text[start:end], page=at.page, end_page=at.end_page)
    sentences = services.store.sentences(doc.doc_id, doc.version, where)
    return DocumentOut(
        collection=where, doc_id=doc.doc_id, doc_version=doc.version, title=doc.title, text=doc.text,
        metadata=doc.metadata,
        current=doc.current, sentences=[SentenceOut(id=s.id, start=s.start, end=s.end) for s in sentences],
        span=span,
        source=(SourceOut.of(doc.source, original_path(doc.doc_id, doc.version, where))
                if doc.source is not None else None),
    )


@router.delete("/{doc_id:path}", status_code=204)
def delete_document(doc_id: str, request: Request, services: ServicesDep,
                    collection: CollectionQuery = None) -> Response:
    """Stop retrieving a document. Its stored versions stay readable by version."""
    where = collection_for(request, collection, services.store)
    if not services.store.delete(doc_id, where):
        raise ApiError(404, "not_found", f"document {doc_id!r} not found")
    return Response(status_code=204)


# POST /v1/documents:batch: under this prefix, so under the write scope of every write here.
documents_batch.install(router)
