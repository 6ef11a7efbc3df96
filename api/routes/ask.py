from __future__ import annotations

from fastapi import APIRouter, Request

from citeqa.api.deps import ServicesDep, top_k_or_default
from citeqa.api.errors import ApiError
from citeqa.api.schemas import AskIn, AskOut

router = APIRouter(tags=["answers"])


@router.post("/v1/ask", response_model=AskOut)
def ask(body: AskIn, services: ServicesDep, request: Request) -> AskOut:
    """Answer a question with citations checked against the stored text, or say the
    collection does not support an answer (status ``unsupported``)."""
    if not any(ch.isalnum() for ch in body.question):
        raise ApiError(422, "invalid_request", "question has no words to search for")
    if len(body.question) > services.settings.max_question_chars:
        raise ApiError(422, "invalid_request", f"question is longer than {services.settings.max_question_chars} characters")
    top_k = top_k_or_default(body.top_k, services)
    result = services.answerer.ask(body.question, top_k, generator=body.generator, options=body.generator_options)
    request.app.state.metrics.observe_answer(result)
    return AskOut.of(result)
