"""``/v1/keys``: list, create and revoke API keys over HTTP (the ``admin`` scope, checked by
api/security.py; an admin key is needed even when auth is off).

An admin key limited to collections administers only within them: it lists and revokes
keys limited to a subset of its own collections (any other key is "not found", as an
unknown id is), and creates only keys limited to such a subset, so a limited admin can
never mint a key that sees more than it does. The secret of a new key is in the 201
response once and is never stored or shown again.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from citeqa.api.errors import ApiError
from citeqa.api.keys import SCOPES, ApiKey, KeyStore
from citeqa.api.security import request_key

PREFIX = "/v1/keys"
MAX_KEY_COLLECTIONS = 1000
MAX_BURST = 1_000_000  # PostgreSQL keeps a burst in a 32-bit integer

router = APIRouter(prefix=PREFIX, tags=["keys"])


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo like "scope" is an error, not ignored

    name: str = Field(..., min_length=1, max_length=200, description="Who or what the key is for.")
    scopes: list[str] = Field(..., min_length=1, max_length=len(SCOPES), description=(
        "Some of read (ask, search, chat, get), write (ingest, delete), admin (keys, collections); checked "
        "literally: admin does not imply read or write."))
    collections: list[str] | None = Field(None, min_length=1, max_length=MAX_KEY_COLLECTIONS, description=(
        "Limit the key to these collections (default: every collection). A key limited to collections gets 404 "
        "for anything outside them. An admin key limited to collections must name a subset of its own."))
    rate_per_s: float | None = Field(None, ge=0, allow_inf_nan=False, description=(
        "Requests per second for this key; 0 for no limit (default: CITEQA_KEY_RATE_PER_S)."))
    burst: int | None = Field(None, ge=1, le=MAX_BURST, description="Requests saved up (default: CITEQA_KEY_BURST).")


class KeyOut(BaseModel):
    key_id: str
    name: str
    scopes: list[str]
    collections: list[str] | None = Field(description="The collections the key is limited to; null: every one.")
    rate_per_s: float | None = Field(description="null: the server's default for keys.")
    burst: int | None
    created_at: float = Field(description="Unix time.")
    revoked_at: float | None = Field(description="Unix time; null while the key is live.")

    @classmethod
    def of(cls, key: ApiKey) -> "KeyOut":
        return cls(key_id=key.key_id, name=key.name, scopes=sorted(key.scopes),
                   collections=None if key.collections is None else sorted(key.collections),
                   rate_per_s=key.rate_per_s, burst=key.burst, created_at=key.created_at, revoked_at=key.revoked_at)


class KeyCreated(KeyOut):
    secret: str = Field(description="The key itself: shown this once, never stored (only its SHA-256 is).")


class KeyList(BaseModel):
    keys: list[KeyOut]


def _store(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


def _administers(admin: ApiKey | None, key: ApiKey) -> bool:
    """Whether ``admin`` (None: auth off or a test app's own call) manages ``key``: an
    unlimited admin manages every key; a limited one those limited within its collections."""
    if admin is None or admin.collections is None:
        return True
    return key.collections is not None and key.collections <= admin.collections


# Plain ``def`` routes: the key store's calls block (SQLite, or a PostgreSQL round trip), so
# FastAPI runs them in its thread pool, off the event loop.


@router.get("", response_model=KeyList)
def list_keys(request: Request) -> KeyList:
    """Keys by creation time, revoked ones too (never a secret). A key limited to
    collections sees only the keys limited within its own collections."""
    admin = request_key(request)
    return KeyList(keys=[KeyOut.of(k) for k in _store(request).list() if _administers(admin, k)])


@router.post("", status_code=201, response_model=KeyCreated)
def create_key(body: KeyIn, request: Request) -> KeyCreated:
    """Create a key. The response holds its secret, once."""
    admin = request_key(request)
    if admin is not None and admin.collections is not None:
        outside = sorted(set(body.collections or ()) - admin.collections)
        if body.collections is None or outside:
            mine = ", ".join(sorted(admin.collections))
            what = "every collection" if body.collections is None else f"collections {', '.join(outside)}"
            raise ApiError(403, "forbidden",
                           f"this key (id {admin.key_id}) is limited to collections {mine}: it may only create keys "
                           f"limited to some of them (set \"collections\"), not a key for {what}")
    try:
        key, secret = _store(request).create(body.name, body.scopes, body.rate_per_s, body.burst,
                                             collections=body.collections)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    return KeyCreated(**KeyOut.of(key).model_dump(), secret=secret)


@router.delete("/{key_id}", status_code=204)
def revoke_key(key_id: str, request: Request) -> Response:
    """Revoke a key at once: every replica refuses it from its next request on."""
    store = _store(request)
    admin = request_key(request)
    if admin is not None and admin.collections is not None:
        # Not one of its keys: "not found", as for an unknown id (its existence is not told).
        target = next((k for k in store.list() if k.key_id == key_id), None)
        if target is None or not _administers(admin, target):
            raise ApiError(404, "not_found", f"no live key with id {key_id!r}")
    if not store.revoke(key_id):
        raise ApiError(404, "not_found", f"no live key with id {key_id!r}")
    return Response(status_code=204)
