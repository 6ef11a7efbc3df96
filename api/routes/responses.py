"""``POST /v1/responses`` (OpenAI's Responses API), ``GET`` and ``DELETE /v1/responses/{id}``:
citeqa as a Responses model, answering whole or streamed (the shapes: api/openai_responses.py;
what every chat dialect shares: api/conversation.py). A client that goes away, streamed or
not, cancels its answer.

Responses are kept so that a follow-up can name its ``previous_response_id`` (and a client
can read one again): in this process's memory, the most recent ``CITEQA_MAX_KEPT_RESPONSES`` (1,000), each
with the conversation it ended (its input, the one it continued, and its answer; not its
``instructions``, which OpenAI does not carry over either). ``store: false`` keeps nothing.
Nothing survives a restart, and another replica or worker does not know them: an id it
does not keep is a 404, as one that never existed. A response is visible to the API key
that made it alone (requests without a key share theirs)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from citeqa.api.conversation import (
    AnswerEvent,
    AnswerInProgress,
    Failed,
    Finished,
    formatted,
    start_answer,
    whole_answer,
)
from citeqa.api.deps import MetricsDep, ServicesDep, SettingsDep
from citeqa.api.disconnects import client_closed_request
from citeqa.api.errors import ApiError
from citeqa.api.observability import Metrics
from citeqa.api.openai_responses import Envelope, EventWriter, ResponsesRequest, sse
from citeqa.api.security import request_key
from citeqa.qa.types import ChatTurn, VerifiedAnswer

router = APIRouter(tags=["chat"])

@dataclass(frozen=True)
class KeptResponse:
    response: dict[str, Any]
    turns: tuple[ChatTurn, ...]  # the conversation it ended, its answer last
    owner: str | None  # the id of the API key that made it


class KeptResponses:
    """The most recent responses of this process, by id (the oldest go first)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._kept: OrderedDict[str, KeptResponse] = OrderedDict()
        self._lock = threading.Lock()  # streamed answers finish in the event loop, others may read elsewhere

    def keep(self, kept: KeptResponse) -> None:
        with self._lock:
            self._kept[kept.response["id"]] = kept
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)

    def get(self, response_id: str, owner: str | None) -> KeptResponse | None:
        with self._lock:
            kept = self._kept.get(response_id)
        return kept if kept is not None and kept.owner == owner else None

    def delete(self, response_id: str, owner: str | None) -> bool:
        with self._lock:
            kept = self._kept.get(response_id)
            if kept is None or kept.owner != owner:
                return False
            del self._kept[response_id]
            return True


def kept_responses(request: Request) -> KeptResponses:
    """The app's kept responses (made with the app: each app, and each test's, has its own)."""
    kept: KeptResponses = request.app.state.kept_responses
    return kept


def _owner(request: Request) -> str | None:
    key = request_key(request)
    return key.key_id if key is not None else None


def _not_kept(response_id: str, capacity: int) -> ApiError:
    return ApiError(404, "response_not_found", f"response {response_id!r} not found: this server keeps the most "
                    f"recent {capacity} responses made with store true, in memory, by the API key that made them")


@router.post("/v1/responses")
async def create_response(body: ResponsesRequest, request: Request, services: ServicesDep, settings: SettingsDep,
                          metrics: MetricsDep) -> Any:
    """OpenAI Responses API: ``input`` (the question, or messages whose last is the user's)
    is answered from the collection. The ``output_text`` carries one ``url_citation``
    annotation per verified citation, with citeqa's citation fields (quote, doc_id,
    doc_version, start, end, sentence_id, support ...) in the same object; with
    ``stream: true`` they arrive as Responses events, each annotation as soon as its claim
    is verified. ``previous_response_id`` continues a kept conversation."""
    body.refuse_unsupported()
    kept, owner = kept_responses(request), _owner(request)
    earlier: tuple[ChatTurn, ...] = ()
    if body.previous_response_id is not None:
        previous = kept.get(body.previous_response_id, owner)
        if previous is None:
            error = _not_kept(body.previous_response_id, kept.capacity)
            raise ApiError(404, "previous_response_not_found", f"previous_response_id: {error.message}")
        earlier = previous.turns
    continued = body.check_limits(settings, earlier)
    answer = await start_answer(body.conversation(continued), request, services, settings)
    envelope = Envelope.of(body, answer.model)

    def keep(response: dict[str, Any], result: VerifiedAnswer) -> None:
        if body.store:
            turns = (*continued, *body.turns(), ChatTurn("assistant", result.answer))
            kept.keep(KeptResponse(response, turns, owner))

    if not body.stream:
        whole = await whole_answer(answer, request, metrics)
        if whole is None:
            return client_closed_request()
        result, titles = whole
        response = envelope.completed(result, answer.base_url, titles, answer.collection)
        keep(response, result)
        return response
    return StreamingResponse(_events(answer, metrics, envelope, keep), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/v1/responses/{response_id}")
async def get_response(response_id: str, request: Request) -> dict[str, Any]:
    """A kept response, as it was returned (404 once it is no longer kept)."""
    responses = kept_responses(request)
    kept = responses.get(response_id, _owner(request))
    if kept is None:
        raise _not_kept(response_id, responses.capacity)
    return kept.response


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, request: Request) -> dict[str, Any]:
    """Forget a kept response (a follow-up can no longer continue it)."""
    responses = kept_responses(request)
    if not responses.delete(response_id, _owner(request)):
        raise _not_kept(response_id, responses.capacity)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


def _events(answer: AnswerInProgress, metrics: Metrics, envelope: Envelope,
            keep: Callable[[dict[str, Any], VerifiedAnswer], None]) -> AsyncIterator[str]:
    writer = EventWriter(envelope, answer.base_url, answer.collection)

    def format_event(event: AnswerEvent) -> list[str]:
        if isinstance(event, Failed):
            return [sse(e) for e in writer.failed(event.status, event.code, event.message)]
        if isinstance(event, Finished):
            events, whole = writer.finished(event.result, event.titles)
            keep(whole, event.result)  # before response.completed: a follow-up may come at once
            return [sse(e) for e in events]
        return [sse(e) for e in writer.text(event.text, event.sent, event.citations, event.titles)]

    return formatted(answer, metrics, format_event, opening=[sse(e) for e in writer.opening()])
