"""The client side of citeqa's own HTTP API: what ``citeqa ingest|ask --url`` and the tools
(bench, stress, eval) send to a running server, and how they read its errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from citeqa.index.scope import DEFAULT_COLLECTION

if TYPE_CHECKING:  # the CLI's --help must not pay for these
    import httpx

    from citeqa.index.ingest import DocumentInput


class ApiError(RuntimeError):
    """The server answered a request with an error status."""

    def __init__(self, method: str, path: str, status: int, message: str):
        super().__init__(f"{method} {path} -> {status}: {message}")
        self.status = status
        self.message = message


def document_payload(item: DocumentInput) -> dict[str, Any]:
    """The JSON body of ``POST /v1/documents`` for one document; ``collection`` only when it
    is not ``default`` (so the body a server from before collections knows is unchanged)."""
    payload = {"doc_id": item.doc_id, "title": item.title, "text": item.text, "metadata": item.metadata}
    return {**payload, **({} if item.collection == DEFAULT_COLLECTION else collection_field(item.collection))}


def collection_field(collection: str | None) -> dict[str, str]:
    """``{"collection": name}`` for a request body, form or query; {} for None, which lets
    the server choose (``default``, or the API key's only collection) and is what a server
    from before collections expects."""
    return {} if collection is None else {"collection": collection}


def document_path(doc_id: str) -> str:
    """``/v1/documents/{doc_id}``, the id quoted (it may hold ``/``, ``?`` or spaces)."""
    return f"/v1/documents/{quote(doc_id, safe='')}"


def error_message(response: httpx.Response) -> str:
    """What an error response says: the API's ``{"error": {"message"}}``, else the start of
    the body (a proxy's HTML page, say)."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, LookupError, TypeError):
        return response.text[:200]


def post_json(client: httpx.Client, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST ``payload`` and return the JSON answer; ApiError for a 4xx or 5xx."""
    response = client.post(path, json=payload)
    if response.status_code >= 400:
        raise ApiError("POST", path, response.status_code, error_message(response))
    body: dict[str, Any] = response.json()
    return body


BATCH_PATH = "/v1/documents:batch"


def post_batch(client: httpx.Client, payloads: list[dict[str, Any]],
               collection: str | None = None) -> list[dict[str, Any]]:
    """POST documents (``document_payload`` bodies) to ``/v1/documents:batch``: one answer per
    document, in order, each with ``status`` created, unchanged or error (then ``http_status``
    and ``error.message`` say why). ``collection`` applies to the documents that name none.
    ApiError when the request as a whole fails: 413 for too many documents or bytes at once,
    404 or 405 from a server older than the batch route."""
    response = client.post(BATCH_PATH, json={"documents": payloads, **collection_field(collection)})
    if response.status_code >= 400:
        raise ApiError("POST", BATCH_PATH, response.status_code, error_message(response))
    try:
        answers = response.json()["documents"]
    except (ValueError, LookupError, TypeError):
        answers = None
    if not isinstance(answers, list) or len(answers) != len(payloads):
        raise ApiError("POST", BATCH_PATH, response.status_code, "not a batch answer: " + response.text[:200])
    return answers


def document_text(client: httpx.Client, doc_id: str, version: str, collection: str | None = None) -> str | None:
    """The text of one version of a document (of ``collection``), or None if the server has
    no such version."""
    response = client.get(document_path(doc_id), params={"version": version, **collection_field(collection)})
    return str(response.json()["text"]) if response.status_code == 200 else None


def upload_file(client: httpx.Client, data: bytes, filename: str, *, doc_id: str | None = None, title: str = "",
                metadata: dict[str, Any] | None = None, collection: str | None = None,
                path: str = "/v1/documents") -> dict[str, Any]:
    """Upload a file as ``multipart/form-data`` (field ``file``, and ``doc_id``, ``title``,
    ``metadata`` as JSON, ``collection``); the server finds its type in the bytes (the
    name's extension decides only whether text is Markdown) and extracts it. ApiError for a
    4xx or 5xx."""
    form = {"doc_id": doc_id, "title": title or None, "metadata": json.dumps(metadata) if metadata else None,
            **collection_field(collection)}
    response = client.post(path, files={"file": (filename, data, "application/octet-stream")},
                           data={k: v for k, v in form.items() if v is not None})
    if response.status_code >= 400:
        raise ApiError("POST", path, response.status_code, error_message(response))
    body: dict[str, Any] = response.json()
    return body
