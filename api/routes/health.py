"""``GET /healthz`` (the process is up) and ``GET /readyz`` (requests will be answered)."""

from __future__ import annotations

from fastapi import APIRouter

from citeqa.api.deps import ServicesIfReadyDep
from citeqa.api.errors import ApiError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesIfReadyDep) -> dict[str, object]:
    """The model is loaded and the index is open: requests will be answered."""
    if services is None:
        raise ApiError(503, "not_ready", "the model or index is still loading")
    return {"status": "ready", "model": services.embedder.name, "sentences": services.store.sentence_count()}
