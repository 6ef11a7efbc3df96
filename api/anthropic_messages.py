"""The Anthropic Messages dialect (``POST /v1/messages``): request shapes, the message
object and its server-sent events, and the one mapping from a verified answer to them.

An answer becomes text blocks the way Anthropic's API writes them with citations on: each
cited claim is a block of its own whose ``citations`` are ``char_location``s, and the text
between claims is in blocks without citations. The ``[n]`` markers of citeqa's answer are
left out of the text (each citation keeps its ``marker``), so the blocks concatenate to the
answer as a reader would read it. A ``char_location`` indexes the stored document text:
``cited_text`` is the verified quote and ``start_char_index``/``end_char_index`` are
citeqa's ``start``/``end`` (code points), so ``text[start_char_index:end_char_index] ==
cited_text`` for the document ``doc_id`` at ``doc_version``; citeqa's own fields (doc_id,
doc_version, sentence_id, support, collection, url ...) ride alongside.

``document_index``: Anthropic's index into the request's documents. A request that names
stored documents (``document`` blocks whose source is ``{"type": "file", "file_id":
<doc_id>}``) is answered from those alone, and the index is that list's; a request that
names none is answered from its collection, and the index counts the documents in the order
the answer first cites them (0, 1, ...). Documents sent as text, PDF or URL are not answered
over: citeqa answers from its store, so they are refused with how to ingest them.

Anthropic's ``top_k`` is a sampling parameter (passed to a generator that takes one); the
number of passages citeqa retrieves is the extra field ``passages``."""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from citeqa.api.conversation import DEFAULT_MODEL, AnswerEvent, Conversation, Failed, Finished, TextDelta
from citeqa.api.errors import ApiError
from citeqa.api.openai_chat import citation_url, extras
from citeqa.api.schemas import COLLECTION_DESCRIPTION, FilterIn, check_length, over_limit
from citeqa.api.settings import Settings
from citeqa.index.scope import DEFAULT_COLLECTION
from citeqa.qa.types import ChatTurn, Citation, VerifiedAnswer

log = logging.getLogger(__name__)

# The marker group citeqa renders after a cited claim: " [1][2]" (qa/citations.py).
_MARKERS = re.compile(r"[ \t]*(?:\[\d+\])+")

INGEST_HINT = (
    "citeqa answers from the documents it stores: add a document with POST /v1/documents (or /v1/documents/upload) "
    "and ask with `collection` (or the model name `citeqa@<collection>`), or name a stored document as "
    '{"type": "document", "source": {"type": "file", "file_id": "<doc_id>"}}')


# -- the request ------------------------------------------------------------------------------------


class ContentBlockIn(BaseModel):
    """A block of a message: ``text`` is read, ``document`` names stored documents; the
    other kinds (images, tool calls, a previous answer's extra fields) are accepted and
    ignored, as /v1/chat/completions ignores content parts it has no use for."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None
    source: dict[str, Any] | None = None
    title: str | None = None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["user", "assistant"]
    content: str | list[ContentBlockIn]

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(b.text or "" for b in self.content if b.type == "text")
        return self.content

    def documents(self) -> list[ContentBlockIn]:
        return [b for b in self.content if b.type == "document"] if isinstance(self.content, list) else []


class MessagesRequest(BaseModel):
    # Anthropic clients send fields citeqa has no use for (stop_sequences, metadata,
    # anthropic's own betas...): accepted and ignored. citeqa's extras come as extra_body.
    model_config = ConfigDict(extra="allow")
    model: str = Field(DEFAULT_MODEL, description=(
        "`citeqa` (the server's default generator) or a generator name, optionally followed by `@<collection>`."))
    max_tokens: int = Field(..., ge=1, description="Longest answer, in tokens (a generator that drafts with a "
                                                   "model gets it as its max_tokens).")
    messages: list[MessageIn] = Field(..., min_length=1, description=(
        "At most CITEQA_MAX_CHAT_MESSAGES (50) of CITEQA_MAX_CHAT_CHARS (20,000) characters together (system "
        "included); the last one is the question."))
    system: str | list[ContentBlockIn] | None = None
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = Field(None, description="Anthropic's sampling top_k, for a generator that takes one; the "
                                                "passages citeqa retrieves are `passages`.")
    stop_sequences: list[str] | None = Field(None, description="Accepted and ignored.")
    metadata: dict[str, Any] | None = Field(None, description="Accepted and ignored.")
    passages: int | None = Field(None, ge=1, description="citeqa: passages retrieved for the answer "
                                                         "(/v1/ask's top_k).")
    generator_options: dict[str, Any] | None = Field(None, description="citeqa: options of the generator.")
    collection: str | None = Field(None, description="citeqa: " + COLLECTION_DESCRIPTION + (
        " A model name's `@<collection>` says the same; if both are given they must agree."))
    filter: FilterIn | None = Field(None, description="citeqa: answer only from the documents that match.")

    def system_text(self) -> str:
        if isinstance(self.system, list):
            return "".join(b.text or "" for b in self.system if b.type == "text")
        return self.system or ""

    def check_limits(self, settings: Settings) -> None:
        """As /v1/chat/completions: at most max_chat_messages messages of max_chat_chars
        characters together (the system prompt counts), the last at most max_question_chars."""
        count, limit = len(self.messages), settings.max_chat_messages
        if count > limit:
            raise over_limit("messages", f"more than the limit of {limit} messages (got {count})")
        total = len(self.system_text()) + sum(len(m.text()) for m in self.messages)
        if total > settings.max_chat_chars:
            raise over_limit("messages", f"longer together than the limit of {settings.max_chat_chars} "
                                         f"characters (got {total})")
        check_length(f"messages.{count - 1}.content", self.messages[-1].text(), settings.max_question_chars)
        if self.passages is not None and self.passages > settings.max_top_k:
            raise over_limit("passages", f"must be at most {settings.max_top_k}")

    def documents(self) -> list[str]:
        """The doc_ids the request's document blocks name, in order (its document indexes);
        422 for a document sent whole, which citeqa does not answer over."""
        named = []
        for i, m in enumerate(self.messages):
            for block in m.documents():
                source = block.source or {}
                file_id = source.get("file_id")
                if source.get("type") != "file" or not isinstance(file_id, str) or not file_id:
                    kind = source.get("type", "none")
                    raise ApiError(422, "invalid_request",
                                   f"messages.{i}: a document block with a {kind!r} source is not answered over. "
                                   + INGEST_HINT)
                named.append(file_id)
        return list(dict.fromkeys(named))

    def conversation(self) -> Conversation:
        last = self.messages[-1]
        if last.role != "user":
            raise ApiError(422, "invalid_request", "the last message must be a user message with a question in it")
        history = [ChatTurn("system", self.system_text())] if self.system_text().strip() else []
        history += [ChatTurn(m.role, m.text()) for m in self.messages[:-1]]
        doc_ids, metadata = (self.filter.doc_ids, self.filter.metadata) if self.filter else (None, None)
        named = self.documents()
        if named and doc_ids is not None:
            raise over_limit("filter", "name documents either as document blocks or in filter.doc_ids, not both")
        return Conversation(self.model, last.text(), history, self.passages, self.collection,
                            named or doc_ids, metadata, self.options_for)

    def options_for(self, fields: set[str]) -> dict[str, Any]:
        """Anthropic's sampling fields the generator understands, then explicit generator_options."""
        common = {"temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
                  "max_tokens": self.max_tokens}
        options = {k: v for k, v in common.items() if v is not None and k in fields}
        return {**options, **(self.generator_options or {})}


# -- the answer as text blocks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A text block: a cited claim with its citations, or text between claims (none)."""

    text: str
    citations: tuple[Citation, ...] = ()


def text_blocks(answer: str, citations: list[Citation]) -> list[Block]:
    """The answer (with its [n] markers) as blocks without them: a block per cited claim
    (``answer[answer_start:answer_end]``, its citations in marker order) and the text
    between claims, marker groups dropped."""
    claims: dict[tuple[int, int], list[Citation]] = {}
    for c in citations:
        claims.setdefault((c.answer_start, c.answer_end), []).append(c)
    blocks: list[Block] = []
    cursor = 0
    for (start, end), cited in sorted(claims.items()):
        if start > cursor:
            blocks.append(Block(answer[cursor:start]))
        blocks.append(Block(answer[max(start, cursor):end], tuple(cited)))
        markers = _MARKERS.match(answer, end)
        cursor = markers.end() if markers else end
    if cursor < len(answer):
        blocks.append(Block(answer[cursor:]))
    return [b for b in blocks if b.text or b.citations]


@dataclass
class DocumentIndexes:
    """``document_index`` for each cited doc_id: its place among the request's documents, or
    (when it names none) the order in which the answer first cites documents."""

    named: list[str] = field(default_factory=list)
    _first_cited: dict[str, int] = field(default_factory=dict)

    def __call__(self, doc_id: str) -> int:
        if doc_id in self.named:
            return self.named.index(doc_id)
        return self._first_cited.setdefault(doc_id, len(self.named) + len(self._first_cited))


@dataclass(frozen=True)
class Place:
    """Where an answer comes from: its collection, the server's public base URL (for the
    citation URLs) and the documents the request named."""

    base_url: str
    collection: str = DEFAULT_COLLECTION
    documents: tuple[str, ...] = ()


def char_location(c: Citation, index: int, titles: dict[str, str], place: Place) -> dict[str, Any]:
    return {
        "type": "char_location", "cited_text": c.quote, "document_index": index,
        "document_title": titles.get(c.doc_id) or None, "start_char_index": c.start, "end_char_index": c.end,
        # citeqa's documents are what Anthropic's file_id names: the id a document block's file source takes.
        "file_id": c.doc_id,
        "doc_id": c.doc_id, "doc_version": c.doc_version, "sentence_id": c.sentence_id, "marker": c.marker,
        "score": c.score, "support": c.support, "origin": c.origin, "collection": place.collection,
        "url": citation_url(place.base_url, c, place.collection), "page": c.page, "end_page": c.end_page,
        "link": c.link,
    }


def block_out(block: Block, indexes: DocumentIndexes, titles: dict[str, str], place: Place) -> dict[str, Any]:
    citations = [char_location(c, indexes(c.doc_id), titles, place) for c in block.citations]
    return {"type": "text", "text": block.text, "citations": citations or None}


def message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def usage(result: VerifiedAnswer) -> dict[str, int]:
    return {"input_tokens": int(result.generation.get("prompt_tokens", 0)),
            "output_tokens": int(result.generation.get("completion_tokens", 0))}


def message(model: str, result: VerifiedAnswer, titles: dict[str, str], place: Place,
            mid: str | None = None) -> dict[str, Any]:
    """The whole answer as Anthropic's message object, citeqa's extras beside its fields."""
    indexes = DocumentIndexes(list(place.documents))
    content = [block_out(b, indexes, titles, place) for b in text_blocks(result.answer, result.citations)]
    return {"id": mid or message_id(), "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": "end_turn", "stop_sequence": None, "usage": usage(result), **extras(result)}


# -- errors -------------------------------------------------------------------------------------------

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error",
                429: "rate_limit_error", 503: "overloaded_error"}


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """Anthropic's error shape; citeqa's error ``code`` rides alongside."""
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": message,
                                       "code": code}}


# -- the answer as server-sent events -----------------------------------------------------------------


def sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"


class MessageEvents:
    """Anthropic's stream for one answer: ``opening()``, then ``format(event)`` for each of
    the answer's events. A block is sent once it is settled (every block up to the last
    cited claim; the text after it could still become part of the next claim, so it waits
    for that claim or for the end), so the blocks streamed are the whole message's blocks."""

    def __init__(self, model: str, place: Place):
        self.model, self.place = model, place
        self.id = message_id()
        self.indexes = DocumentIndexes(list(place.documents))
        self.sent: list[Block] = []
        self.citations: list[Citation] = []

    def opening(self) -> list[str]:
        start: dict[str, Any] = {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                                 "content": [], "stop_reason": None, "stop_sequence": None,
                                 "usage": {"input_tokens": 0, "output_tokens": 0}}
        return [sse({"type": "message_start", "message": start}), sse({"type": "ping"})]

    def format(self, event: AnswerEvent) -> list[str]:
        if isinstance(event, Failed):
            return [sse(error_body(event.status, event.code, event.message))]
        if isinstance(event, TextDelta):
            self.citations += event.citations
            blocks = text_blocks(event.sent, self.citations)
            cited = [i for i, b in enumerate(blocks) if b.citations]
            return self._send(blocks[:cited[-1] + 1] if cited else [], event.titles)
        return self._finish(event)

    def _finish(self, event: Finished) -> list[str]:
        result = event.result
        blocks = text_blocks(result.answer, result.citations)
        if blocks[:len(self.sent)] != self.sent:
            # The stream's text was not a prefix of the answer (qa/streaming.py stops
            # streaming then): the rest is sent, but the blocks already sent stay.
            log.warning("streamed blocks differ from the answer's; sending the rest as they are")
        lines = self._send(blocks, event.titles)
        delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                 "usage": usage(result), **extras(result)}
        return lines + [sse(delta), sse({"type": "message_stop"})]

    def _send(self, blocks: list[Block], titles: dict[str, str]) -> list[str]:
        lines = []
        for index in range(len(self.sent), len(blocks)):
            block = blocks[index]
            out = block_out(block, self.indexes, titles, self.place)
            start: dict[str, Any] = {"type": "text", "text": "", **({"citations": []} if block.citations else {})}
            lines.append(sse({"type": "content_block_start", "index": index, "content_block": start}))
            for citation in out["citations"] or []:
                lines.append(sse({"type": "content_block_delta", "index": index,
                                  "delta": {"type": "citations_delta", "citation": citation}}))
            if block.text:
                lines.append(sse({"type": "content_block_delta", "index": index,
                                  "delta": {"type": "text_delta", "text": block.text}}))
            lines.append(sse({"type": "content_block_stop", "index": index}))
            self.sent.append(block)
        return lines
