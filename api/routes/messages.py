"""``POST /v1/messages``: citeqa as Anthropic's Messages API with citations on, whole or
streamed as Anthropic's server-sent events (the shapes: api/anthropic_messages.py; what
every chat dialect shares: api/conversation.py). Errors leave in Anthropic's shape,
``{"type": "error", "error": {"type", "message"}}``, with citeqa's ``code`` alongside (so the
body is citeqa's ``{"error": {"code", "message"}}`` too, as the OpenAPI schema documents it)
and the status the rest of the API would give. Middlewares answer before any route (a
missing key's 401, a rate limit's 429): those bodies are citeqa's alone; the client raises
the same typed exception from the status either way."""

from __future__ import annotations

import json
from typing import Any, Callable, Coroutine

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute

from citeqa.api import anthropic_messages
from citeqa.api.anthropic_messages import MessageEvents, MessagesRequest, Place
from citeqa.api.conversation import formatted, start_answer, whole_answer
from citeqa.api.deps import MetricsDep, ServicesDep, SettingsDep
from citeqa.api.disconnects import client_closed_request


class AnthropicErrors(APIRoute):
    """Errors of this route in Anthropic's shape: the app's own handler (api/errors.py)
    decides status, code and message, as for every route; only the body is re-shaped.
    An exception no handler knows still reaches the app's (a logged 500)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as exc:
                handler = _handler_for(request, exc)
                if handler is None:
                    raise
                return _reshaped(await handler(request, exc))

        return route


def _handler_for(request: Request, exc: Exception) -> Callable[..., Any] | None:
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None


def _reshaped(response: Response) -> Response:
    error = json.loads(bytes(response.body))["error"]
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    return JSONResponse(anthropic_messages.error_body(response.status_code, error["code"], error["message"]),
                        status_code=response.status_code, headers=headers)


router = APIRouter(tags=["chat"], route_class=AnthropicErrors)


@router.post("/v1/messages")
async def messages(body: MessagesRequest, request: Request, services: ServicesDep, settings: SettingsDep,
                   metrics: MetricsDep) -> Any:
    """Anthropic-compatible messages: the last user message is the question, earlier turns
    and ``system`` are context. Each cited claim is a text block whose ``citations`` are
    ``char_location``s into the stored document text (``cited_text`` is the verified quote),
    with citeqa's fields alongside; with ``stream: true`` they arrive as ``citations_delta``
    events, each block as soon as its claim is verified. The ``anthropic-version`` header
    is accepted and ignored; the API key may come as ``x-api-key``."""
    body.check_limits(settings)
    conversation = body.conversation()
    answer = await start_answer(conversation, request, services, settings)
    place = Place(answer.base_url, answer.collection, tuple(body.documents()))
    if not body.stream:
        whole = await whole_answer(answer, request, metrics)
        if whole is None:
            return client_closed_request()
        result, titles = whole
        return anthropic_messages.message(answer.model, result, titles, place)
    events = MessageEvents(answer.model, place)
    return StreamingResponse(formatted(answer, metrics, events.format, opening=events.opening()),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
