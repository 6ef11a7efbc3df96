from __future__ import annotations

from fastapi import APIRouter, Request

from citeqa.api.errors import ApiError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> dict[str, object]:
    """The model is loaded and the index is open: requests will be answered."""
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise ApiError(503, "not_ready", "the model or index is still loading")
    return {"status": "ready", "model": services.embedder.name, "sentences": services.store.sentence_count()}
