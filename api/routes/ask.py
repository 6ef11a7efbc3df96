"""``POST /v1/ask``: a question in, an answer with verified citations out."""

from __future__ import annotations

from fastapi import APIRouter

from citeqa.api.deps import MetricsDep, ServicesDep, SettingsDep, top_k_or_default
from citeqa.api.errors import ApiError
from citeqa.api.schemas import AskIn, AskOut

router = APIRouter(tags=["answers"])


@router.post("/v1/ask", response_model=AskOut)
def ask(body: AskIn, services: ServicesDep, settings: SettingsDep, metrics: MetricsDep) -> AskOut:
    """Answer a question with citations checked against the stored text, or say the
    collection does not support an answer (status ``unsupported``)."""
    body.check_limits(settings)
    if not any(ch.isalnum() for ch in body.question):
        raise ApiError(422, "invalid_request", "question has no words to search for")
    top_k = top_k_or_default(body.top_k, settings)
    result = services.answerer.ask(body.question, top_k, generator=body.generator, options=body.generator_options)
    metrics.observe_answer(result)
    return AskOut.of(result)
