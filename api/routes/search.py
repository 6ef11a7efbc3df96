"""``POST /v1/search``: the best-matching sentences, with their exact spans."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from citeqa.api.access import scope_for_request
from citeqa.api.deps import ServicesDep, SettingsDep, top_k_or_default
from citeqa.api.schemas import HitOut, SearchIn, SearchOut
from citeqa.qa.anchors import Anchors

router = APIRouter(tags=["answers"])


@router.post("/v1/search", response_model=SearchOut)
def search(body: SearchIn, request: Request, services: ServicesDep, settings: SettingsDep) -> SearchOut:
    """The sentences that best answer a query, ranked as /v1/ask ranks them (dense + BM25
    candidates, reordered by the reranker); ``score`` is the probability of answering.
    Hits come from one collection (``collection``) and the documents ``filter`` admits.
    PDF hits say their page; hits in a document with a URL link to the sentence in it."""
    body.check_limits(settings)
    top_k = top_k_or_default(body.top_k, settings)
    start = time.perf_counter()
    scope = scope_for_request(request, body.collection, services.store, *body.filter_parts)
    answerer = services.answerer_for(scope)
    hits = answerer.search(body.query, top_k)
    anchors = Anchors(answerer.store)  # each hit's document read once per request, in the scope's collection
    out = []
    for h in hits:
        s = h.sentence
        where = anchors.of(s.doc_id, s.doc_version, s.start, s.end, s.text)
        out.append(HitOut.of(h).model_copy(update={"page": where.page, "end_page": where.end_page,
                                                     "link": where.link}))
    took = round((time.perf_counter() - start) * 1000, 2)
    return SearchOut(hits=out, timings_ms={"total": took})
