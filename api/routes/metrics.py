"""``GET /metrics``: Prometheus text exposition of this app's metrics (api/observability.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from citeqa.api.deps import MetricsDep

router = APIRouter(tags=["observability"])


# A plain ``def``: rendering reads the index size from SQLite, so it runs in the threadpool
# rather than on the event loop.
@router.get("/metrics", include_in_schema=False)
def scrape(metrics: MetricsDep) -> Response:
    body, content_type = metrics.render()
    return Response(content=body, media_type=content_type)
