"""Which collection a request reads or writes, and what it may see there.

Every request names at most one collection: a ``collection`` field (or query parameter,
or a chat model name's ``@<collection>``), else ``default`` when its key may see it, else
the key's only collection. A collection the key may not see answers exactly as one that
does not exist (404 ``collection 'x' not found``), so a limited key learns nothing about
the others, not even their names. The key and its limits come from the security
middleware (api/security.py ``request_key``/``may_see``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from starlette.requests import Request

from citeqa.api.errors import ApiError
from citeqa.api.security import may_see, request_key
from citeqa.index.scope import DEFAULT_COLLECTION, InvalidScope, Scope, check_collection, scope_from_request
from citeqa.index.types import DocumentStore


def not_found(collection: str) -> ApiError:
    """The one answer for a collection that does not exist or that the key may not see."""
    return ApiError(404, "not_found", f"collection {collection!r} not found")


def invalid(exc: InvalidScope) -> ApiError:
    return ApiError(422, "invalid_request", str(exc))


def valid_name(name: str) -> str:
    try:
        return check_collection(name)
    except InvalidScope as exc:
        raise invalid(exc) from None


def collection_for(request: Request, requested: str | None, store: DocumentStore, *, must_exist: bool = True) -> str:
    """The collection a request works in (see the module docstring); ApiError 422 for an
    invalid name or a key of several collections that names none, 404 for one the key may
    not see or (when ``must_exist``) that does not exist. Not ``must_exist``: an ingest,
    which creates it, and a read of a stored version, which outlives its collection as it
    outlives its document's delete."""
    key = request_key(request)
    if requested is None:
        if may_see(key, DEFAULT_COLLECTION):
            return DEFAULT_COLLECTION
        assert key is not None and key.collections is not None  # may_see is True otherwise
        if len(key.collections) != 1:
            raise ApiError(422, "invalid_request", "this API key may use several collections: name one with "
                           f"'collection' (one of {', '.join(sorted(key.collections))})")
        (requested,) = key.collections
    name = valid_name(requested)
    if not may_see(key, name) or (must_exist and not store.has_collection(name)):
        raise not_found(name)
    return name


def scope_for_request(request: Request, requested: str | None, store: DocumentStore,
                      doc_ids: Sequence[Any] | None = None, metadata: Mapping[str, Any] | None = None) -> Scope:
    """The Scope a search or an answer runs in: the request's collection (as
    :func:`collection_for` resolves it) and its ``filter``; 422 with what is wrong."""
    name = collection_for(request, requested, store)
    try:
        return scope_from_request(name, doc_ids, metadata)
    except InvalidScope as exc:
        raise invalid(exc) from None
