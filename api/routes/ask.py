"""``POST /v1/ask``: a question in, an answer with verified citations out."""

from __future__ import annotations

from fastapi import APIRouter, Request

from citeqa.api.access import scope_for_request
from citeqa.api.deps import MetricsDep, ServicesDep, SettingsDep, top_k_or_default
from citeqa.api.errors import ApiError
from citeqa.api.schemas import AskIn, AskOut

router = APIRouter(tags=["answers"])


@router.post("/v1/ask", response_model=AskOut)
def ask(body: AskIn, request: Request, services: ServicesDep, settings: SettingsDep, metrics: MetricsDep) -> AskOut:
    """Answer a question with citations checked against the stored text, or say the
    collection does not support an answer (status ``unsupported``). The answer comes from
    one collection (``collection``), and only from the documents ``filter`` admits."""
    body.check_limits(settings)
    if not any(ch.isalnum() for ch in body.question):
        raise ApiError(422, "invalid_request", "question has no words to search for")
    top_k = top_k_or_default(body.top_k, settings)
    scope = scope_for_request(request, body.collection, services.store, *body.filter_parts)
    result = services.answerer_for(scope).ask(body.question, top_k, generator=body.generator,
                                              options=body.generator_options)
    metrics.observe_answer(result)
    return AskOut.of(result, scope.collection)
