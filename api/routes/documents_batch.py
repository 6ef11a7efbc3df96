"""``POST /v1/documents:batch``: many documents in one request, each reported on its own.

The path is the collection's with a custom verb (``:batch``, as in Google's API design
guide) rather than ``/v1/documents/batch``, which is a document id that
``GET /v1/documents/{doc_id}`` must keep serving. api/routes/documents.py installs it on
its router, so the verb sits under the same prefix and the same ``write`` scope
(api/security.py guards writes by that prefix).

Every item is what ``POST /v1/documents`` takes as JSON and is checked as that route checks
it (fields, limits, the collection the API key may write): an item that fails is reported
at its index with the status that route would have answered, and the others are stored.
The valid ones are embedded together and written in one transaction (``Ingestor.ingest_each``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from citeqa.api.access import collection_for
from citeqa.api.deps import MetricsDep, ServicesDep, SettingsDep
from citeqa.api.errors import ApiError
from citeqa.api.schemas import BatchItemOut, DocumentIn, DocumentsBatchIn, DocumentsBatchOut, ErrorBody
from citeqa.api.services import Services
from citeqa.api.settings import Settings
from citeqa.index.ingest import DocumentInput, IngestResult, InvalidDocument


def add_documents(body: DocumentsBatchIn, request: Request, services: ServicesDep, settings: SettingsDep,
                  metrics: MetricsDep) -> DocumentsBatchOut:
    """Store up to CITEQA_MAX_BATCH_DOCUMENTS documents (or new versions) at once. Each item
    of ``documents`` is a ``POST /v1/documents`` JSON body, and is answered at its
    ``index``: ``created`` (201 alone), ``unchanged`` (200: this exact version was stored
    already, nothing is re-embedded; a batch can be sent again safely) or ``error`` with
    the status and message the single route would have given (422 for an invalid item, 404
    for a collection the API key may not write). Failed items store nothing and do not
    stop the others; the stored ones are embedded together and written in one transaction."""
    if len(body.documents) > settings.max_batch_documents:
        raise ApiError(413, "payload_too_large", f"a batch holds at most {settings.max_batch_documents} documents "
                       f"(got {len(body.documents)}): send them in several requests")
    answers: list[BatchItemOut | None] = [None] * len(body.documents)
    accepted: list[tuple[int, DocumentInput]] = []
    for index, raw in enumerate(body.documents):
        try:
            accepted.append((index, _document(raw, body.collection, request, services, settings)))
        except ApiError as exc:
            answers[index] = _failed(index, exc.status, exc.code, exc.message, _raw_doc_id(raw))
        except RequestValidationError as exc:
            answers[index] = _failed(index, 422, "invalid_request", _describe(exc.errors()), _raw_doc_id(raw))
    outcomes = services.ingestor.ingest_each([item for _, item in accepted])
    for (index, item), outcome in zip(accepted, outcomes, strict=True):
        if isinstance(outcome, InvalidDocument):
            answers[index] = _failed(index, 422, "invalid_document", str(outcome), item.doc_id, item.collection)
        else:
            answers[index] = _written(index, outcome)
    done = [answer for answer in answers if answer is not None]
    stored = [o for o in outcomes if isinstance(o, IngestResult) and o.created]
    if stored:
        metrics.observe_ingest(len(stored), sum(o.sentence_count for o in stored))
    return DocumentsBatchOut(documents=done, created=sum(a.status == "created" for a in done),
                             unchanged=sum(a.status == "unchanged" for a in done),
                             failed=sum(a.status == "error" for a in done))


def install(router: APIRouter) -> None:
    """Add the route to the ``/v1/documents`` router: on that router itself, so its path
    (the template metrics and access logs name) is the whole ``/v1/documents:batch``."""
    router.add_api_route(
        ":batch", add_documents, methods=["POST"], response_model=DocumentsBatchOut,
        responses={413: {"description": "More documents than CITEQA_MAX_BATCH_DOCUMENTS, or a body over "
                                        "CITEQA_MAX_BODY_BYTES: nothing is stored."}})


def _document(raw: Any, default_collection: str | None, request: Request, services: Services,
              settings: Settings) -> DocumentInput:
    """One item as ``POST /v1/documents`` reads its body: fields, limits, then the collection."""
    try:
        item = DocumentIn.model_validate(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    item.check_limits(settings)
    requested = item.collection if item.collection is not None else default_collection
    collection = collection_for(request, requested, services.store, must_exist=False)
    return DocumentInput(text=item.text, doc_id=item.doc_id, title=item.title, metadata=item.metadata,
                         collection=collection)


def _describe(errors: Any) -> str:
    """Pydantic's errors as one line: ``field: what is wrong; ...``."""
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "document"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid document"


def _raw_doc_id(raw: Any) -> str | None:
    """The doc_id an item that could not be read names, if any (to help find it)."""
    doc_id = raw.get("doc_id") if isinstance(raw, dict) else None
    return doc_id if isinstance(doc_id, str) else None


def _failed(index: int, status: int, code: str, message: str, doc_id: str | None,
            collection: str | None = None) -> BatchItemOut:
    return BatchItemOut(index=index, status="error", http_status=status, doc_id=doc_id, collection=collection,
                        error=ErrorBody(code=code, message=message))


def _written(index: int, result: IngestResult) -> BatchItemOut:
    return BatchItemOut(index=index, status="created" if result.created else "unchanged",
                        http_status=201 if result.created else 200, collection=result.collection,
                        doc_id=result.doc_id, doc_version=result.doc_version,
                        sentence_count=result.sentence_count)
