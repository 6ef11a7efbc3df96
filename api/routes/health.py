"""``GET /healthz`` (the process is up) and ``GET /readyz`` (requests will be answered)."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from citeqa.api.deps import ServicesIfReadyDep
from citeqa.api.errors import ApiError

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

_MAX_REASON_CHARS = 200


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesIfReadyDep) -> dict[str, object]:
    """The model is loaded and the store answers a real query: requests will be answered."""
    if services is None:
        raise ApiError(503, "not_ready", "the model or index is still loading")
    try:
        # A query, not a flag: a store that cannot open a connection (files, a server) fails here.
        sentences = services.store.sentence_count()
    except Exception as exc:  # noqa: BLE001 - whatever the store raises, it cannot answer
        log.warning("readiness check: the store cannot answer", exc_info=True)
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:_MAX_REASON_CHARS]
        raise ApiError(503, "store_unavailable", f"the store cannot answer queries ({reason})") from exc
    return {"status": "ready", "model": services.embedder.name, "sentences": sentences}
