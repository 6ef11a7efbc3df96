"""What every chat dialect shares (OpenAI chat completions, OpenAI responses, Anthropic
messages): turning a request's model name, collection, filter and question into an answer
that is being made, and reading that answer as plain events that each dialect only has to
format. The dialects differ in their shapes alone; scope, generator choice, cancellation
when the client leaves, and error handling are decided here once.

A model name is ``citeqa`` (the server's default generator) or a generator's name, either
optionally followed by ``@<collection>``: the one way a plain client, which sends nothing
but a model name, can pick a collection."""

from __future__ import annotations

import logging
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence

import anyio
from fastapi import Request

from citeqa.api.access import scope_for_request
from citeqa.api.deps import top_k_or_default
from citeqa.api.disconnects import answer_unless_disconnected, in_worker_thread
from citeqa.api.errors import INTERNAL_ERROR_MESSAGE, ApiError, generator_error
from citeqa.api.observability import Metrics
from citeqa.api.schemas import over_limit
from citeqa.api.security import may_see, request_key
from citeqa.api.services import Services
from citeqa.api.settings import Settings
from citeqa.index.scope import DEFAULT_COLLECTION
from citeqa.index.types import Corpus
from citeqa.qa.followup import chat_context
from citeqa.qa.registry import UnknownGenerator
from citeqa.qa.streaming import AnswerStream
from citeqa.qa.types import ChatTurn, Citation, GeneratorError, VerifiedAnswer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "citeqa"
COLLECTION_MARK = "@"


def split_model(model: str, collection: str | None) -> tuple[str, str | None]:
    """The generator model a model name names, and the collection it and a request's own
    ``collection`` field name (None: neither does); 422 when they disagree."""
    name, mark, named = model.partition(COLLECTION_MARK)
    wanted = named if mark else None
    if wanted is not None and collection is not None and wanted != collection:
        raise over_limit("collection", f"the model name asks for collection {wanted!r} but collection is "
                         f"{collection!r}; name one, or the same in both")
    return name, wanted if wanted is not None else collection


def model_names(request: Request, services: Services) -> list[str]:
    """The model names a caller may use: ``citeqa``, every generator that can answer here,
    and ``citeqa@<collection>`` for each other collection its key may see."""
    names = [DEFAULT_MODEL] + [g.name for g in services.generators.describe() if g.available]
    key = request_key(request)
    names += [f"{DEFAULT_MODEL}{COLLECTION_MARK}{c.name}" for c in services.store.collections()
              if c.name != DEFAULT_COLLECTION and may_see(key, c.name)]
    return names


@dataclass(frozen=True)
class Conversation:
    """One question of a chat, in any dialect."""

    model: str
    question: str
    history: list[ChatTurn]
    top_k: int | None = None
    collection: str | None = None
    doc_ids: Sequence[Any] | None = None
    metadata: Mapping[str, Any] | None = None
    # The generator's options, from the names of the options it understands.
    options_for: Callable[[set[str]], dict[str, Any]] = field(default=lambda fields: {})


@dataclass(frozen=True)
class AnswerInProgress:
    """An answer being made for one request: read it whole (:meth:`whole`) or as events
    (:func:`answer_events`). ``corpus`` is the request's scope: titles and documents read
    through it stay inside its collection."""

    stream: AnswerStream
    corpus: Corpus
    collection: str
    model: str
    base_url: str


async def start_answer(conversation: Conversation, request: Request, services: Services,
                       settings: Settings) -> AnswerInProgress:
    """Resolves generator, collection and filter (404 for an unknown model or a collection
    the caller may not see, 422 for a bad filter or generator option) and starts the answer.
    Every error is raised here, as JSON, before anything is generated."""
    if not any(ch.isalnum() for ch in conversation.question):
        raise ApiError(422, "invalid_request", "the last message must be a user message with a question in it")
    top_k = top_k_or_default(conversation.top_k, settings)
    generator_model, collection = split_model(conversation.model, conversation.collection)
    name = None if generator_model == DEFAULT_MODEL else generator_model
    try:
        generator = services.generators.instance(name or services.generators.default)
    except UnknownGenerator:
        # In chat an unknown generator is an unknown model: OpenAI's 404, listing the models.
        listed = await anyio.to_thread.run_sync(model_names, request, services)  # reads the collections
        raise ApiError(404, "model_not_found",
                       f"model {conversation.model!r} does not exist; models: {', '.join(listed)}") from None
    options = conversation.options_for(set(generator.Options.model_fields))
    # A store query (does the collection exist?): off the event loop, like the rest.
    scope = await anyio.to_thread.run_sync(
        lambda: scope_for_request(request, collection, services.store, conversation.doc_ids, conversation.metadata))
    answerer = services.answerer_for(scope)
    question, history = conversation.question, conversation.history
    context = chat_context(question, history)
    stream = await anyio.to_thread.run_sync(
        lambda: answerer.stream(question, top_k, history, name, options, context))
    return AnswerInProgress(stream, answerer.store, scope.collection, conversation.model,
                            settings.public_url())  # never the Host header: a client may name any host


async def whole_answer(answer: AnswerInProgress, request: Request,
                       metrics: Metrics) -> tuple[VerifiedAnswer, dict[str, str]] | None:
    """The whole answer and the titles of its cited documents; None if the client left."""
    result = await answer_unless_disconnected(request, answer.stream)
    if result is None:
        return None
    metrics.observe_answer(result)
    return result, await anyio.to_thread.run_sync(titles, answer.corpus, result.citations)


@dataclass(frozen=True)
class TextDelta:
    """More of the answer's text, with the verified citations whose markers it holds.
    ``sent`` is the whole text sent so far, this delta included; ``titles`` covers every
    document cited so far."""

    text: str
    citations: list[Citation]
    sent: str
    titles: dict[str, str]


@dataclass(frozen=True)
class Finished:
    """The end: the whole answer (equal to the non-streamed one). ``unsent`` is text the
    stream never carried (the "no answer" sentence of an answer with nothing verified),
    which a dialect sends as one last delta."""

    result: VerifiedAnswer
    unsent: str
    titles: dict[str, str]


@dataclass(frozen=True)
class Failed:
    """Too late for an HTTP status: the error event carries the one it would have had."""

    status: int
    code: str
    message: str


AnswerEvent = TextDelta | Finished | Failed


async def answer_events(answer: AnswerInProgress, metrics: Metrics) -> AsyncGenerator[AnswerEvent, None]:
    """The answer as events: text deltas, then Finished or Failed. A client that leaves
    cancels the answer: at an await (in_worker_thread cancels the stream) or when the
    consumer closes this generator (use ``contextlib.aclosing``; the finally cancels)."""
    stream, corpus = answer.stream, answer.corpus
    known: dict[str, str] = {}
    sent = ""
    events = 0
    finished = False
    try:
        while (delta := await in_worker_thread(stream.next_delta, stream)) is not None:
            sent += delta.text
            if delta.citations:
                known.update(await anyio.to_thread.run_sync(titles, corpus, delta.citations))
            yield TextDelta(delta.text, delta.citations, sent, dict(known))
            events += 1
        result = stream.result
        if result is None:  # AnswerStream sets it once its deltas are exhausted
            raise RuntimeError("the answer stream ended without a result")
        metrics.observe_answer(result)
        known.update(await anyio.to_thread.run_sync(titles, corpus, result.citations))
        finished = True
        yield Finished(result, result.answer if not sent else "", known)
    except GeneratorError as exc:
        error = generator_error(exc)
        finished = True
        yield Failed(error.status, error.code, error.message)
    except Exception:
        log.exception("chat stream failed")
        finished = True
        yield Failed(500, "internal_error", INTERNAL_ERROR_MESSAGE)
    finally:
        stream.cancel()  # at once, before waiting for a worker thread: a queued answer must not start
        if not finished:
            log.info("client disconnected: answer cancelled after %d events", events,
                     extra={"disconnected": True, "events_sent": events})
        # Shielded: the close must happen even though this generator is being cancelled.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(stream.close)


async def formatted(answer: AnswerInProgress, metrics: Metrics,
                    format_event: Callable[[AnswerEvent], list[str]],
                    opening: Sequence[str] = (), closing: Sequence[str] = ()) -> AsyncIterator[str]:
    """A dialect's server-sent events: ``opening``, each event as ``format_event`` writes
    it, then ``closing`` (after a failure too). Leaving early closes the answer's events."""
    for line in opening:
        yield line
    async with aclosing(answer_events(answer, metrics)) as events:
        async for event in events:
            for line in format_event(event):
                yield line
    for line in closing:
        yield line


def titles(corpus: Corpus, citations: list[Citation]) -> dict[str, str]:
    """Titles of the cited documents, read through the request's scope (its collection)."""
    out = {}
    for c in citations:
        if c.doc_id not in out:
            doc = corpus.document(c.doc_id, c.doc_version)
            out[c.doc_id] = doc.title if doc else ""
    return out
