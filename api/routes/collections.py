"""``/v1/collections``: list, create and delete collections (creating and deleting need
the ``admin`` scope: api/security.py).

An API key limited to collections sees only those: the list leaves the others out, and
any other name answers 404 ``collection 'x' not found``, whether it exists or not, so a
limited key learns nothing of the rest. ``default`` always exists: deleting it empties it.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from citeqa.api.access import not_found, valid_name
from citeqa.api.deps import ServicesDep
from citeqa.api.errors import ApiError
from citeqa.api.schemas import CollectionDeleted, CollectionIn, CollectionList, CollectionOut
from citeqa.api.security import may_see, request_key
from citeqa.index.scope import DEFAULT_COLLECTION
from citeqa.index.types import DocumentStore

PREFIX = "/v1/collections"

router = APIRouter(prefix=PREFIX, tags=["collections"])


def _visible(request: Request, name: str) -> str:
    """``name`` if it is valid and the request's key may use it; 422 / 404 otherwise."""
    name = valid_name(name)
    if not may_see(request_key(request), name):
        raise not_found(name)
    return name


def _described(store: DocumentStore, name: str) -> CollectionOut:
    found = next((c for c in store.collections() if c.name == name), None)
    if found is None:  # deleted meanwhile
        raise not_found(name)
    return CollectionOut.of(found)


@router.get("", response_model=CollectionList)
def list_collections(request: Request, services: ServicesDep) -> CollectionList:
    """Every collection the API key may use, by name, with its count of live documents."""
    key = request_key(request)
    return CollectionList(collections=[CollectionOut.of(c) for c in services.store.collections()
                                       if may_see(key, c.name)])


@router.post("", status_code=201, response_model=CollectionOut)
def create_collection(body: CollectionIn, request: Request, services: ServicesDep) -> CollectionOut:
    """Create an empty collection (ingesting into a missing one creates it too); 409 if it
    exists. A key limited to collections creates only those it lists."""
    name = _visible(request, body.name)
    if not services.store.create_collection(name):
        raise ApiError(409, "conflict", f"collection {name!r} already exists")
    return _described(services.store, name)


@router.delete("/{name}", response_model=CollectionDeleted)
async def delete_collection(
    name: str, request: Request, services: ServicesDep,
    force: bool = Query(False, description="Delete it even though it holds live documents."),
) -> CollectionDeleted:
    """Delete a collection and take its documents out of search and listings (their
    versions stay readable by version, as after deleting a document). 409 while it holds
    live documents, unless ``?force=true``. ``default`` always exists: deleting it empties it."""
    name = _visible(request, name)
    return await run_in_threadpool(_delete, services.store, name, force)


def _delete(store: DocumentStore, name: str, force: bool) -> CollectionDeleted:
    if not store.has_collection(name):
        raise not_found(name)
    live = store.list_documents(1, 0, name).total
    if live and not force:
        raise ApiError(409, "conflict", f"collection {name!r} holds {live} live document(s); delete them first, "
                       "or pass ?force=true to delete the collection with them")
    try:
        removed = store.delete_collection(name)
    except KeyError:  # deleted meanwhile
        raise not_found(name) from None
    kept = name == DEFAULT_COLLECTION
    message = (f"collection {name!r} emptied ({removed} document(s) removed); it always exists, so it was kept"
               if kept else f"collection {name!r} deleted ({removed} document(s) removed)")
    return CollectionDeleted(name=name, documents_removed=removed, kept=kept, message=message)
