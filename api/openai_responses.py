"""The OpenAI Responses dialect (``POST /v1/responses``): the request, the response object and
its stream events, translated from and to a verified answer. This is the one place that
mapping lives; the route (api/routes/responses.py) only wires it to what every chat dialect
shares (api/conversation.py).

The answer is one ``message`` output item holding one ``output_text`` part. Its
``annotations`` hold one ``url_citation`` per citation: ``start_index``/``end_index`` cover
the citation's ``[n]`` marker in the text (the span the chat dialect annotates too; the
claim it supports is ``answer_start``/``answer_end``), ``url`` resolves to the document
version and span through the API, ``title`` is the document's. citeqa's own fields ride in
the same annotation object (``quote``, ``doc_id``, ``doc_version``, ``start``, ``end``,
``sentence_id``, ``support``, ``collection``, ``marker`` ... as in /v1/ask's citations), so
a client that keeps unknown fields (the official ``openai`` client, LangChain) hands them
to the user. The response object's own ``status`` is OpenAI's (``completed``); citeqa's
answer status is ``answer_status``, beside ``citations``, ``short_answer``,
``dropped_citations`` and ``offset_unit`` at the top level.

What citeqa cannot honour it refuses rather than answering in a shape the client did not
ask for: a ``tool_choice`` that forces a tool call, and a ``text.format`` other than plain
text (structured output), are 422. ``tools`` offered with ``tool_choice`` ``auto`` (the
default) are accepted and never called: the model is free not to call a tool. Every other
field citeqa has no use for (``reasoning``, ``include``, ``user``, ``background`` ...) is
accepted and ignored."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from citeqa.api.conversation import DEFAULT_MODEL, Conversation
from citeqa.api.errors import ApiError
from citeqa.api.openai_chat import citation_url, citations_out, extras, usage
from citeqa.api.schemas import COLLECTION_DESCRIPTION, FilterIn, check_length, over_limit
from citeqa.api.settings import Settings
from citeqa.index.scope import DEFAULT_COLLECTION
from citeqa.qa.types import ChatTurn, Citation, VerifiedAnswer

# The text of a message: what a user typed (input_text) and what the assistant said
# (output_text, in a conversation sent back whole); images, files and refusals carry none.
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
_ROLES: dict[str, Literal["system", "user", "assistant"]] = {
    "system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
# tool_choice values that leave the model free not to call a tool.
_FREE_TOOL_CHOICES = (None, "auto", "none")
_METADATA_KEYS, _METADATA_KEY_CHARS, _METADATA_VALUE_CHARS = 16, 64, 512


class InputPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class InputItem(BaseModel):
    """An item of ``input``. Messages ({role, content}, ``type`` "message" or none) are the
    conversation; other items (function calls and their outputs, reasoning, references) are
    not, and are left out."""

    model_config = ConfigDict(extra="allow")
    type: str = "message"
    role: Literal["system", "developer", "user", "assistant"] | None = None
    content: str | list[InputPart] | None = None

    @property
    def is_message(self) -> bool:
        return self.type == "message" and self.role is not None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type in _TEXT_PARTS)
        return self.content or ""


class ResponsesRequest(BaseModel):
    # OpenAI clients send fields citeqa has no use for: accepted and ignored (module docstring).
    model_config = ConfigDict(extra="allow")
    model: str = Field(DEFAULT_MODEL, description=(
        "`citeqa` (the server's default generator) or a generator name, optionally followed by `@<collection>` "
        "(`citeqa@news`), as in /v1/chat/completions."))
    input: str | list[InputItem] = Field(..., description=(
        "The question, or messages ({role, content}) whose last is the user's question. With "
        "`previous_response_id`, the conversation so far comes first. At most CITEQA_MAX_CHAT_MESSAGES (50) "
        "messages of CITEQA_MAX_CHAT_CHARS (20,000) characters together, the question at most "
        "CITEQA_MAX_QUESTION_CHARS (2,000)."))
    instructions: str | None = Field(None, description=(
        "A system message before the conversation; not carried over to a follow-up, as in OpenAI's API."))
    previous_response_id: str | None = Field(None, description=(
        "Continue the conversation of a response this server keeps (its input and answer become history)."))
    store: bool = Field(True, description=(
        "Keep this response (in this process's memory, the most recent ones) for GET /v1/responses/{id} and "
        "`previous_response_id`; false keeps nothing."))
    truncation: Literal["auto", "disabled"] | None = Field(None, description=(
        "`auto`: drop the oldest turns of a follow-up's conversation that would pass the limits; otherwise "
        "such a follow-up gets 422."))
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    top_k: int | None = Field(None, ge=1, description="citeqa: passages retrieved for the answer.")
    generator_options: dict[str, Any] | None = Field(None, description="citeqa: options of the generator.")
    collection: str | None = Field(None, description="citeqa: " + COLLECTION_DESCRIPTION + (
        " A model name's `@<collection>` says the same; if both are given they must agree."))
    filter: FilterIn | None = Field(None, description="citeqa: answer only from the documents that match.")

    @field_validator("metadata")
    @classmethod
    def _metadata_as_openai_bounds_it(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Echoed in every response and kept with it: bounded as OpenAI bounds it.
        if value is None:
            return value
        if len(value) > _METADATA_KEYS:
            raise ValueError(f"at most {_METADATA_KEYS} keys")
        for k, v in value.items():
            if len(k) > _METADATA_KEY_CHARS or not isinstance(v, str) or len(v) > _METADATA_VALUE_CHARS:
                raise ValueError(f"keys of at most {_METADATA_KEY_CHARS} characters with string values of at "
                                 f"most {_METADATA_VALUE_CHARS}")
        return value

    def items(self) -> list[InputItem]:
        if isinstance(self.input, str):
            return [InputItem(role="user", content=self.input)]
        return list(self.input)

    def turns(self) -> list[ChatTurn]:
        """The conversation this request sends (instructions not included)."""
        return [ChatTurn(_ROLES[m.role], m.text()) for m in self.items() if m.is_message and m.role]

    def refuse_unsupported(self) -> None:
        """422 for what citeqa cannot do and a client relies on (module docstring)."""
        if self.tool_choice not in _FREE_TOOL_CHOICES:
            raise ApiError(422, "invalid_request", "citeqa answers from its documents and calls no tools: "
                           "tool_choice may only be 'auto' or 'none'")
        fmt = (self.text or {}).get("format") or {}
        if isinstance(fmt, dict) and fmt.get("type", "text") != "text":
            raise ApiError(422, "invalid_request", "citeqa answers in plain text with citations: text.format "
                           f"{fmt.get('type')!r} is not supported")

    def check_limits(self, settings: Settings, earlier: Sequence[ChatTurn] = ()) -> list[ChatTurn]:
        """Before any work, as /v1/chat/completions does: at most max_chat_messages messages of
        max_chat_chars characters together (instructions and the conversation continued
        included), the question at most max_question_chars. Returns the earlier turns that are
        kept: with ``truncation: auto`` the oldest ones that do not fit are dropped."""
        items = self.items()
        if not items:
            raise over_limit("input", "no messages: send the question, as a string or a user message")
        own = self.turns() + ([ChatTurn("system", self.instructions)] if self.instructions else [])
        count, limit = len(own), settings.max_chat_messages
        if count > limit:
            raise over_limit("input", f"more than the limit of {limit} messages (got {count})")
        chars, char_limit = sum(len(t.content) for t in own), settings.max_chat_chars
        if chars > char_limit:
            raise over_limit("input", f"longer together than the limit of {char_limit} characters (got {chars})")
        where = "input" if isinstance(self.input, str) else f"input.{len(items) - 1}.content"
        check_length(where, items[-1].text(), settings.max_question_chars)
        kept = list(earlier)
        while kept and (count + len(kept) > limit or chars + sum(len(t.content) for t in kept) > char_limit):
            if self.truncation != "auto":
                raise over_limit("previous_response_id", (
                    f"the conversation continued and this input are more than the limits of {limit} messages and "
                    f"{char_limit} characters together; send truncation: \"auto\" to drop its oldest turns"))
            kept.pop(0)
        return kept

    def conversation(self, earlier: Sequence[ChatTurn] = ()) -> Conversation:
        """The question (the last input item, a user message) and its history: instructions,
        the conversation continued (``earlier``), then this request's earlier messages."""
        last = self.items()[-1]
        if not last.is_message or last.role != "user":
            raise ApiError(422, "invalid_request", "the last input item must be a user message with a question in it")
        history = [ChatTurn("system", self.instructions)] if self.instructions else []
        history += [*earlier, *self.turns()[:-1]]
        doc_ids, metadata = (self.filter.doc_ids, self.filter.metadata) if self.filter else (None, None)
        return Conversation(self.model, last.text(), history, self.top_k, self.collection, doc_ids, metadata,
                            self.options_for)

    def options_for(self, fields: set[str]) -> dict[str, Any]:
        """OpenAI's sampling fields the generator understands, then explicit generator_options."""
        common = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_output_tokens}
        options = {k: v for k, v in common.items() if v is not None and k in fields}
        return {**options, **(self.generator_options or {})}


def response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


def message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def annotation_key(c: Citation) -> tuple[int, str, int]:
    """What tells citations of one answer apart (a marker may be cited by several claims)."""
    return c.marker, c.sentence_id, c.answer_start


def url_citations(text: str, citations: list[Citation], base_url: str, titles: dict[str, str],
                collection: str = DEFAULT_COLLECTION) -> list[dict[str, Any]]:
    """One url_citation per citation over its [n] marker in ``text`` (the first after its
    claim; the claim itself should the marker be missing), with citeqa's citation fields."""
    out = []
    for c, fields in zip(citations, citations_out(citations, collection), strict=True):
        marker = f"[{c.marker}]"
        start = text.find(marker, c.answer_end)
        start, end = (start, start + len(marker)) if start >= 0 else (c.answer_start, c.answer_end)
        out.append({"type": "url_citation", "start_index": start, "end_index": end,
                    "url": citation_url(base_url, c, collection), "title": titles.get(c.doc_id, "") or c.doc_id,
                    **fields})
    return out


def output_text(text: str, notes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": notes, "logprobs": []}


def output_message(msg_id: str, parts: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": msg_id, "status": status, "role": "assistant", "content": parts}


def response_usage(result: VerifiedAnswer) -> dict[str, Any]:
    counted = usage(result)
    return {"input_tokens": counted["prompt_tokens"], "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": counted["completion_tokens"], "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": counted["total_tokens"]}


def answer_extras(result: VerifiedAnswer, collection: str) -> dict[str, Any]:
    """citeqa's fields beside OpenAI's: ``status`` is OpenAI's here, so the answer's is
    ``answer_status``."""
    added = extras(result)
    return {"answer_status": added.pop("status"), **added, "citations": citations_out(result.citations, collection)}


@dataclass(frozen=True)
class Envelope:
    """What every response object (and every stream event's) of one request shares: its
    ids, its time and the request's settings OpenAI echoes back."""

    id: str
    message_id: str
    created_at: int
    model: str
    request: ResponsesRequest

    @classmethod
    def of(cls, request: ResponsesRequest, model: str) -> "Envelope":
        return cls(response_id(), message_id(), int(time.time()), model, request)

    def body(self, status: str, output: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
        r = self.request
        return {
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "background": False, "error": None, "incomplete_details": None, "instructions": r.instructions,
            "max_output_tokens": r.max_output_tokens, "model": self.model, "output": output,
            "parallel_tool_calls": False, "previous_response_id": r.previous_response_id,
            "reasoning": {"effort": None, "summary": None}, "store": r.store, "temperature": r.temperature,
            "text": {"format": {"type": "text"}}, "tool_choice": r.tool_choice or "auto",
            "tools": [],  # offered tools are never called (module docstring)
            "top_p": r.top_p, "truncation": r.truncation or "disabled", "usage": None,
            "metadata": r.metadata or {}, **more,
        }

    def completed(self, result: VerifiedAnswer, base_url: str, titles: dict[str, str],
                  collection: str = DEFAULT_COLLECTION) -> dict[str, Any]:
        """The whole response: what the non-streamed request returns and the stream's last event holds."""
        notes = url_citations(result.answer, result.citations, base_url, titles, collection)
        output = [output_message(self.message_id, [output_text(result.answer, notes)])]
        return self.body("completed", output, completed_at=int(time.time()), usage=response_usage(result),
                         **answer_extras(result, collection))

    def failed(self, code: str, message: str) -> dict[str, Any]:
        return self.body("failed", [], error={"code": code, "message": message})


class EventWriter:
    """The stream's events, numbered in order (``sequence_number``), for one answer's one
    output item and text part. Annotations are announced once each, as their citations are
    verified; whatever the end adds (the rest of the text, citations not yet announced)
    comes before the closing events."""

    def __init__(self, envelope: Envelope, base_url: str, collection: str):
        self.envelope, self.base_url, self.collection = envelope, base_url, collection
        self.sequence = 0
        self.sent = ""
        self.announced: set[tuple[int, str, int]] = set()

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        out = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return out

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.envelope.message_id, "output_index": 0, "content_index": 0}

    def opening(self) -> list[dict[str, Any]]:
        started = self.envelope.body("in_progress", [])
        return [self.event("response.created", response=started),
                self.event("response.in_progress", response=started),
                self.event("response.output_item.added", output_index=0,
                           item=output_message(self.envelope.message_id, [], "in_progress")),
                self.event("response.content_part.added", **self._where(), part=output_text("", []))]

    def text(self, delta: str, sent: str, citations: list[Citation], titles: dict[str, str]) -> list[dict[str, Any]]:
        """A text delta (``sent``: the whole text so far, this delta included) and an
        annotation for each citation it verified that was not announced yet."""
        self.sent = sent
        events = [self.event("response.output_text.delta", **self._where(), delta=delta, logprobs=[])] if delta else []
        fresh = [c for c in citations if annotation_key(c) not in self.announced]
        for c, note in zip(fresh, url_citations(sent, fresh, self.base_url, titles, self.collection), strict=True):
            events.append(self.event("response.output_text.annotation.added", **self._where(),
                                     annotation_index=len(self.announced), annotation=note))
            self.announced.add(annotation_key(c))
        return events

    def finished(self, result: VerifiedAnswer, titles: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The closing events and the whole response they end with. Text the stream did not
        carry (the "no answer" sentence; the end of a draft that changed what it had said)
        comes first, when the answer continues what was sent."""
        answer = result.answer
        rest = answer[len(self.sent):] if answer.startswith(self.sent) else ""
        # Offsets into the answer, which output_text.done carries: the text sent and its
        # rest, or (a draft that changed what it had said) what replaces it.
        events = self.text(rest, answer, result.citations, titles)
        whole = self.envelope.completed(result, self.base_url, titles, self.collection)
        message = whole["output"][0]
        part = message["content"][0]
        events += [self.event("response.output_text.done", **self._where(), text=answer, logprobs=[]),
                   self.event("response.content_part.done", **self._where(), part=part),
                   self.event("response.output_item.done", output_index=0, item=message),
                   self.event("response.completed", response=whole)]
        return events, whole

    def failed(self, status: int, code: str, message: str) -> list[dict[str, Any]]:
        """Too late for an HTTP status: an ``error`` event that carries it, then response.failed."""
        return [self.event("error", code=code, message=message, param=None, status=status),
                self.event("response.failed", response=self.envelope.failed(code, message))]


def sse(event: dict[str, Any]) -> str:
    """One server-sent event, named by its type as OpenAI's stream names them."""
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"
