"""The OpenAI chat-completions dialect: request and response shapes, and the translation
between them and a verified answer. Citations ride along in every shape: the /v1/ask
objects as ``citations``, and OpenAI-style ``annotations`` (``url_citation``) whose
``start_index``/``end_index`` cover the marker in ``content`` and whose URL resolves to
the document version and span through the API. URLs start with the server's public base URL
(``Settings.public_url()``), never with a request's ``Host`` header, which a client may set
to any host it likes."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from citeqa.api.conversation import DEFAULT_MODEL, Conversation
from citeqa.api.errors import ApiError
from citeqa.api.schemas import COLLECTION_DESCRIPTION, CitationOut, FilterIn, ShortAnswerOut, check_length, over_limit
from citeqa.api.settings import Settings
from citeqa.index.scope import DEFAULT_COLLECTION
from citeqa.qa.types import ChatTurn, Citation, VerifiedAnswer

# The roles earlier turns keep as history (OpenAI's newer "developer" is a system message);
# tool messages are not conversation, and are left out.
_HISTORY_ROLES: dict[str, Literal["system", "user", "assistant"]] = {
    "system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    # Clients send fields of their own (name, tool_calls...): accepted and ignored.
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    # OpenAI clients send many optional fields (n, stop, presence_penalty, user...);
    # they are accepted, and the ones citeqa has no use for are ignored.
    model_config = ConfigDict(extra="allow")
    model: str = Field(DEFAULT_MODEL, description=(
        "`citeqa` (the server's default generator) or a generator name, optionally followed by `@<collection>` "
        "to answer from that collection (`citeqa@news`, `extractive@news`): how a plain OpenAI client, which "
        "sends only a model name, picks one. Without it: the `collection` field, else `default` (or the API "
        "key's only collection)."))
    messages: list[ChatMessageIn] = Field(..., min_length=1, description=(
        "At most CITEQA_MAX_CHAT_MESSAGES (50) of CITEQA_MAX_CHAT_CHARS (20,000) characters together."))
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    top_k: int | None = Field(None, ge=1, description="citeqa: passages retrieved for the answer.")
    generator_options: dict[str, Any] | None = Field(None, description="citeqa: options of the generator.")
    collection: str | None = Field(None, description="citeqa: " + COLLECTION_DESCRIPTION + (
        " A model name's `@<collection>` says the same; if both are given they must agree."))
    filter: FilterIn | None = Field(None, description="citeqa: answer only from the documents that match.")

    @property
    def filter_parts(self) -> tuple[list[str] | None, dict[str, Any] | None]:
        return (self.filter.doc_ids, self.filter.metadata) if self.filter else (None, None)

    def check_limits(self, settings: Settings) -> None:
        """Before any work: at most max_chat_messages messages of max_chat_chars characters
        together, the last (the question, searched like /v1/ask's) at most max_question_chars."""
        count, limit = len(self.messages), settings.max_chat_messages
        if count > limit:
            raise over_limit("messages", f"more than the limit of {limit} messages (got {count})")
        total, limit = sum(len(m.text()) for m in self.messages), settings.max_chat_chars
        if total > limit:
            raise over_limit("messages", f"longer together than the limit of {limit} characters (got {total})")
        check_length(f"messages.{count - 1}.content", self.messages[-1].text(), settings.max_question_chars)

    def conversation(self) -> Conversation:
        """The question and what citeqa needs to answer it, as every dialect gives it."""
        if self.messages[-1].role != "user":
            raise ApiError(422, "invalid_request", "the last message must be a user message with a question in it")
        question, history = self.question_and_history()
        doc_ids, metadata = self.filter_parts
        return Conversation(self.model, question, history, self.top_k, self.collection, doc_ids, metadata,
                            self.options_for)

    def question_and_history(self) -> tuple[str, list[ChatTurn]]:
        """The last message (a user's) is the question; the ones before are history."""
        *earlier, last = self.messages
        history = [ChatTurn(_HISTORY_ROLES[m.role], m.text()) for m in earlier if m.role in _HISTORY_ROLES]
        return last.text(), history

    def options_for(self, fields: set[str]) -> dict[str, Any]:
        """OpenAI's sampling fields the generator understands, then explicit generator_options.
        (Clients send temperature by default: a generator without it just ignores it.)"""
        common = {"temperature": self.temperature, "top_p": self.top_p, "seed": self.seed,
                  "max_tokens": self.max_completion_tokens or self.max_tokens}
        options = {k: v for k, v in common.items() if v is not None and k in fields}
        return {**options, **(self.generator_options or {})}


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def citation_url(base_url: str, c: Citation, collection: str = DEFAULT_COLLECTION) -> str:
    """``base_url``: the configured public base URL, never one taken from the request."""
    where = "" if collection == DEFAULT_COLLECTION else f"&collection={quote(collection, safe='')}"
    return (f"{base_url.rstrip('/')}/v1/documents/{quote(c.doc_id, safe='')}"
            f"?version={c.doc_version}&start={c.start}&end={c.end}{where}")


def url_annotations(content: str, citations: list[Citation], base_url: str,
                    titles: dict[str, str], collection: str = DEFAULT_COLLECTION) -> list[dict[str, Any]]:
    """One url_citation per citation, over its [n] marker (the first after its claim)."""
    out = []
    for c in citations:
        marker = f"[{c.marker}]"
        start = content.find(marker, c.answer_end)
        if start < 0:
            continue
        out.append({"type": "url_citation", "url_citation": {
            "start_index": start, "end_index": start + len(marker), "url": citation_url(base_url, c, collection),
            "title": titles.get(c.doc_id, "") or c.doc_id}})
    return out


def citations_out(citations: list[Citation], collection: str = DEFAULT_COLLECTION) -> list[dict[str, Any]]:
    return [CitationOut(**vars(c), collection=collection).model_dump() for c in citations]


def extras(result: VerifiedAnswer) -> dict[str, Any]:
    """What citeqa adds beside OpenAI's fields (clients ignore fields they do not know)."""
    return {
        "status": result.status, "dropped_citations": result.dropped_citations,
        "short_answer": ShortAnswerOut(**vars(result.short_answer)).model_dump() if result.short_answer else None,
        "offset_unit": "codepoint",
    }


def usage(result: VerifiedAnswer) -> dict[str, int]:
    prompt = int(result.generation.get("prompt_tokens", 0))
    completion = int(result.generation.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(model: str, result: VerifiedAnswer, base_url: str, titles: dict[str, str],
               collection: str = DEFAULT_COLLECTION) -> dict[str, Any]:
    citations = citations_out(result.citations, collection)
    message = {"role": "assistant", "content": result.answer, "refusal": None, "citations": citations,
               "annotations": url_annotations(result.answer, result.citations, base_url, titles, collection),
               **extras(result)}
    return {
        "id": completion_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": usage(result), "citations": citations, **extras(result),
    }


def chunk(cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None,
          **top: Any) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **top}
