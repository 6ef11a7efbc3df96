"""``POST /v1/search``: the best-matching sentences, with their exact spans."""

from __future__ import annotations

import time

from fastapi import APIRouter

from citeqa.api.deps import ServicesDep, SettingsDep, top_k_or_default
from citeqa.api.schemas import HitOut, SearchIn, SearchOut

router = APIRouter(tags=["answers"])


@router.post("/v1/search", response_model=SearchOut)
def search(body: SearchIn, services: ServicesDep, settings: SettingsDep) -> SearchOut:
    """The sentences that best answer a query, ranked as /v1/ask ranks them (dense + BM25
    candidates, reordered by the reranker); ``score`` is the probability of answering."""
    body.check_limits(settings)
    top_k = top_k_or_default(body.top_k, settings)
    start = time.perf_counter()
    hits = services.answerer.search(body.query, top_k)
    took = round((time.perf_counter() - start) * 1000, 2)
    return SearchOut(hits=[HitOut.of(h) for h in hits], timings_ms={"total": took})
