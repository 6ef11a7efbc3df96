"""``POST /v1/chat/completions`` and ``GET /v1/models``: citeqa as an OpenAI-compatible chat
model, answering whole or streamed as server-sent events (the shapes: api/openai_chat.py;
what every chat dialect shares: api/conversation.py). A client that goes away, streamed or
not, cancels its answer (api/disconnects.py)."""

from __future__ import annotations

import json
import time
from typing import Any, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from citeqa.api import openai_chat
from citeqa.api.conversation import (
    AnswerEvent,
    AnswerInProgress,
    Failed,
    Finished,
    formatted,
    model_names,
    start_answer,
    whole_answer,
)
from citeqa.api.deps import MetricsDep, ServicesDep, SettingsDep
from citeqa.api.disconnects import client_closed_request
from citeqa.api.errors import error_body
from citeqa.api.observability import Metrics
from citeqa.api.openai_chat import ChatRequest

router = APIRouter(tags=["chat"])


@router.get("/v1/models")
def list_models(request: Request, services: ServicesDep) -> dict[str, Any]:
    """OpenAI-style model list: ``citeqa`` (the server's default generator), every
    generator that can answer here, and ``citeqa@<collection>`` for each other collection
    the API key may use (any generator takes ``@<collection>`` the same way)."""
    names = model_names(request, services)
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "citeqa"} for n in names]}


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request, services: ServicesDep, settings: SettingsDep,
                           metrics: MetricsDep) -> Any:
    """OpenAI-compatible chat: the last user message is the question, earlier turns are
    context. The answer carries verified ``citations`` and ``annotations``; with
    ``stream: true`` they arrive as server-sent events, each citation as soon as its claim
    is verified, and all of them again in the final chunk."""
    body.check_limits(settings)
    answer = await start_answer(body.conversation(), request, services, settings)
    if not body.stream:
        whole = await whole_answer(answer, request, metrics)
        if whole is None:
            return client_closed_request()
        result, titles = whole
        return openai_chat.completion(answer.model, result, answer.base_url, titles, answer.collection)
    return StreamingResponse(_events(answer, metrics), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _events(answer: AnswerInProgress, metrics: Metrics) -> AsyncIterator[str]:
    cid, created, model = openai_chat.completion_id(), int(time.time()), answer.model
    base_url, collection = answer.base_url, answer.collection

    def chunk(delta: dict[str, Any], finish: str | None = None, **top: Any) -> str:
        return _sse(openai_chat.chunk(cid, model, created, delta, finish, **top))

    def format_event(event: AnswerEvent) -> list[str]:
        if isinstance(event, Failed):
            return [_sse(error_body(event.code, event.message, status=event.status))]
        if isinstance(event, Finished):
            result = event.result
            unsent = [chunk({"content": event.unsent})] if event.unsent else []
            return unsent + [chunk(
                {}, "stop", answer=result.answer, citations=openai_chat.citations_out(result.citations, collection),
                annotations=openai_chat.url_annotations(result.answer, result.citations, base_url, event.titles,
                                                        collection),
                usage=openai_chat.usage(result), **openai_chat.extras(result))]
        piece: dict[str, Any] = {"content": event.text}
        if event.citations:
            piece["citations"] = openai_chat.citations_out(event.citations, collection)
            piece["annotations"] = openai_chat.url_annotations(event.sent, event.citations, base_url, event.titles,
                                                               collection)
        return [chunk(piece)]

    return formatted(answer, metrics, format_event, opening=[chunk({"role": "assistant", "content": ""})],
                     closing=["data: [DONE]\n\n"])
