"""``GET /metrics``: Prometheus text exposition of ``app.state.metrics`` (api/observability.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

router = APIRouter(tags=["observability"])


# A plain ``def``: rendering reads the index size from SQLite, so it runs in the threadpool
# rather than on the event loop.
@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    body, content_type = request.app.state.metrics.render()
    return Response(content=body, media_type=content_type)
