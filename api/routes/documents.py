"""``/v1/documents``: store, list, read (any version, any span) and delete documents."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response, status

from citeqa.api.deps import MetricsDep, ServicesDep, SettingsDep
from citeqa.api.errors import ApiError
from citeqa.api.schemas import (
    DocumentIn,
    DocumentList,
    DocumentOut,
    DocumentSummary,
    DocumentWritten,
    SentenceOut,
    SpanOut,
)
from citeqa.index.ingest import DocumentInput

router = APIRouter(prefix="/v1/documents", tags=["documents"])


@router.post("", status_code=201, response_model=DocumentWritten,
             responses={200: {"model": DocumentWritten, "description": "This exact version was already stored."}})
def add_document(body: DocumentIn, services: ServicesDep, settings: SettingsDep, metrics: MetricsDep,
                 response: Response) -> DocumentWritten:
    """Store a document (or a new version of one) and index its sentences. 201 when
    created; 200 when the same content was already stored (nothing is re-embedded)."""
    body.check_limits(settings)
    result = services.ingestor.ingest(
        DocumentInput(text=body.text, doc_id=body.doc_id, title=body.title, metadata=body.metadata)
    )
    if result.created:
        metrics.observe_ingest(1, result.sentence_count)
    else:
        response.status_code = status.HTTP_200_OK
    return DocumentWritten(doc_id=result.doc_id, doc_version=result.doc_version,
                           sentence_count=result.sentence_count, created=result.created)


@router.get("", response_model=DocumentList)
def list_documents(
    services: ServicesDep,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**63 - 1),
    metadata: bool = Query(False, description="Also each document's metadata (null without it)."),
) -> DocumentList:
    """Live documents (their current versions), ordered by doc_id: ids, versions and titles.
    Metadata can be large, so a listing carries it only when asked (``?metadata=true``)."""
    page = services.store.list_documents(limit, offset)
    next_offset = offset + limit if offset + limit < page.total else None
    return DocumentList(documents=[DocumentSummary.of(d, with_metadata=metadata) for d in page.documents],
                        total=page.total, limit=limit, offset=offset, next_offset=next_offset)


@router.get("/{doc_id:path}", response_model=DocumentOut)
def get_document(doc_id: str, services: ServicesDep, version: str | None = None,
                 start: int | None = Query(None, ge=0, description="With end: also return this span (a citation's)."),
                 end: int | None = Query(None, ge=0)) -> DocumentOut:
    """A document's current version, or any stored version with ``?version=``: every
    version a citation ever named stays readable, even after an update or a delete.
    ``start`` and ``end`` (code points) add ``span``: what a citation URL points at."""
    doc = services.store.document(doc_id, version)
    if doc is None:
        what = f"document {doc_id!r}" + (f" has no version {version!r}" if version else " not found")
        raise ApiError(404, "not_found", what)
    span = None
    if start is not None or end is not None:
        if start is None or end is None or not start <= end <= len(doc.text):
            raise ApiError(422, "invalid_request", f"start and end must satisfy 0 <= start <= end <= {len(doc.text)}")
        span = SpanOut(start=start, end=end, text=doc.text[start:end])
    sentences = services.store.sentences(doc.doc_id, doc.version)
    return DocumentOut(
        doc_id=doc.doc_id, doc_version=doc.version, title=doc.title, text=doc.text, metadata=doc.metadata,
        current=doc.current, sentences=[SentenceOut(id=s.id, start=s.start, end=s.end) for s in sentences],
        span=span,
    )


@router.delete("/{doc_id:path}", status_code=204)
def delete_document(doc_id: str, services: ServicesDep) -> Response:
    """Stop retrieving a document. Its stored versions stay readable by version."""
    if not services.store.delete(doc_id):
        raise ApiError(404, "not_found", f"document {doc_id!r} not found")
    return Response(status_code=204)
