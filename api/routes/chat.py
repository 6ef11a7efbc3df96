"""``POST /v1/chat/completions`` and ``GET /v1/models``: citeqa as an OpenAI-compatible chat
model, answering whole or streamed as server-sent events (the shapes: api/openai_chat.py).
A client that goes away, streamed or not, cancels its answer (api/disconnects.py)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, AsyncIterator

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from citeqa.api import openai_chat
from citeqa.api.access import scope_for_request
from citeqa.api.deps import MetricsDep, ServicesDep, SettingsDep, top_k_or_default
from citeqa.api.disconnects import answer_unless_disconnected, client_closed_request, in_worker_thread
from citeqa.api.errors import INTERNAL_ERROR_MESSAGE, ApiError, error_body, generator_error
from citeqa.api.observability import Metrics
from citeqa.api.openai_chat import COLLECTION_MARK, DEFAULT_MODEL, ChatRequest
from citeqa.api.security import may_see, request_key
from citeqa.index.scope import DEFAULT_COLLECTION
from citeqa.index.types import Corpus
from citeqa.qa.followup import chat_context
from citeqa.qa.registry import UnknownGenerator
from citeqa.qa.streaming import AnswerStream
from citeqa.qa.types import Citation, GeneratorError

log = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])


@router.get("/v1/models")
def list_models(request: Request, services: ServicesDep) -> dict[str, Any]:
    """OpenAI-style model list: ``citeqa`` (the server's default generator), every
    generator that can answer here, and ``citeqa@<collection>`` for each other collection
    the API key may use (any generator takes ``@<collection>`` the same way)."""
    names = [DEFAULT_MODEL] + [g.name for g in services.generators.describe() if g.available]
    key = request_key(request)
    names += [f"{DEFAULT_MODEL}{COLLECTION_MARK}{c.name}" for c in services.store.collections()
              if c.name != DEFAULT_COLLECTION and may_see(key, c.name)]
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "citeqa"} for n in names]}


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatRequest, request: Request, services: ServicesDep, settings: SettingsDep,
                           metrics: MetricsDep) -> Any:
    """OpenAI-compatible chat: the last user message is the question, earlier turns are
    context. The answer carries verified ``citations`` and ``annotations``; with
    ``stream: true`` they arrive as server-sent events, each citation as soon as its claim
    is verified, and all of them again in the final chunk."""
    body.check_limits(settings)
    question, history = body.question_and_history()
    if body.messages[-1].role != "user" or not any(ch.isalnum() for ch in question):
        raise ApiError(422, "invalid_request", "the last message must be a user message with a question in it")
    top_k = top_k_or_default(body.top_k, settings)
    generator_model, collection = body.generator_and_collection()
    name = None if generator_model == DEFAULT_MODEL else generator_model
    try:
        generator = services.generators.instance(name or services.generators.default)
    except UnknownGenerator:
        # In chat an unknown generator is an unknown model: OpenAI's 404, listing the models.
        listed = await anyio.to_thread.run_sync(list_models, request, services)  # reads the collections
        models = ", ".join(m["id"] for m in listed["data"])
        raise ApiError(404, "model_not_found", f"model {body.model!r} does not exist; models: {models}") from None
    options = body.options_for(set(generator.Options.model_fields))
    # A store query (does the collection exist?): off the event loop, like the rest.
    scope = await anyio.to_thread.run_sync(
        lambda: scope_for_request(request, collection, services.store, *body.filter_parts))
    answerer = services.answerer_for(scope)
    context = chat_context(question, history)
    base_url = settings.public_url()  # never the Host header: a client may name any host
    model = body.model
    # Wrong names and options raise here, as JSON errors, before anything is generated.
    stream = await anyio.to_thread.run_sync(
        lambda: answerer.stream(question, top_k, history, name, options, context))
    if not body.stream:
        result = await answer_unless_disconnected(request, stream)
        if result is None:
            return client_closed_request()
        metrics.observe_answer(result)
        titles = await anyio.to_thread.run_sync(_titles, answerer.store, result.citations)
        return openai_chat.completion(model, result, base_url, titles, scope.collection)
    return StreamingResponse(_events(stream, answerer.store, scope.collection, model, base_url, metrics),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _events(stream: AnswerStream, corpus: Corpus, collection: str, model: str, base_url: str,
                  metrics: Metrics) -> AsyncIterator[str]:
    cid, created = openai_chat.completion_id(), int(time.time())
    titles: dict[str, str] = {}
    sent = ""
    events = 0
    finished = False
    try:
        yield _sse(openai_chat.chunk(cid, model, created, {"role": "assistant", "content": ""}))
        events += 1
        # A client that leaves cancels this generator at an await (in_worker_thread then
        # cancels the stream) or at a yield (the finally below does).
        while (delta := await in_worker_thread(stream.next_delta, stream)) is not None:
            sent += delta.text
            piece: dict[str, Any] = {"content": delta.text}
            if delta.citations:
                titles.update(await anyio.to_thread.run_sync(_titles, corpus, delta.citations))
                piece["citations"] = openai_chat.citations_out(delta.citations, collection)
                piece["annotations"] = openai_chat.url_annotations(sent, delta.citations, base_url, titles,
                                                                   collection)
            yield _sse(openai_chat.chunk(cid, model, created, piece))
            events += 1
        result = stream.result
        if result is None:  # AnswerStream sets it once its deltas are exhausted
            raise RuntimeError("the answer stream ended without a result")
        metrics.observe_answer(result)
        if not sent and result.answer:  # nothing streamed: the "no answer" sentence
            yield _sse(openai_chat.chunk(cid, model, created, {"content": result.answer}))
        titles.update(await anyio.to_thread.run_sync(_titles, corpus, result.citations))
        yield _sse(openai_chat.chunk(
            cid, model, created, {}, "stop", answer=result.answer,
            citations=openai_chat.citations_out(result.citations, collection),
            annotations=openai_chat.url_annotations(result.answer, result.citations, base_url, titles, collection),
            usage=openai_chat.usage(result), **openai_chat.extras(result)))
        yield "data: [DONE]\n\n"
        finished = True
    except GeneratorError as exc:
        # Too late for an HTTP status: the error event carries the one it would have had.
        error = generator_error(exc)
        yield _sse(error_body(error.code, error.message, status=error.status))
        yield "data: [DONE]\n\n"
        finished = True
    except Exception:
        log.exception("chat stream failed")
        yield _sse(error_body("internal_error", INTERNAL_ERROR_MESSAGE))
        yield "data: [DONE]\n\n"
        finished = True
    finally:
        stream.cancel()  # at once, before waiting for a worker thread: a queued answer must not start
        if not finished:
            log.info("client disconnected: answer cancelled after %d events", events,
                     extra={"disconnected": True, "events_sent": events})
        # Shielded: the close must happen even though this generator is being cancelled.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(stream.close)


def _titles(corpus: Corpus, citations: list[Citation]) -> dict[str, str]:
    """Titles of the cited documents, read through the request's scope (its collection)."""
    out = {}
    for c in citations:
        if c.doc_id not in out:
            doc = corpus.document(c.doc_id, c.doc_version)
            out[c.doc_id] = doc.title if doc else ""
    return out
